"""Validation (I11): Great Expectations suites per entity over a run's staged rows.

A row that fails any expectation is quarantined with every reason it failed, marked `quarantined` in staging and
not loaded; the others are marked `valid` and promoted into the `val_*` mirror. The run goes on either way.
`check_entity` reads and checks with nothing written; `record_verdicts` then writes what it found, in the
transaction that promotes (so on SQLite the one write lock is never held while Great Expectations runs).

Suites are derived from the entity registry alone: key present, required fields present, every value parsed, key
unique among distinct versions, Xero's enumerations (`Column.allowed`), and for documents amounts that add up and
codes that exist. Great Expectations runs in-process, one batch per entity and run: a pandas frame of the run's
typed columns (never the raw payload), so memory is bounded by the largest entity of one run. Its context, data
sources and suites are built once per process (`suite_for`). Records identical to their mirrored valid version are
not re-checked, so an incremental run with nothing new never imports pandas or GX.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, text

from xero_crm_sync.entities import BY_NAME, Entity

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

TOLERANCE = 0.011  # Xero rounds each line to cents; totals may differ from a recomputation by one cent
DOCUMENT_TOTALS = ("sub_total", "total_tax", "total")


def document_lines(entity: Entity) -> str | None:
    """The staged lines table whose amounts must add up to the entity's totals (invoices, credit notes, purchase
    orders: every registry entity with totals and LineItems), or None."""
    names = {c.name for c in entity.columns}
    if not set(DOCUMENT_TOTALS) <= names:
        return None
    return next((spec.staging_table for spec in entity.lines if spec.source == "LineItems"), None)


@dataclass
class EntityReport:
    entity: str
    checked: int = 0
    valid: int = 0
    quarantined: int = 0
    unchanged: int = 0  # identical to the mirror's valid version: counted valid, not re-run through the suite
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "checked": self.checked,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "unchanged": self.unchanged,
            "expectations": self.expectations,
        }


# --- the suite (pure: a frame in, reasons per staged row out) --------------------------------------------


@dataclass(frozen=True)
class Check:
    """One expectation plus how to word a failing row's reason."""

    expectation: Any
    reason: Callable[[dict[str, Any]], str]


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # Imported on first use: it takes several seconds, and only tasks that validate should pay for it.
    import great_expectations as gx

    return gx


@lru_cache(maxsize=1)
def _context() -> Any:
    gx = _gx()
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic; an API change must not break validation
        pass
    return context


def build_checks(entity: Entity) -> list[Check]:
    """The entity's expectations, all derived from the registry: key and required fields present, every value
    parsed, one version per key, Xero's enumerations (`Column.allowed`), and for documents (`document_lines`)
    totals that add up and codes that exist."""
    gxe = _gx().expectations
    key = entity.key
    names = {c.name for c in entity.columns}
    checks = [
        Check(gxe.ExpectColumnValuesToNotBeNull(column="xero_id"), lambda r: f"{key} is missing"),
        Check(
            gxe.ExpectColumnValuesToBeNull(column="parse_errors"),
            lambda r: (
                "; ".join(json.loads(r["parse_errors"])) if r.get("parse_errors") else "unparseable values"
            ),
        ),
    ]
    for column in entity.columns:
        if column.required and column.name != entity.key_column.name:
            checks.append(
                Check(
                    gxe.ExpectColumnValuesToNotBeNull(column=column.name),
                    lambda r, c=column: f"{c.source if isinstance(c.source, str) else c.name} is missing",
                )
            )
    if any(c.name == "name" and c.required for c in entity.columns):
        checks.append(
            Check(
                gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1, max_value=500),
                lambda r: "Name must be 1 to 500 characters",
            )
        )
    # The same record may legitimately be staged twice in a run (it changed while we paged, or identical
    # copies); two *different* versions with the same UpdatedDateUTC cannot be ordered, so neither is trusted.
    if "updated_date_utc" in names:
        checks.append(
            Check(
                gxe.ExpectCompoundColumnsToBeUnique(column_list=["xero_id", "updated_date_utc"]),
                lambda r: (
                    f"{key} appears twice in this run with different content and the same UpdatedDateUTC"
                ),
            )
        )
    else:
        checks.append(
            Check(
                gxe.ExpectColumnValuesToBeUnique(column="xero_id"),
                lambda r: f"{key} appears twice in this run with different content",
            )
        )
    for column in entity.columns:
        if column.allowed:
            checks.append(
                Check(
                    gxe.ExpectColumnValuesToBeInSet(column=column.name, value_set=list(column.allowed)),
                    lambda r, c=column.name, a=column.allowed: (
                        f"{c} {str(r.get(c))[:40]!r} is not one of {', '.join(a)}"
                    ),
                )
            )
    if document_lines(entity):
        checks += [
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="totals_gap", max_value=TOLERANCE),
                lambda r: (
                    f"Total {r.get('total')} is not SubTotal {r.get('sub_total')} + TotalTax {r.get('total_tax')}"
                ),
            ),
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="lines_gap", max_value=TOLERANCE),
                lambda r: (
                    f"SubTotal {r.get('sub_total')} does not match the sum of its lines ({r.get('lines_total')})"
                ),
            ),
            Check(
                gxe.ExpectColumnValuesToBeNull(column="unknown_codes"),
                lambda r: f"unknown codes on its lines: {r.get('unknown_codes')}",
            ),
        ]
    return checks


