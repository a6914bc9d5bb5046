"""Validation (I11): Great Expectations suites per entity over a run's staged rows.

A row that fails any expectation is quarantined with every reason it failed, marked `quarantined` in staging and
not loaded; the others are marked `valid` and promoted into the `val_*` mirror. The run goes on either way.

Suites are built from the entity registry (key present, required fields present, every value parsed, key unique
among distinct versions) plus the entity rules below (enumerations, amounts that add up, codes that exist). GX runs
in-process on a pandas frame of the run's typed columns (never the raw payload), one entity at a time, so memory is
bounded by the largest entity of one run.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import Connection, bindparam, text

from xero_crm_sync.entities import Entity

log = logging.getLogger(__name__)

TOLERANCE = 0.011  # Xero rounds each line to cents; totals may differ from a recomputation by one cent

ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "contacts": {"contact_status": ("ACTIVE", "ARCHIVED", "GDPRREQUEST")},
    "invoices": {
        "type": ("ACCREC", "ACCPAY"),
        "status": ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"),
        "line_amount_types": ("Exclusive", "Inclusive", "NoTax"),
    },
    "credit_notes": {
        "type": ("ACCRECCREDIT", "ACCPAYCREDIT"),
        "status": ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"),
        "line_amount_types": ("Exclusive", "Inclusive", "NoTax"),
    },
    "purchase_orders": {
        "status": ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"),
        "line_amount_types": ("Exclusive", "Inclusive", "NoTax"),
    },
    "payments": {"status": ("AUTHORISED", "DELETED")},
}

# Documents whose totals and lines must add up, with their lines table.
DOCUMENTS: dict[str, str] = {
    "invoices": "stg_invoice_lines",
    "credit_notes": "stg_credit_note_lines",
    "purchase_orders": "stg_purchase_order_lines",
}


@dataclass
class EntityReport:
    entity: str
    checked: int = 0
    valid: int = 0
    quarantined: int = 0
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "checked": self.checked,
            "valid": self.valid,
            "quarantined": self.quarantined,
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


def build_checks(entity: Entity, frame: pd.DataFrame) -> list[Check]:
    gxe = _gx().expectations
    key = entity.key
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
    if "name" in frame.columns and any(c.name == "name" and c.required for c in entity.columns):
        checks.append(
            Check(
                gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1, max_value=500),
                lambda r: "Name must be 1 to 500 characters",
            )
        )
    # The same record may legitimately be staged twice in a run (it changed while we paged, or identical
    # copies); two *different* versions with the same UpdatedDateUTC cannot be ordered, so neither is trusted.
    if "updated_date_utc" in frame.columns:
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
    for column, allowed in ENUMS.get(entity.name, {}).items():
        checks.append(
            Check(
                gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(allowed)),
                lambda r, c=column, a=allowed: f"{c} {str(r.get(c))[:40]!r} is not one of {', '.join(a)}",
            )
        )
    if "totals_gap" in frame.columns:
        checks.append(
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="totals_gap", max_value=TOLERANCE),
                lambda r: (
                    f"Total {r.get('total')} is not SubTotal {r.get('sub_total')} + TotalTax {r.get('total_tax')}"
                ),
            )
        )
    if "lines_gap" in frame.columns:
        checks.append(
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="lines_gap", max_value=TOLERANCE),
                lambda r: (
                    f"SubTotal {r.get('sub_total')} does not match the sum of its lines ({r.get('lines_total')})"
                ),
            )
        )
    if "unknown_codes" in frame.columns:
        checks.append(
            Check(
                gxe.ExpectColumnValuesToBeNull(column="unknown_codes"),
                lambda r: f"unknown codes on its lines: {r.get('unknown_codes')}",
            )
        )
    return checks


def evaluate(entity: Entity, frame: pd.DataFrame) -> tuple[dict[int, list[str]], list[dict[str, Any]]]:
    """Run the entity's suite on `frame` (one row per staged record, with `stg_id`).

    Returns (reasons per failing stg_id, one summary per expectation). Pure apart from GX itself.
    """
    if frame.empty:
        return {}, []
    checks = build_checks(entity, frame)
    gx = _gx()
    context = _context()
    name = f"{entity.name}_{id(frame)}"
    batch = (
        context.data_sources.add_or_update_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=name, expectations=[c.expectation for c in checks])
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["stg_id"]}
    )
    context.data_sources.delete(name)
    # Indexed by stg_id for the reasons' wording; built only when some row failed (it copies the frame).
    rows: pd.DataFrame | None = None
    reasons: dict[int, list[str]] = defaultdict(list)
    summaries: list[dict[str, Any]] = []
    # GX groups its results its own way (by column, it seems), not in the suite's order: pair them by configuration.
    outcomes = {_config_key(outcome.expectation_config): outcome for outcome in result.results}
    for check in checks:
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


def _frame(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> pd.DataFrame:
    # Amounts as floats: a Decimal is ~100 bytes, and 200,000 invoices of 12 amounts made validation's frame
    # alone weigh most of a gigabyte. The checks on amounts (present, totals within a cent) do not need more.
    cols = ", ".join(
        f"CAST(s.{c.name} AS DOUBLE PRECISION) AS {c.name}" if c.type == "numeric" else f"s.{c.name}"
        for c in entity.columns
    )
    # The payload's digest, not the payload: identical copies are recognised without parsing every record's JSON
    # into Python (that was most of validation's time and memory at 100,000 records).
    sql = (
        f"SELECT s.stg_id, s.xero_id, s.parse_errors, md5(CAST(s.raw AS TEXT)) AS _version, {cols} "  # noqa: S608
        f"FROM {entity.staging_table} s "
        "WHERE s.run_id = :run_id AND s.connection_id = :connection_id ORDER BY s.stg_id"
    )
    params = {"run_id": run_id, "connection_id": connection_id}
    frame = _read_frame(conn, sql, params)
    if frame.empty:
        return frame
    # Identical copies of a record (same version staged twice) are one record, not a duplicate.
    frame = frame.drop_duplicates(subset=["xero_id", "_version"], keep="last").drop(columns=["_version"])
    if entity.name in DOCUMENTS:
        frame = _add_document_checks(conn, entity, frame, run_id, connection_id)
    return frame


def _read_frame(conn: Connection, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """A query's rows as a frame, built from plain tuples (row mappings cost a dict per row)."""
    result = conn.execute(text(sql), params)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _add_document_checks(
    conn: Connection, entity: Entity, frame: pd.DataFrame, run_id: str, connection_id: int
) -> pd.DataFrame:
    lines_table = DOCUMENTS[entity.name]
    params = {"run_id": run_id, "connection_id": connection_id}
    sums = _read_frame(
        conn,
        "SELECT parent_id, parent_page, parent_position, "  # noqa: S608
        f"CAST(SUM(line_amount) AS DOUBLE PRECISION) AS lines_total, COUNT(*) AS line_count FROM {lines_table} "
        "WHERE run_id = :run_id AND connection_id = :connection_id "
        "GROUP BY parent_id, parent_page, parent_position",
        params,
    )
    staged = _read_frame(
        conn,
        f"SELECT stg_id, page, position FROM {entity.staging_table} "  # noqa: S608
        "WHERE run_id = :run_id AND connection_id = :connection_id",
        params,
    )
    frame = frame.merge(staged, on="stg_id", how="left")
    if not sums.empty:
        frame = frame.merge(
            sums,
            left_on=["xero_id", "page", "position"],
            right_on=["parent_id", "parent_page", "parent_position"],
            how="left",
        ).drop(columns=["parent_id", "parent_page", "parent_position"])
    else:
        frame["lines_total"] = None
        frame["line_count"] = 0
    num = lambda c: pd.to_numeric(frame[c], errors="coerce")  # noqa: E731
    frame["totals_gap"] = (num("total") - num("sub_total") - num("total_tax")).abs()
    inclusive = frame["line_amount_types"] == "Inclusive"
    expected_lines = num("sub_total").where(~inclusive, num("sub_total") + num("total_tax"))
    frame["lines_gap"] = (num("lines_total") - expected_lines).abs().where(frame["line_count"].fillna(0) > 0)
    frame["unknown_codes"] = _unknown_codes(conn, lines_table, frame, params)
    return frame.drop(columns=["page", "position"])


