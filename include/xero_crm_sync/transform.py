"""The import's transform-and-load: the `val_*` mirror of one connection -> the CRM tables, in ordered steps.

Each step is a set-based SQL file under `sql/transform/` (readable and runnable on its own with bound parameters:
:run_id, :connection_id, :operating_company_id, :now, :today and the settings values below) or a small Python
step where the rule is clearer in Python (I12 matching, S2 B2C regex with RE2, I13 enrichment); those read one
set and write one set (executemany), never a query per row.

Only rows promoted in this run are transformed (`v.last_run_id = :run_id`; a full resync promotes everything),
plus the sweeps that depend on time or on other records (payment status and overdue on :today, documents whose
customer arrived later). Every step is idempotent: rerunning a run leaves the same rows, and a record whose values
did not change keeps its last_accounting_import_date (I14). Records flagged do_not_import are never touched (S10).

A primary connection runs every step; a secondary connection only enriches existing customers (I13, C2).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, column, exists, false, select, table, text, true, update

from xero_crm_sync import db, echo, staging
from xero_crm_sync.company_settings import CompanySettings, get_company_settings
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.rules import b2c, enrichment, matching

log = logging.getLogger(__name__)

TRANSFORM_DIR = db.SQL_DIR / "transform"


@dataclass(frozen=True)
class ImportContext:
    run_id: str
    connection_id: int
    operating_company_id: int
    role: str  # 'primary' | 'secondary'
    now: datetime  # naive UTC
    full: bool
    settings: CompanySettings

    def params(self, dialect: str) -> dict[str, Any]:
        """The bound parameters every SQL step may use."""
        s = self.settings
        return {
            "run_id": self.run_id,
            "connection_id": self.connection_id,
            "operating_company_id": self.operating_company_id,
            "now": db.bind_time(self.now, dialect),
            "today": self.now.date() if dialect != "sqlite" else self.now.date().isoformat(),
            "display_description": s.display_description,
            "missing_records_mode": s.missing_records_mode,
            "include_suppliers": s.missing_records_include_suppliers,
            "include_b2c": s.missing_records_include_b2c,
            "default_account_manager_id": s.default_account_manager_id,
            "default_role_code": s.default_role_code,
            "default_company_type_id": s.default_company_type_id,
        }


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Connection, ImportContext], int]
    when: Callable[[ImportContext], bool] = lambda ctx: True
    source: str = ""  # the SQL file or the Python function, for docs and logs


def sql_step(
    name: str,
    filename: str,
    when: Callable[[ImportContext], bool] | None = None,
    *,
    directory: Path = TRANSFORM_DIR,
) -> Step:
    path = directory / filename
    written = db.tables_written(db.read_sql(path))

    def run(conn: Connection, ctx: ImportContext) -> int:
        counts = db.run_sql_file(conn, path, ctx.params(conn.dialect.name))
        total = sum(c for c in counts if c > 0)
        # The later steps join what this one wrote (in this transaction): a first big sync needs fresh statistics.
        db.refresh_statistics(conn, written, total)
        return total

    return Step(name, run, when or (lambda ctx: True), f"sql/{directory.name}/{filename}")


# --- Python steps ------------------------------------------------------------------------------------------

_CONTACTS = staging.TABLES["contacts"].validated
_LEDGER_COLUMNS = (
    "id",
    "operating_company_id",
    "accounting_code",
    "account_number",
    "email",
    "name",
    "is_b2c",
    "do_not_import",
    "last_accounting_import_date",
    "updated_at",
    "secondary_accounting_code",
    "analysis_code_1",
    "analysis_code_2",
    "tracking_codes",
)
_SALES_LEDGER = table("sales_ledger", *(column(c) for c in _LEDGER_COLUMNS))
_PURCHASE_LEDGER = table("purchase_ledger", *(column(c) for c in _LEDGER_COLUMNS[:10] if c != "is_b2c"))
_SYNC_ERROR = table(
    "sync_error", column("connection_id"), column("xero_id"), column("record_type"), column("error_code"),
    column("status"),
)  # fmt: skip

_UPSERT_MATCH = text(
    """INSERT INTO contact_match
        (connection_id, xero_id, ledger_type, outcome, match_key, ledger_id, candidate_ids, run_id, decided_at)
    VALUES (:connection_id, :xero_id, :ledger_type, :outcome, :match_key, :ledger_id, :candidate_ids, :run_id, :now)
    ON CONFLICT (connection_id, xero_id, ledger_type) DO UPDATE SET
        outcome = excluded.outcome, match_key = excluded.match_key, ledger_id = excluded.ledger_id,
        candidate_ids = excluded.candidate_ids, run_id = excluded.run_id, decided_at = excluded.decided_at"""
)


def _run_contacts(ctx: ImportContext) -> Any:
    v = _CONTACTS.c
    return (v.connection_id == ctx.connection_id) & (v.last_run_id == ctx.run_id)


def link_existing_ledgers(conn: Connection, ctx: ImportContext) -> int:
    """I12: link this run's unlinked, importable contacts to matching unlinked CRM ledgers (sales, purchase)."""
    v = _CONTACTS.c
    now = db.bind_time(ctx.now, conn.dialect.name)
    linked = 0
    for ledger_type, ledger, flag in (
        ("sales", _SALES_LEDGER, v.is_customer),
        ("purchase", _PURCHASE_LEDGER, v.is_supplier),
    ):
        lc = ledger.c
        already_linked = exists().where(
            lc.operating_company_id == ctx.operating_company_id, lc.accounting_code == v.xero_id
        )
        contacts = [
            matching.XeroContact(*row)
            for row in conn.execute(
                select(v.xero_id, v.account_number, v.contact_number, v.email_address, v.name).where(
                    _run_contacts(ctx), v.contact_status == "ACTIVE", flag == true(), ~already_linked
                )
            )
        ]
        if not contacts:
            continue
        ledgers = [
            matching.CrmLedger(row[0], row[1], row[2], row[3], bool(row[4]))
            for row in conn.execute(
                select(lc.id, lc.account_number, lc.email, lc.name, lc.do_not_import).where(
                    lc.operating_company_id == ctx.operating_company_id, lc.accounting_code.is_(None)
                )
            )
        ]
        if not ledgers:
            continue
        e = _SYNC_ERROR.c
        # A user who dismissed the "ambiguous match" error chose to import the contact as a new ledger.
        dismissed = set(
            conn.execute(
                select(e.xero_id).where(
                    e.connection_id == ctx.connection_id,
                    e.record_type == f"{ledger_type}_ledger",
                    e.error_code == "ambiguous_match",
                    e.status == "dismissed",
                )
            ).scalars()
        )
        matches = [
            m
            for m in matching.match_contacts(contacts, ledgers)
            if not (m.outcome == "ambiguous" and m.xero_id in dismissed)
        ]
        links = [{"b_id": m.ledger_id, "b_xero_id": m.xero_id} for m in matches if m.outcome == "linked"]
        if links:
            conn.execute(
                update(ledger)
                .where(lc.id == bindparam("b_id"), lc.accounting_code.is_(None))
                .values(
                    accounting_code=bindparam("b_xero_id"), last_accounting_import_date=now, updated_at=now
                ),
                links,
            )
            linked += len(links)
        if matches:
            conn.execute(
                _UPSERT_MATCH,
                [
                    {
                        "connection_id": ctx.connection_id,
                        "xero_id": m.xero_id,
                        "ledger_type": ledger_type,
                        "outcome": m.outcome,
                        "match_key": m.match_key,
                        "ledger_id": m.ledger_id,
                        "candidate_ids": ", ".join(str(i) for i in m.ledger_ids),
                        "run_id": ctx.run_id,
                        "now": now,
                    }
                    for m in matches
                ],
            )
    return linked