def checked_columns(entity: Entity) -> tuple[str, ...]:
    """The entity's typed columns that `build_checks` and its reasons read, in registry order: the key, the
    required and enumerated fields (the name among them), UpdatedDateUTC and, for documents, the totals.
    Validation reads only these back from staging (a contact has 31 columns, its suite checks 5): less to fetch,
    convert and hold."""
    wanted = {entity.key_column.name, "updated_date_utc"}
    wanted |= {c.name for c in entity.columns if c.required or c.allowed}
    if document_lines(entity):
        wanted |= {*DOCUMENT_TOTALS, "line_amount_types"}
    return tuple(c.name for c in entity.columns if c.name in wanted)


@dataclass
class Suite:
    """One entity's suite and the GX objects it runs on, built once per process and reused for every batch.

    Building a data source, an asset and a batch definition cost ~0.2-0.3 s per entity and run; a suite is the
    same for every run (the registry does not change while a process lives). Each run hands its frame in as the
    batch's `dataframe` parameter: GX's whole-dataframe batch definition is made for exactly that."""

    entity: Entity
    checks: list[Check]
    suite: Any
    batch_definition: Any
    by_config: dict[tuple[str, str], Check]


_SUITES: dict[str, Suite] = {}


def suite_for(entity: Entity) -> Suite:
    cached = _SUITES.get(entity.name)
    if cached is not None and cached.entity is entity:
        return cached
    gx = _gx()
    context = _context()
    name = f"xero_crm_sync_{entity.name}"
    checks = build_checks(entity)
    batch_definition = (
        context.data_sources.add_or_update_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    suite = gx.ExpectationSuite(name=name, expectations=[c.expectation for c in checks])
    by_config = {_config_key(c.expectation.configuration): c for c in checks}
    _SUITES[entity.name] = Suite(entity, checks, suite, batch_definition, by_config)
    return _SUITES[entity.name]


RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["stg_id"]}


def evaluate(entity: Entity, frame: pd.DataFrame) -> tuple[dict[int, list[str]], list[dict[str, Any]]]:
    """Run the entity's suite on `frame` (one row per staged record, with `stg_id`) as one GX batch.

    Returns (reasons per failing stg_id, one summary per expectation). GX reports each expectation's failing rows
    by `stg_id` (COMPLETE result format, `unexpected_index_list`), which is how each failing record gets its own
    reasons. Pure apart from GX itself."""
    import pandas as pd

    if frame.empty:
        return {}, []
    runner = suite_for(entity)
    batch = runner.batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(runner.suite, result_format=RESULT_FORMAT)
    # Indexed by stg_id for the reasons' wording; built only when some row failed (it copies the frame).
    rows: pd.DataFrame | None = None
    reasons: dict[int, list[str]] = defaultdict(list)
    summaries: list[dict[str, Any]] = []
    # GX groups its results its own way (by column, it seems), not in the suite's order: pair them by configuration.
    outcomes = {_config_key(outcome.expectation_config): outcome for outcome in result.results}
    for check in runner.checks:
        outcome = outcomes[_config_key(check.expectation.configuration)]
        failing = [int(item["stg_id"]) for item in (outcome.result.get("unexpected_index_list") or [])]
        summaries.append(
            {
                "expectation": outcome.expectation_config.type,
                "kwargs": {k: v for k, v in outcome.expectation_config.kwargs.items() if k != "batch_id"},
                "success": bool(outcome.success),
                "unexpected_count": len(failing),
            }
        )
        if failing and rows is None:
            rows = frame.set_index("stg_id", drop=False)
        for stg_id in failing:
            row = rows.loc[stg_id].to_dict() if rows is not None and stg_id in rows.index else {}
            if isinstance(row.get("stg_id"), pd.Series):  # defensive: duplicate index
                row = rows.loc[stg_id].iloc[0].to_dict()
            reasons[stg_id].append(check.reason(row))
    return dict(reasons), summaries