def _unknown_codes(
    conn: Connection, lines_table: str, frame: pd.DataFrame, params: dict[str, Any]
) -> pd.Series:
    """Account codes and tax types on lines that the organisation does not have (as mirrored).

    Item codes are not checked: Xero lets the accounts team rename or delete an item that invoices already use,
    and those invoices keep the old code. Quarantining them would hold back their later changes (a void, a
    payment) for ever; their lines load without a product link instead.

    The run's distinct codes are compared with the mirror first; only lines carrying an unknown code are read
    (usually none), instead of every line of the run."""
    known = {
        "account": _column_set(
            conn, "SELECT code FROM val_accounts WHERE connection_id = :connection_id", params
        ),
        "tax type": _column_set(
            conn, "SELECT tax_type FROM val_tax_rates WHERE connection_id = :connection_id", params
        ),
    }
    columns = {"account": "account_code", "tax type": "tax_type"}
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
    keys = list(zip(frame["xero_id"], frame["page"], frame["position"], strict=True))
    return pd.Series(
        [", ".join(sorted(unknown[k])) if k in unknown else None for k in keys],
        index=frame.index,
        dtype=object,
    )


def _column_set(conn: Connection, sql: str, params: dict[str, Any]) -> set[Any]:
    return {row[0] for row in conn.execute(text(sql), params) if row[0]}