def classify_b2c(conn: Connection, ctx: ImportContext) -> int:
    """I3/S2: in regex mode, set is_b2c on this run's customers from their name; manual mode leaves it to users."""
    s = ctx.settings
    if s.b2c_mode != "regex" or not s.b2c_regex:
        return 0
    regex = b2c.compile_b2c(s.b2c_regex)
    lc = _SALES_LEDGER.c
    v = _CONTACTS.c
    rows = conn.execute(
        select(lc.id, lc.name, lc.is_b2c).where(
            lc.operating_company_id == ctx.operating_company_id,
            lc.do_not_import == false(),
            lc.accounting_code.in_(select(v.xero_id).where(_run_contacts(ctx))),
        )
    ).all()
    changes = b2c.reclassify(rows, regex)
    if changes:
        now = db.bind_time(ctx.now, conn.dialect.name)
        conn.execute(
            update(_SALES_LEDGER)
            .where(lc.id == bindparam("b_id"))
            .values(is_b2c=bindparam("b_is_b2c"), last_accounting_import_date=now, updated_at=now),
            [{"b_id": row_id, "b_is_b2c": flag} for row_id, flag in changes],
        )
    return len(changes)


def enrich_from_secondary(conn: Connection, ctx: ImportContext) -> int:
    """I13: the secondary organisation's contacts give matching CRM customers their analysis codes."""
    v = _CONTACTS.c
    contacts = [
        enrichment.SecondaryContact(*row)
        for row in conn.execute(
            select(v.xero_id, v.account_number, v.name, v.sales_tracking_categories).where(_run_contacts(ctx))
        )
    ]
    if not contacts:
        return 0
    lc = _SALES_LEDGER.c
    ledgers = [
        enrichment.LedgerValues(*row)
        for row in conn.execute(
            select(
                lc.id,
                lc.account_number,
                lc.name,
                lc.secondary_accounting_code,
                lc.analysis_code_1,
                lc.analysis_code_2,
                lc.tracking_codes,
            ).where(lc.operating_company_id == ctx.operating_company_id, lc.do_not_import == false())
        )
    ]
    changes = enrichment.enrich(contacts, ledgers)
    if changes:
        now = db.bind_time(ctx.now, conn.dialect.name)
        conn.execute(
            update(_SALES_LEDGER)
            .where(lc.id == bindparam("b_id"))
            .values(
                secondary_accounting_code=bindparam("b_code"),
                analysis_code_1=bindparam("b_a1"),
                analysis_code_2=bindparam("b_a2"),
                tracking_codes=bindparam("b_tracking"),
                last_accounting_import_date=now,
                updated_at=now,
            ),
            [
                {
                    "b_id": c.ledger_id,
                    "b_code": c.secondary_accounting_code,
                    "b_a1": c.analysis_code_1,
                    "b_a2": c.analysis_code_2,
                    "b_tracking": c.tracking_codes,
                }
                for c in changes
            ],
        )
    return len(changes)