def _config_key(config: Any) -> tuple[str, str]:
    """An expectation's identity within a suite: its type and arguments (the batch it ran on aside)."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return config.type, json.dumps(kwargs, sort_keys=True, default=str)


# --- the database edge -------------------------------------------------------------------------------------


# Staged rows per GX batch: bounds validation's memory whatever the organisation's size. 20,000, not 50,000: the
# 100,000-contact import's peak RSS fell from 631 MiB to 471 MiB (target 512) for a few more GX calls.
BATCH_ROWS = 20_000


@dataclass
class Staged:
    """One batch of a run's staged rows of one entity, split into those the suite must see and those it need not."""

    columns: list[str]
    to_check: list[tuple[Any, ...]]
    records: int  # distinct records (identical copies of a record count once)
    unchanged: int  # records identical to their mirrored valid version


def _batches(
    conn: Connection, entity: Entity, run_id: str, connection_id: int, size: int | None = None
) -> Iterator[Staged]:
    """The run's staged rows in batches of about `size`, as plain tuples with each payload's digest and its
    mirror's, streamed from the database (never the whole entity in memory).

    Rows come in Xero-id order and a batch never splits one id's copies: the rules about a record's copies in a run
    (identical copies are one record, two different versions with the same UpdatedDateUTC are not trusted) hold
    within each batch exactly as over the whole run.

    A record whose payload is byte for byte the mirror's (valid) version was validated when that version came
    in: an incremental run that re-reads unchanged lists (tax rates, currencies, ...) then needs neither pandas nor
    Great Expectations, whose import alone costs seconds. Digests, not payloads: nothing is parsed to compare."""
    # Only the columns the suite reads. Amounts as floats: a Decimal is ~100 bytes, and 200,000 invoices of 12
    # amounts made validation's frame alone weigh most of a gigabyte. The checks on amounts (present, totals within
    # a cent) do not need more.
    checked = set(checked_columns(entity))
    cols = ", ".join(
        f"CAST(s.{c.name} AS DOUBLE PRECISION) AS {c.name}" if c.type == "numeric" else f"s.{c.name}"
        for c in entity.columns
        if c.name in checked
    )
    position = ", s.page, s.position" if document_lines(entity) else ""
    # Streamed (a server-side cursor on PostgreSQL), for this statement only: Connection.execution_options would
    # set it for every later statement of the connection.
    result = conn.execute(
        text(
            f"SELECT s.stg_id, s.xero_id, s.parse_errors, s.raw_digest AS _version, "  # noqa: S608
            f"v.raw_digest AS _mirror{position}, {cols} "
            f"FROM {entity.staging_table} s LEFT JOIN {entity.validated_table} v "
            "ON v.connection_id = s.connection_id AND v.xero_id = s.xero_id "
            # `|| ''`: ordered by the bare column, SQLite walked the xero_id index over every run's rows (see
            # validated.promote_sql); the same order.
            "WHERE s.run_id = :run_id AND s.connection_id = :connection_id ORDER BY s.xero_id || '', s.stg_id"
        ),
        {"run_id": run_id, "connection_id": connection_id},
        execution_options={"stream_results": True, "yield_per": 5_000},
    )
    columns = list(result.keys())
    size = size or BATCH_ROWS
    pending: list[tuple[Any, ...]] = []
    for row in result:
        if len(pending) >= size and row[1] != pending[-1][1]:
            yield _split(columns, pending)
            pending = []
        pending.append(tuple(row))
    if pending:
        yield _split(columns, pending)


def _split(columns: list[str], rows: list[tuple[Any, ...]]) -> Staged:
    # A row staged before digests existed has none: it is its own version (never taken for another's copy).
    versions: dict[Any, set[Any]] = defaultdict(set)
    for row in rows:
        versions[row[1]].add(row[3] or f"stg:{row[0]}")
    # Identical copies of a record (same version staged twice) are one record, not a duplicate: keep the last.
    last: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for row in rows:
        last[(row[1], row[3] or f"stg:{row[0]}") if row[1] is not None else ("", row[0])] = row
    to_check = [
        row
        for row in last.values()
        if not (row[3] is not None and row[3] == row[4] and len(versions[row[1]]) == 1)
    ]
    return Staged(columns, to_check, len(last), len(last) - len(to_check))


