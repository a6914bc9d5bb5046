"""The CRM's business tables in a form two databases can be compared by: what a user sees, not how it was stored.

Two runs of the same import into two databases give the same records, but not the same surrogate ids (two
organisations' loads interleave differently) nor the same bookkeeping times. So each row is compared without its
own id and its timestamps, and each foreign key is replaced by the natural key of the row it points to (a Xero
id, a code, a name).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, text

from xero_crm_sync.summary import CRM_TABLES

NATURAL_KEYS = (
    "accounting_code",
    "source_accounting_code",
    "tenant_id",
    "code",
    "natural_key",
    "name",
    "tax_type",
)
KEEP_IDS = frozenset({"connection_id"})  # both databases connect the organisations in the same order


def _is_bookkeeping(column: str) -> bool:
    return column.endswith("_at") or column in ("last_accounting_import_date", "last_accounting_export_date")


def _natural_keys(engine: Engine, table: str) -> dict[Any, Any]:
    columns = {c["name"] for c in inspect(engine).get_columns(table)}
    key_columns = [c for c in NATURAL_KEYS if c in columns]
    if not key_columns:
        return {}
    select = ", ".join(key_columns)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, {select} FROM {table}")).all()
    return {row[0]: next((v for v in row[1:] if v is not None), None) for row in rows}


def snapshot(engine: Engine, tables: tuple[str, ...] = CRM_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    inspector = inspect(engine)
    lookups: dict[str, dict[Any, Any]] = {}
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in tables:
        # Foreign keys to a surrogate id; one to a code (role_code.code) is natural already.
        foreign = {
            fk["constrained_columns"][0]: fk["referred_table"]
            for fk in inspector.get_foreign_keys(table)
            if len(fk["constrained_columns"]) == 1 and fk["referred_columns"] == ["id"]
        }
        for referred in foreign.values():
            if referred not in lookups:
                lookups[referred] = _natural_keys(engine, referred)
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
        canonical = []
        for row in rows:
            values = []
            for column, value in sorted(row.items()):
                if column in foreign and column not in KEEP_IDS:
                    values.append((column, str(lookups[foreign[column]].get(value, value))))
                elif column == "id" or _is_bookkeeping(column):
                    continue
                elif column.endswith("_id") and isinstance(value, int) and column not in KEEP_IDS:
                    continue  # an id of a row elsewhere that is not a foreign key (notification.record_id)
                else:
                    values.append((column, str(value)))
            canonical.append(tuple(values))
        out[table] = sorted(canonical)
    return out


def differences(left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Per table: row counts and the first rows only one side has."""
    problems = []
    for table in left:
        a, b = left[table], right.get(table, [])
        if a == b:
            continue
        only_left = [r for r in a if r not in b][:2]
        only_right = [r for r in b if r not in a][:2]
        problems.append(
            f"{table}: {len(a)} rows vs {len(b)}; only in local run {only_left}; only in Celery run {only_right}"
        )
    return problems
