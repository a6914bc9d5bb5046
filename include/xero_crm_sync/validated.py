"""Promote a run's valid staged rows into the `val_*` mirror, one set-based statement per table.

Generated from the entity registry (the columns are the registry's), so it is the same for every entity. The mirror
holds typed columns only: the raw payload stays in staging, written once (`stg_id` points at it):
- one row per Xero id: the run may have staged a record twice (it changed while we paged); the newest
  UpdatedDateUTC wins, then the later staged row;
- an older version never overwrites a newer one already mirrored (a rerun of an old run changes nothing);
- lines are replaced wholesale for each parent promoted in this run, from that exact staged parent row.
`xero-crm-sync sql --show-validated <entity>` prints these statements for reading.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from xero_crm_sync import db, staging
from xero_crm_sync.entities import Entity


def _has_updated(entity: Entity) -> bool:
    return any(c.name == "updated_date_utc" for c in entity.columns)


def _promoted_table(entity: Entity) -> str:
    return f"tmp_promoted_{entity.name}"


def promote_sql(entity: Entity) -> list[str]:
    """The statements that promote one run of `entity` (parameters :run_id, :connection_id)."""
    cols = [c.name for c in entity.columns]
    col_list = ", ".join(cols)
    order = "updated_date_utc DESC, stg_id DESC" if _has_updated(entity) else "stg_id DESC"
    # Named columns, not s.*: the ranking sorts what it selects, and the raw payload has no business in a sort.
    picked = ", ".join(
        f"s.{c}"
        for c in dict.fromkeys(
            [
                "stg_id",
                "connection_id",
                "xero_id",
                "run_id",
                "extracted_at",
                "raw_digest",
                "page",
                "position",
                *cols,
            ]
        )
    )
    # `xero_id || ''` and the id test outside the ranking keep SQLite on the run's index: partitioned by the bare
    # column (or with `xero_id IS NOT NULL` inside), it walked the (connection_id, xero_id) index over every run's
    # staged rows to save a sort: 0.2-0.6 s per entity for a handful of records at 100,000 contacts, 1 ms this
    # way (issue 13, fix 14 in docs/BENCHMARKS.md). The same order on PostgreSQL.
    chosen = f"""
        SELECT * FROM (
            SELECT {picked}, ROW_NUMBER() OVER (PARTITION BY s.xero_id || '' ORDER BY {order}) AS rn
            FROM {entity.staging_table} s
            WHERE s.run_id = :run_id AND s.connection_id = :connection_id
              AND s.validation_status = 'valid'
        ) ranked WHERE rn = 1 AND xero_id IS NOT NULL"""
    tail = ["stg_id", "raw_digest", "last_run_id", "last_extracted_at"]
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*cols, *tail])
    guard = (
        f" WHERE excluded.updated_date_utc >= {entity.validated_table}.updated_date_utc"
        f" OR {entity.validated_table}.updated_date_utc IS NULL"
        if _has_updated(entity)
        else ""
    )
    statements = [
        f"""INSERT INTO {entity.validated_table}
            (connection_id, xero_id, {col_list}, {", ".join(tail)})
        SELECT connection_id, xero_id, {col_list}, stg_id, raw_digest, run_id, extracted_at FROM ({chosen}) c
        WHERE true
        ON CONFLICT (connection_id, xero_id) DO UPDATE SET {updates}{guard}"""
    ]
    if entity.lines:
        # Only parents whose mirror row now holds this run's staged row were promoted (the guard may have kept a
        # newer one): found from the mirror through its `stg_id` (`staging.mirror_holds`), without ranking the
        # run's rows a second time (issue 13, fix 24).
        # They are written to a temporary table first: joined in place, the ranking subquery was re-run for every
        # staged line whenever the planner expected one row (an incremental run's new run_id is never in the
        # statistics): 47 s for 2,300 invoices at 100,000 contacts, against well under a second this way.
        promoted = _promoted_table(entity)
        statements += [
            f"DROP TABLE IF EXISTS {promoted}",
            f"""CREATE TEMPORARY TABLE {promoted} AS
            SELECT s.xero_id, s.page, s.position FROM {entity.validated_table} v
            JOIN {entity.staging_table} s
              ON {staging.mirror_holds("s", "v")} AND s.run_id = :run_id AND s.connection_id = :connection_id""",
            f"CREATE INDEX ix_{promoted} ON {promoted} (xero_id, page, position)",
        ]
    # The lines in the mirror's key order (connection, parent id, line): read in staging order, the parents' ids
    # are random, and each line landed on a random leaf of the key's index (a first sync's million invoice lines:
    # 5.1-5.4 s on SQLite, 5.5-6.2 s on PostgreSQL; sorted first 2.7-2.9 s and 4.1-5.2 s; issue 13, fix 25).
    for spec in entity.lines:
        line_cols = ", ".join(c.name for c in spec.columns)
        statements.append(
            f"""DELETE FROM {spec.validated_table}
            WHERE connection_id = :connection_id
              AND parent_id IN (SELECT xero_id FROM {promoted})"""
        )
        statements.append(
            f"""INSERT INTO {spec.validated_table} (connection_id, parent_id, line_no, {line_cols})
            SELECT l.connection_id, l.parent_id, l.line_no, {", ".join("l." + c.name for c in spec.columns)}
            FROM {spec.staging_table} l
            JOIN {promoted} p
              ON l.parent_id = p.xero_id AND l.parent_page = p.page AND l.parent_position = p.position
            WHERE l.run_id = :run_id AND l.connection_id = :connection_id
            ORDER BY l.parent_id, l.line_no"""
        )
    if entity.lines:
        statements.append(f"DROP TABLE {promoted}")
    return statements


def promote(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> int:
    """Upsert this run's valid rows into val_<entity> (and its lines). Returns the rows staged as valid."""
    params = {"run_id": run_id, "connection_id": connection_id}
    valid = conn.execute(
        text(
            f"SELECT COUNT(*) FROM {entity.staging_table} "
            "WHERE run_id = :run_id AND connection_id = :connection_id AND validation_status = 'valid'"
        ),
        params,
    ).scalar_one()
    # A big run (a first sync) makes the planner's statistics stale: refresh them before the joins that read
    # the run's rows, and on the mirror before the lines join it. The parent count stands in for the lines'.
    db.refresh_statistics(conn, [entity.staging_table, *(spec.staging_table for spec in entity.lines)], valid)
    parent, *lines = promote_sql(entity)
    conn.execute(text(parent), params)
    db.refresh_statistics(conn, [entity.validated_table], valid)
    for statement in lines:
        conn.execute(text(statement), params)
        if statement.startswith("CREATE TEMPORARY TABLE") and conn.dialect.name == "postgresql":
            conn.execute(
                text(f"ANALYZE {_promoted_table(entity)}")
            )  # exact and cheap: this run's parents only
    db.refresh_statistics(conn, [spec.validated_table for spec in entity.lines], valid)
    return valid