def _adopt(record_type: str) -> Callable[[Connection, ImportContext], int]:
    def run(conn: Connection, ctx: ImportContext) -> int:
        return echo.adopt_imported(
            conn,
            record_type,
            operating_company_id=ctx.operating_company_id,
            connection_id=ctx.connection_id,
            run_id=ctx.run_id,
        )

    return run


adopt_imported_customers = _adopt("sales_ledger")
adopt_imported_products = _adopt("product")


# --- the ordered steps -------------------------------------------------------------------------------------

PRIMARY_STEPS: tuple[Step, ...] = (
    sql_step("tax_rates", "010_upsert_tax_rates.sql"),
    sql_step("currencies", "020_upsert_currencies.sql", when=lambda ctx: ctx.settings.import_currencies),
    sql_step("roles_from_transactions", "030_classify_contacts_from_transactions.sql"),
    Step("link_existing_ledgers", link_existing_ledgers, source="transform.link_existing_ledgers"),
    sql_step("ambiguous_matches", "035_record_ambiguous_matches.sql"),
    sql_step("sales_ledgers", "040_upsert_sales_ledgers.sql"),
    sql_step("purchase_ledgers", "045_upsert_purchase_ledgers.sql"),
    Step("classify_b2c", classify_b2c, source="transform.classify_b2c"),
    sql_step("missing_customer_records", "060_create_missing_customer_records.sql"),
    sql_step("missing_supplier_records", "065_create_missing_supplier_records.sql"),
    sql_step("link_existing_products", "070_link_existing_products.sql"),
    sql_step("products", "075_upsert_products.sql"),
    sql_step("stock_levels", "080_upsert_stock_levels.sql"),
    sql_step("sales_invoices", "090_upsert_sales_invoices.sql"),
    sql_step("sales_invoice_lines", "095_upsert_sales_invoice_lines.sql"),
    sql_step("credit_notes", "100_upsert_credit_notes.sql"),
    sql_step("credit_note_lines", "105_upsert_credit_note_lines.sql"),
    sql_step("purchase_orders", "110_upsert_purchase_orders.sql"),
    sql_step("purchase_order_lines", "115_upsert_purchase_order_lines.sql"),
    sql_step("payments", "120_upsert_payments.sql"),
    sql_step("payment_status", "130_update_payment_status.sql"),
    sql_step("overdue_notifications", "140_notify_overdue_invoices.sql"),
    # The echo rule (echo.py): what this load wrote into customers and products is what Xero holds, so it is
    # recorded as pushed. Otherwise a change Xero made and then undid (a contact archived, then restored) would
    # look, at the next import, like a CRM edit waiting for the push, and the import would refuse to apply it.
    Step("adopt_imported_customers", adopt_imported_customers, source=echo.ADOPT_SQL["sales_ledger"].name),
    Step("adopt_imported_products", adopt_imported_products, source=echo.ADOPT_SQL["product"].name),
    sql_step("history", "900_record_import_history.sql"),
)