@dataclass
class _Documents:
    """What the document checks need besides a batch's own columns: its lines' sums and any unknown codes."""

    lines_table: str
    params: dict[str, Any]
    sums: pd.DataFrame | None = None  # read once per entity, on first need
    unknown: dict[tuple[Any, Any, Any], set[str]] | None = None  # read once per entity, on first need


def _frame(conn: Connection, staged: Staged, documents: _Documents | None) -> pd.DataFrame:
    import pandas as pd  # imported here: a run with nothing new to check never pays for pandas

    frame = pd.DataFrame(staged.to_check, columns=staged.columns).drop(columns=["_version", "_mirror"])
    frame = frame.sort_values("stg_id", kind="stable").reset_index(drop=True)
    if documents is not None:
        frame = _add_document_checks(conn, documents, frame)
    return frame


def _line_sums(conn: Connection, documents: _Documents) -> pd.DataFrame:
    """Each staged document's lines' total and count in this run, keyed by the parent's staged (page, position),
    read once per entity in the order of the lines' (run, connection, page, position) index. A staged row's page
    and position are unique in its run (extract and the webhook importer number pages once per entity and run),
    and the index they key is appended to in order as pages are staged: keyed by the parent's Xero id, every page
    of lines rewrote random leaves of it (issue 13, fix 23 in bench/NOTES.md). Four numbers per document: 200,000
    invoices are ~6 MiB, read in chunks."""
    import pandas as pd

    columns = ["page", "position", "lines_total", "line_count"]
    result = conn.execute(
        text(
            "SELECT parent_page, parent_position, "  # noqa: S608
            "CAST(SUM(line_amount) AS DOUBLE PRECISION), COUNT(*) "
            f"FROM {documents.lines_table} WHERE run_id = :run_id AND connection_id = :connection_id "
            "GROUP BY parent_page, parent_position"
        ),
        documents.params,
        execution_options={"stream_results": True},
    )
    chunks = [pd.DataFrame(rows, columns=columns) for rows in result.partitions(50_000)]
    sums = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=columns)
    # A line without its parent's position (staged before positions existed) belongs to no document here; left in,
    # pandas would match its missing keys with a document's.
    sums = sums.dropna(subset=["page", "position"])
    return sums.astype(
        {"page": "Int64", "position": "Int64", "lines_total": "float64", "line_count": "int64"}
    )


