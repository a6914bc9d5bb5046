"""What a sync cycle did, as a user checks it: rows per CRM table, quarantined records and why, API calls used
against the fewest possible. Printed by `make run` and by `python -m xero_crm_sync summary`."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import Engine, text

from xero_crm_sync import runs
from xero_crm_sync.entities import BY_NAME
from xero_crm_sync.xero_client import PAGE_SIZE

CRM_TABLES = (
    "tax_rate",
    "currency",
    "sales_ledger",
    "purchase_ledger",
    "company",
    "division",
    "contact",
    "product",
    "stock_level",
    "sales_invoice",
    "sales_invoice_line",
    "credit_note",
    "credit_note_line",
    "purchase_order",
    "purchase_order_line",
    "payment",
    "sales_order",
    "notification",
)


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in CRM_TABLES}  # noqa: S608


def quarantine_reasons(engine: Engine, run_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    sql = "SELECT entity, xero_id, reasons FROM quarantined_record WHERE resolved_at IS NULL"
    params: dict[str, Any] = {}
    if run_id:
        sql += " AND run_id = :run_id"
        params["run_id"] = run_id
    with engine.connect() as conn:
        rows = conn.execute(text(sql + " ORDER BY entity, xero_id"), params).all()
    out = []
    for entity, xero_id, reasons in rows[:limit]:
        parsed = reasons if isinstance(reasons, list) else json.loads(reasons)
        out.append({"entity": entity, "xero_id": xero_id, "reasons": parsed})
    return out


def fewest_calls(extracted: dict[str, dict[str, Any]]) -> int:
    """The theoretical minimum for a read of ``{entity: {"records": n}}``: ceil(n / 1000) per paged entity (at
    least one call to learn that nothing changed), one call per unpaged entity. Feed it the records the server
    holds (``render`` does with ``server``), not what the client says it read."""
    total = 0
    for name, item in extracted.items():
        if BY_NAME[name].paged:
            total += max(1, math.ceil(item["records"] / PAGE_SIZE))
        else:
            total += 1
    return total


def run_extracts(engine: Engine, run_id: str) -> dict[int, dict[str, Any]]:
    """The extract part of `sync_run.counts` per connection for a run."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT connection_id, counts FROM sync_run WHERE run_id = :r AND kind = 'import'"),
            {"r": run_id},
        ).all()
    out = {}
    for connection_id, counts in rows:
        out[int(connection_id)] = runs.counts_of(counts).get("extract", {})
    return out


def latest_import_run(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT run_id FROM sync_run WHERE kind = 'import' ORDER BY started_at DESC, id DESC LIMIT 1"
            )
        ).scalar()


def server_import_figures(
    endpoints: dict[str, dict[str, Any]], held: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The import's figures as the server sees them, for one organisation: the GETs it counted on each entity's
    collection (``endpoints``: the sandbox's counters, ``"GET /Contacts": {"calls": n, ...}``) and the records
    it holds per collection (``held``: the sandbox's ``GET /sandbox/records``)."""
    per_entity = {}
    for entity in BY_NAME.values():
        calls = sum(
            item.get("calls", 0)
            for template, item in endpoints.items()
            if template.split(" ", 1) == ["GET", f"/{entity.path}"]
        )
        per_entity[entity.name] = {"calls": calls, "held": held.get(entity.path, {}).get("held", 0)}
    return {"entities": per_entity}


def render(
    engine: Engine,
    run_id: str,
    sandbox_calls: dict[str, int] | None = None,
    server: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The summary; ``server`` (by organisation name, from ``server_import_figures``) replaces the client's own
    call counts with the server's: calls it counted, fewest possible from the records it holds."""
    lines = [f"Sync cycle {run_id}", "", "CRM tables (rows):"]
    for table, count in table_counts(engine).items():
        lines.append(f"  {table:<22} {count:>8}")
    source = "counted by the sandbox" if server else "as the client counted them"
    lines += ["", f"API calls of the import (used / fewest possible, {source}):"]
    with engine.connect() as conn:
        names = dict(conn.execute(text("SELECT id, tenant_name FROM xero_connection")).all())
        statuses = dict(
            conn.execute(
                text("SELECT connection_id, status FROM sync_run WHERE run_id = :r AND kind = 'import'"),
                {"r": run_id},
            ).all()
        )
    for connection_id, extract in run_extracts(engine, run_id).items():
        entities = extract.get("entities", {})
        name = names.get(connection_id, connection_id)
        figures = (server or {}).get(str(name))
        if figures:  # the server's counts of calls, and of the records the run's entities hold
            used = sum(figures["entities"][entity]["calls"] for entity in entities)
            minimum = fewest_calls({e: {"records": figures["entities"][e]["held"]} for e in entities})
        else:
            used, minimum = extract.get("calls", 0), fewest_calls(entities)
        lines.append(
            f"  {name}: {used} / {minimum}"
            f"  (retries {extract.get('retries', 0)}, 429s {extract.get('rate_limited', 0)},"
            f" run {statuses.get(connection_id, '?')})"
        )
        for entity, item in entities.items():
            held = figures["entities"].get(entity) if figures else None
            calls = held["calls"] if held else item["calls"]
            tail = f" (Xero holds {held['held']})" if held else ""
            lines.append(
                f"    {entity:<20} {item['mode']:<11} {item['records']:>7} records {calls:>4} calls{tail}"
            )
        if extract.get("stopped"):
            lines.append(f"    stopped early: {extract['stopped']}")
    if sandbox_calls:
        lines.append(
            "  every call the sandbox counted (import and push): "
            + ", ".join(f"{k}: {v}" for k, v in sandbox_calls.items())
        )
    quarantined = quarantine_reasons(engine, run_id)
    lines += ["", f"Quarantined records ({len(quarantined)} shown):"]
    for item in quarantined:
        lines.append(f"  {item['entity']} {item['xero_id']}: {'; '.join(item['reasons'])}")
    if not quarantined:
        lines.append("  none")
    return "\n".join(lines)