SECONDARY_STEPS: tuple[Step, ...] = (
    Step("enrich_from_secondary", enrich_from_secondary, source="transform.enrich_from_secondary"),
    sql_step("history", "900_record_import_history.sql"),
)


def steps_for(role: str) -> tuple[Step, ...]:
    return PRIMARY_STEPS if role == "primary" else SECONDARY_STEPS


class UnknownConnection(LookupError):
    pass


def load_context(
    conn: Connection, *, run_id: str, connection_id: int, now: datetime, full: bool
) -> ImportContext:
    row = conn.execute(
        text("SELECT operating_company_id, role FROM xero_connection WHERE id = :id"), {"id": connection_id}
    ).first()
    if row is None:
        raise UnknownConnection(f"no Xero connection {connection_id}")
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    return ImportContext(
        run_id=run_id,
        connection_id=connection_id,
        operating_company_id=row.operating_company_id,
        role=row.role,
        now=now,
        full=full,
        settings=get_company_settings(conn, row.operating_company_id),
    )


def run_import(
    conn: Connection, *, run_id: str, connection_id: int, now: datetime, full: bool
) -> dict[str, int]:
    """Transform and load this run's validated Xero records into the CRM; returns the rows each step wrote.

    `full` is recorded in the context; the steps need no special case for it because a full run promotes every
    record into val_* with this run id. Runs in the caller's transaction.
    """
    ctx = load_context(conn, run_id=run_id, connection_id=connection_id, now=now, full=full)
    counts: dict[str, int] = {}
    for step in steps_for(ctx.role):
        if not step.when(ctx):
            counts[step.name] = 0
            continue
        started = time.perf_counter()
        counts[step.name] = step.run(conn, ctx)
        crash_point("load.step")
        log.debug(
            "%s: %d rows in %.3fs (%s)",
            step.name,
            counts[step.name],
            time.perf_counter() - started,
            step.source,
        )
    return counts