def _add_document_checks(conn: Connection, documents: _Documents, frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    if documents.sums is None:
        documents.sums = _line_sums(conn, documents)
    keys = ["page", "position"]
    frame = frame.astype(dict.fromkeys(keys, "Int64")).merge(documents.sums, how="left", on=keys)
    num = lambda c: pd.to_numeric(frame[c], errors="coerce")  # noqa: E731
    frame["totals_gap"] = (num("total") - num("sub_total") - num("total_tax")).abs()
    inclusive = frame["line_amount_types"] == "Inclusive"
    expected_lines = num("sub_total").where(~inclusive, num("sub_total") + num("total_tax"))
    frame["lines_gap"] = (num("lines_total") - expected_lines).abs().where(frame["line_count"].fillna(0) > 0)
    if documents.unknown is None:
        documents.unknown = _unknown_codes(conn, documents.lines_table, documents.params)
    unknown = documents.unknown
    keys = zip(frame["xero_id"], frame["page"], frame["position"], strict=True)
    frame["unknown_codes"] = pd.Series(
        [", ".join(sorted(unknown[k])) if k in unknown else None for k in keys],
        index=frame.index,
        dtype=object,
    )
    return frame.drop(columns=["page", "position"])


@dataclass(frozen=True)
class LineCode:
    """A code on a document's lines that must name something the organisation has, as mirrored."""

    label: str  # as the quarantine reason says it: "account 200"
    line_column: str  # in the staged lines
    entity: str  # whose mirror holds the codes the organisation has
    mirror_column: str


# The one statement of what a document's lines are checked against: `_unknown_codes` reads these mirrors, and
# `mirrors_read` tells the import to commit their verdicts first.
LINE_CODES = (
    LineCode("account", "account_code", "accounts", "code"),
    LineCode("tax type", "tax_type", "tax_rates", "tax_type"),
)


def _unknown_codes(
    conn: Connection, lines_table: str, params: dict[str, Any]
) -> dict[tuple[Any, Any, Any], set[str]]:
    """Account codes and tax types on lines that the organisation does not have (as mirrored), per staged parent.

    Item codes are not checked: Xero lets the accounts team rename or delete an item that invoices already use,
    and those invoices keep the old code. Quarantining them would hold back their later changes (a void, a
    payment) for ever; their lines load without a product link instead.

    The run's distinct codes are compared with the mirror first; only lines carrying an unknown code are read
    (usually none), instead of every line of the run."""
    known = {
        code.label: _column_set(
            conn,
            f"SELECT {code.mirror_column} FROM {BY_NAME[code.entity].validated_table} "  # noqa: S608
            "WHERE connection_id = :connection_id",
            params,
        )
        for code in LINE_CODES
    }
    columns = {code.label: code.line_column for code in LINE_CODES}
    unknown_values: dict[str, list[str]] = {}
    for label, column in columns.items():
        # An empty mirror means we have not read that list yet: unknown, not wrong.
        if not known[label]:
            continue
        used = _column_set(
            conn,
            f"SELECT DISTINCT {column} FROM {lines_table} "  # noqa: S608
            "WHERE run_id = :run_id AND connection_id = :connection_id",
            params,
        )
        missing = sorted(used - known[label])
        if missing:
            unknown_values[label] = missing
    unknown: dict[tuple[Any, Any, Any], set[str]] = defaultdict(set)
    for label, values in unknown_values.items():
        column = columns[label]
        for start in range(0, len(values), 500):
            rows = conn.execute(
                text(
                    f"SELECT parent_id, parent_page, parent_position, {column} FROM {lines_table} "  # noqa: S608
                    f"WHERE run_id = :run_id AND connection_id = :connection_id AND {column} IN :values"
                ).bindparams(bindparam("values", expanding=True)),
                {**params, "values": values[start : start + 500]},
            )
            for parent_id, page, position, value in rows:
                unknown[(parent_id, page, position)].add(f"{label} {value}")
    return dict(unknown)


def _column_set(conn: Connection, sql: str, params: dict[str, Any]) -> set[Any]:
    return {row[0] for row in conn.execute(text(sql), params) if row[0]}


# Every staged row of the run is valid until a check fails. On PostgreSQL each row's new version is written beside
# the old one, in the room its page keeps for it (`migrate.VERDICT_FILLFACTOR`).
VERDICT_VALID = (
    "UPDATE {table} SET validation_status = 'valid' WHERE run_id = :run_id AND connection_id = :connection_id"
)


def mirrors_read(entity: Entity) -> frozenset[str]:
    """The other entities whose mirror `check_entity` reads for `entity`: a document's lines are checked against
    the organisation's accounts and tax rates as mirrored. Their verdicts must have committed first (an empty
    mirror reads as "not read yet", and its check would pass everything)."""
    return frozenset(code.entity for code in LINE_CODES) if document_lines(entity) else frozenset()


@dataclass
class Checked:
    """What `check_entity` found, for `record_verdicts` to write."""

    report: EntityReport  # checked, unchanged and the expectations' summaries
    reasons: dict[int, list[str]]  # failing stg_id -> its reasons
    xero_by_stg: dict[int, str | None]  # failing stg_id -> its Xero id
    raw_by_stg: dict[int, Any]  # failing stg_id -> its payload as text, for the quarantine


def check_entity(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> Checked:
    """Run one entity's suite over one run's staged rows, one GX batch of at most `BATCH_ROWS` rows at a time.
    Reads only: SQLite's one write lock is not held while Great Expectations runs, and on PostgreSQL the verdicts
    may be written by another thread while the next entity is staged (`import_run`)."""
    report = EntityReport(entity=entity.name)
    params = {"run_id": run_id, "connection_id": connection_id}
    lines_table = document_lines(entity)
    documents = _Documents(lines_table, params) if lines_table else None
    reasons: dict[int, list[str]] = {}
    xero_by_stg: dict[int, str | None] = {}
    summaries: dict[tuple[str, str], dict[str, Any]] = {}
    for staged in _batches(conn, entity, run_id, connection_id):
        report.checked += staged.records
        report.unchanged += staged.unchanged
        if not staged.to_check:
            continue
        frame = _frame(conn, staged, documents)
        batch_reasons, batch_summaries = evaluate(entity, frame)
        reasons.update(batch_reasons)
        for summary in batch_summaries:
            key = (summary["expectation"], json.dumps(summary["kwargs"], sort_keys=True, default=str))
            merged = summaries.setdefault(key, {**summary, "success": True, "unexpected_count": 0})
            merged["success"] = merged["success"] and summary["success"]
            merged["unexpected_count"] += summary["unexpected_count"]
        # A missing id reads as NaN (pandas 3 strings), not None: it is no id, and PostgreSQL refuses NaN = text.
        xero_by_stg.update(
            (int(stg_id), xero_id if isinstance(xero_id, str) else None)
            for stg_id, xero_id in zip(frame["stg_id"], frame["xero_id"], strict=True)
            if int(stg_id) in batch_reasons
        )
    report.expectations = list(summaries.values())
    raw_by_stg: dict[int, Any] = {}
    failing = sorted(reasons)
    for start in range(0, len(failing), 500):
        raw_by_stg.update(
            conn.execute(
                # As text on both databases: PostgreSQL would hand JSONB back parsed, and a payload that is a
                # bare JSON string would then look like JSON text already.
                text(
                    f"SELECT stg_id, CAST(raw AS TEXT) FROM {entity.staging_table} WHERE stg_id IN :ids"  # noqa: S608
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": failing[start : start + 500]},
            ).all()
        )
    return Checked(report, reasons, xero_by_stg, raw_by_stg)


def record_verdicts(
    conn: Connection, entity: Entity, run_id: str, connection_id: int, checked: Checked
) -> EntityReport:
    """Write what `check_entity` found: every staged row of the run valid, the failures quarantined with their
    reasons (a record's copies share its fate: if any copy failed, every copy of that xero_id in the run is held
    back). The caller commits it with the promotion."""
    report = checked.report
    params = {"run_id": run_id, "connection_id": connection_id}
    conn.execute(text(VERDICT_VALID.format(table=entity.staging_table)), params)
    if checked.reasons:
        quarantine_rows = [
            {
                **params,
                "entity": entity.name,
                "xero_id": checked.xero_by_stg[stg_id],
                "reasons": json.dumps(list(dict.fromkeys(why)), ensure_ascii=False),
                "raw": checked.raw_by_stg.get(stg_id),
                "stg_id": stg_id,
            }
            for stg_id, why in checked.reasons.items()
        ]
        failed_ids = {checked.xero_by_stg[s] for s in checked.reasons} - {None}
        _quarantine(conn, entity, quarantine_rows, failed_ids, params)
    report.quarantined = conn.execute(
        text(
            f"SELECT COUNT(*) FROM {entity.staging_table} WHERE run_id = :run_id "  # noqa: S608
            "AND connection_id = :connection_id AND validation_status = 'quarantined'"
        ),
        params,
    ).scalar_one()
    report.valid = report.checked - len(checked.reasons)
    return report


def validate_entity(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> EntityReport:
    """Check one entity of one run and write its verdicts (`check_entity`, then `record_verdicts`)."""
    return record_verdicts(
        conn, entity, run_id, connection_id, check_entity(conn, entity, run_id, connection_id)
    )


def _quarantine(
    conn: Connection,
    entity: Entity,
    rows: list[dict[str, Any]],
    failed_ids: set[Any],
    params: dict[str, Any],
) -> None:
    conn.execute(
        text(
            f"UPDATE {entity.staging_table} SET validation_status = 'quarantined' "  # noqa: S608
            "WHERE run_id = :run_id AND connection_id = :connection_id AND stg_id = :stg_id"
        ),
        [{**params, "stg_id": r["stg_id"]} for r in rows],
    )
    if failed_ids:
        conn.execute(
            text(
                f"UPDATE {entity.staging_table} SET validation_status = 'quarantined' "  # noqa: S608
                "WHERE run_id = :run_id AND connection_id = :connection_id AND xero_id = :xero_id"
            ),
            [{**params, "xero_id": x} for x in failed_ids],
        )
    # Rerunning validation for the same run replaces its quarantine rows instead of adding more.
    conn.execute(
        text(
            "DELETE FROM quarantined_record WHERE run_id = :run_id AND connection_id = :connection_id "
            "AND entity = :entity"
        ),
        {**params, "entity": entity.name},
    )
    conn.execute(
        text(
            "INSERT INTO quarantined_record (run_id, connection_id, entity, xero_id, reasons, raw, created_at) "
            "VALUES (:run_id, :connection_id, :entity, :xero_id, :reasons, :raw, CURRENT_TIMESTAMP)"
        ),
        [{k: v for k, v in r.items() if k != "stg_id"} for r in rows],
    )