def validate_entity(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> EntityReport:
    """Validate one entity of one run: quarantine failures with reasons, mark the rest valid."""
    report = EntityReport(entity=entity.name)
    frame = _frame(conn, entity, run_id, connection_id)
    params = {"run_id": run_id, "connection_id": connection_id}
    if frame.empty:
        return report
    reasons, summaries = evaluate(entity, frame)
    report.expectations = summaries
    report.checked = len(frame)
    # A missing id reads as NaN (pandas 3 strings), not None: it is no id, and PostgreSQL refuses NaN = text.
    xero_by_stg = {
        int(stg_id): xero_id if isinstance(xero_id, str) else None
        for stg_id, xero_id in zip(frame["stg_id"], frame["xero_id"], strict=True)
    }
    # A record's copies share its fate: if any copy failed, every copy of that xero_id in the run is held back.
    failed_ids = {xero_by_stg[s] for s in reasons} - {None}
    conn.execute(
        text(
            f"UPDATE {entity.staging_table} SET validation_status = 'valid' "  # noqa: S608
            "WHERE run_id = :run_id AND connection_id = :connection_id"
        ),
        params,
    )
    if reasons:
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
        quarantine_rows = [
            {
                **params,
                "entity": entity.name,
                "xero_id": xero_by_stg[stg_id],
                "reasons": json.dumps(list(dict.fromkeys(why)), ensure_ascii=False),
                "raw": raw_by_stg.get(stg_id),
                "stg_id": stg_id,
            }
            for stg_id, why in reasons.items()
        ]
        _quarantine(conn, entity, quarantine_rows, failed_ids, params)
    report.quarantined = conn.execute(
        text(
            f"SELECT COUNT(*) FROM {entity.staging_table} WHERE run_id = :run_id "  # noqa: S608
            "AND connection_id = :connection_id AND validation_status = 'quarantined'"
        ),
        params,
    ).scalar_one()
    report.valid = report.checked - len(reasons)
    return report


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
