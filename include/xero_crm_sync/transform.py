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
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, column, exists, false, select, table, text, true, update

from xero_crm_sync import db, echo, migrate, staging
from xero_crm_sync.company_settings import CompanySettings, get_company_settings
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.entities import ENTITIES, Entity, Lines
from xero_crm_sync.rules import b2c, enrichment, matching
from xero_crm_sync.webhooks import outbox

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
    # The entities whose staged or mirrored rows the step reads (None: any of them). A step may run ahead of the
    # load, while later entities are still being read, once these are settled (`ready_ahead`).
    reads: frozenset[str] | None = None
    # Nothing later in the load reads what the step writes, and nothing later changes what it reads of the earlier
    # steps' tables: once those have committed, it may commit on a connection of its own beside the later steps
    # (`detachable_ahead`; the document lines, which write only their line tables).
    detachable: bool = False


# --- which entities a step reads ----------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# Every staging and mirror table, record and line, -> the entity it belongs to.
_ENTITY_OF_TABLE = {
    table_name: entity.name
    for entity in ENTITIES
    for table_name in (
        entity.staging_table,
        entity.validated_table,
        *(lines.staging_table for lines in entity.lines),
        *(lines.validated_table for lines in entity.lines),
    )
}


def _view_reads() -> dict[str, frozenset[str]]:
    """The entities each view of sql/views/ reads, through the views it reads too."""
    bodies = {
        name.lower(): set(_IDENTIFIER.findall(body.lower()))
        for name, body in migrate.view_definitions().items()
    }
    reads = {
        name: {_ENTITY_OF_TABLE[w] for w in words if w in _ENTITY_OF_TABLE} for name, words in bodies.items()
    }
    for _ in bodies:  # views over views: propagate until nothing changes (at most one round per view)
        for name, words in bodies.items():
            for other in words & bodies.keys() - {name}:
                reads[name] |= reads[other]
    return {name: frozenset(found) for name, found in reads.items()}


_VIEW_READS = _view_reads()


def entities_read(sql: str) -> frozenset[str]:
    """The entities whose staging or mirror tables `sql` names, directly or through a view. A name in a comment
    counts too: reading too much only keeps a step from running ahead, never makes it run too early."""
    words = set(_IDENTIFIER.findall(sql.lower()))
    found = {_ENTITY_OF_TABLE[w] for w in words if w in _ENTITY_OF_TABLE}
    for view in words & _VIEW_READS.keys():
        found |= _VIEW_READS[view]
    return frozenset(found)


def _run_and_refresh(conn: Connection, counts: list[int], written: list[str]) -> int:
    total = sum(c for c in counts if c > 0)
    # The later steps join what this one wrote (in this transaction): a first big sync needs fresh statistics.
    db.refresh_statistics(conn, written, total)
    return total


def sql_step(
    name: str,
    filename: str,
    when: Callable[[ImportContext], bool] | None = None,
    *,
    directory: Path = TRANSFORM_DIR,
) -> Step:
    path = directory / filename
    sql = db.read_sql(path)
    written = db.tables_written(sql)

    def run(conn: Connection, ctx: ImportContext) -> int:
        return _run_and_refresh(conn, db.run_sql_file(conn, path, ctx.params(conn.dialect.name)), written)

    return Step(name, run, when or (lambda ctx: True), f"sql/{directory.name}/{filename}", entities_read(sql))


# --- the document lines template ---------------------------------------------------------------------------

DOCUMENT_LINES_TEMPLATE = TRANSFORM_DIR / "templates" / "upsert_document_lines.sql"


def loaded_lines(registry: Iterable[Entity] = ENTITIES) -> dict[str, tuple[Entity, Lines]]:
    """The registry's line entities the import loads into CRM line tables (by line entity name), with their
    documents' entity: those that name their CRM tables (`entities.line_items`)."""
    return {
        lines.name: (entity, lines)
        for entity in registry
        for lines in entity.lines
        if lines.crm_document_table and lines.crm_line_table
    }


def document_lines_sql(entity: Entity, lines: Lines) -> str:
    """The line template rendered for one line entity: exactly the SQL its load step runs (and `sql --show-lines`
    prints). Its identifiers come from the registry; `db.render_template` refuses anything but plain names."""
    if not (lines.crm_document_table and lines.crm_line_table):
        raise ValueError(f"{lines.name} names no CRM tables to load into")
    source = f"sql/transform/templates/{DOCUMENT_LINES_TEMPLATE.name}"
    rendered = db.render_template(
        db.read_sql(DOCUMENT_LINES_TEMPLATE),
        {
            "document_table": lines.crm_document_table,
            "line_table": lines.crm_line_table,
            "document_id": f"{lines.crm_document_table}_id",
            "validated_documents": entity.validated_table,
            "validated_lines": lines.validated_table,
        },
        source=source,
    )
    return f"-- {source} rendered for {lines.name} (entities.py: {entity.name})\n{rendered}\n"


def document_lines_step(entity: Entity, lines: Lines) -> Step:
    """The load step of one line entity: its rendered template, named after its CRM table (sales_invoice_lines)."""
    sql = document_lines_sql(entity, lines)
    written = db.tables_written(sql)
    source = f"sql/transform/templates/{DOCUMENT_LINES_TEMPLATE.name} ({lines.name})"

    def run(conn: Connection, ctx: ImportContext) -> int:
        counts = db.run_sql(conn, sql, ctx.params(conn.dialect.name), source=source)
        return _run_and_refresh(conn, counts, written)

    # A leaf of the load: no later step reads the line tables, and no later step changes a document's id, key or
    # do_not_import flag, nor a product's code (tests/pipeline/test_transform_steps.py checks the first by name).
    return Step(f"{lines.crm_line_table}s", run, source=source, reads=entities_read(sql), detachable=True)


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
    """I12: link this run's unlinked contacts to matching unlinked CRM ledgers (sales, purchase), by the rule the
    push uses too (rules/matching.py). Archived contacts are candidates as well: the rule matches them by
    account number and ContactNumber only."""
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
                select(
                    v.xero_id, v.account_number, v.contact_number, v.email_address, v.name, v.contact_status
                ).where(_run_contacts(ctx), flag == true(), ~already_linked)
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

# The SQL steps are the files in sql/transform/, in the order of their number: the numbers are the run order, since
# each step reads what earlier ones wrote (ledgers before the documents that link to them, documents before their
# lines, payments before the payment status). A step is named after its file, without the number and the leading
# verb; these three keep the names they always had, because the names are the keys of the counts each run records
# (`sync_run.counts`, shown by `summary` and the status page).
HISTORY = "history"  # the last step of every load, and of every load ahead: the history of what it wrote
_STEP_NAMES = {
    "030_classify_contacts_from_transactions.sql": "roles_from_transactions",
    "140_notify_overdue_invoices.sql": "overdue_notifications",
    "900_record_import_history.sql": HISTORY,
}
_NAME_VERBS = ("upsert_", "create_", "record_", "update_")
_WHEN: dict[str, Callable[[ImportContext], bool]] = {
    "currencies": lambda ctx: ctx.settings.import_currencies
}  # S7

# The Python steps, each run right before the SQL file named (an explicit order, because it matters):
_PYTHON_STEPS_BEFORE: dict[str, tuple[Step, ...]] = {
    # I12 links contacts to existing ledgers once 030 has given them their roles, before 035 records the ambiguous
    # matches it found and 040 creates ledgers for the contacts it did not link.
    "035_record_ambiguous_matches.sql": (
        Step(
            "link_existing_ledgers",
            link_existing_ledgers,
            source="transform.link_existing_ledgers",
            reads=frozenset({"contacts"}),
        ),
    ),
    # S2 classifies the ledgers 040 just wrote before 060 decides which customers get missing records (S5: B2C).
    "060_create_missing_customer_records.sql": (
        Step("classify_b2c", classify_b2c, source="transform.classify_b2c", reads=frozenset({"contacts"})),
    ),
    # The echo rule (echo.py): what this load wrote into customers and products is what Xero holds, so it is
    # recorded as pushed. Otherwise a change Xero made and then undid (a contact archived, then restored) would
    # look, at the next import, like a CRM edit waiting for the push, and the import would refuse to apply it. It
    # runs after every step that writes them, before the history of the run.
    "900_record_import_history.sql": (
        Step(
            "adopt_imported_customers",
            adopt_imported_customers,
            source=echo.ADOPT_SQL["sales_ledger"].name,
            reads=entities_read(db.read_sql(echo.ADOPT_SQL["sales_ledger"])),
        ),
        Step(
            "adopt_imported_products",
            adopt_imported_products,
            source=echo.ADOPT_SQL["product"].name,
            reads=entities_read(db.read_sql(echo.ADOPT_SQL["product"])),
        ),
    ),
}


def _step_name(filename: str) -> str:
    if filename in _STEP_NAMES:
        return _STEP_NAMES[filename]
    name = Path(filename).stem.split("_", 1)[1]
    return next((name.removeprefix(v) for v in _NAME_VERBS if name.startswith(v)), name)


def primary_steps(
    registry: Iterable[Entity] = ENTITIES,
    directory: Path = TRANSFORM_DIR,
    python_steps: dict[str, tuple[Step, ...]] | None = None,
) -> tuple[Step, ...]:
    """Every step a primary connection runs: the SQL files of `directory` in order, the Python steps before the
    file each precedes, and each loaded line entity's template right after the first file that writes its
    documents (the lines join them, and so it ran when each kind of line had its own file)."""
    python_steps = _PYTHON_STEPS_BEFORE if python_steps is None else python_steps
    pending_lines = dict(loaded_lines(registry))
    python_anchors = set(python_steps)
    steps: list[Step] = []
    for path in sorted(directory.glob("*.sql")):
        steps.extend(python_steps.get(path.name, ()))
        python_anchors.discard(path.name)
        name = _step_name(path.name)
        steps.append(sql_step(name, path.name, _WHEN.get(name), directory=directory))
        written = set(db.tables_written(db.read_sql(path)))
        for lines_name, (entity, lines) in list(pending_lines.items()):
            if lines.crm_document_table in written:
                steps.append(document_lines_step(entity, lines))
                del pending_lines[lines_name]
    # A renamed file must not silently drop a step.
    if python_anchors or pending_lines:
        raise RuntimeError(
            f"transform steps without a place: Python steps before {sorted(python_anchors)}, "
            f"lines whose documents no file writes {sorted(pending_lines)}"
        )
    return tuple(steps)


PRIMARY_STEPS: tuple[Step, ...] = primary_steps()

SECONDARY_STEPS: tuple[Step, ...] = (
    Step("enrich_from_secondary", enrich_from_secondary, source="transform.enrich_from_secondary"),
    sql_step(HISTORY, "900_record_import_history.sql"),
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
    conn: Connection,
    *,
    run_id: str,
    connection_id: int,
    now: datetime,
    full: bool,
    done: Collection[str] = (),
) -> dict[str, int]:
    """Transform and load this run's validated Xero records into the CRM; returns the rows each step wrote.

    `full` is recorded in the context; the steps need no special case for it because a full run promotes every
    record into val_* with this run id. `done`: the steps `load_ahead` already committed for this run (skipped;
    the history still records what the rest writes). Runs in the caller's transaction.
    """
    ctx = load_context(conn, run_id=run_id, connection_id=connection_id, now=now, full=full)
    return _run_steps(conn, ctx, [s for s in steps_for(ctx.role) if s.name not in done or s.name == HISTORY])


def ready_ahead(steps: Iterable[Step], settled: Collection[str]) -> list[Step]:
    """The leading steps (history aside) that read only `settled` entities: their inputs are final for the run, so
    they write now what they would write at the end. Leading only: a later step may read what an earlier wrote."""
    ready: list[Step] = []
    for step in steps:
        if step.name == HISTORY or step.reads is None or not step.reads <= set(settled):
            break
        ready.append(step)
    return ready


def load_ahead(
    conn: Connection,
    *,
    run_id: str,
    connection_id: int,
    now: datetime,
    full: bool,
    settled: Collection[str],
    done: Collection[str] = (),
) -> dict[str, int]:
    """Issue 13: while the run's last entities are still being read, run the load steps whose entities are
    settled (read and validated, or not read this run) and not `done`, then the history of what they wrote; {}
    when there is none. Always {} for a secondary connection: its load is one small enrichment step.

    In the caller's transaction, which commits without moving any watermark: a crash before the load re-reads the
    same records and the steps rewrite nothing (each is idempotent); the load then skips them (`run_import`'s
    `done`) and moves the watermarks with the rest. Xero's pacing hides this work (at 100,000 contacts, the
    steps up to the purchase order lines run while the payments are read)."""
    ctx = load_context(conn, run_id=run_id, connection_id=connection_id, now=now, full=full)
    if ctx.role != "primary":
        return {}
    steps = [s for s in ready_ahead(PRIMARY_STEPS, settled) if s.name not in done]
    if not steps:
        return {}
    history = next(s for s in PRIMARY_STEPS if s.name == HISTORY)
    return _run_steps(conn, ctx, [*steps, history])


def detachable_ahead(settled: Collection[str], done: Collection[str] = ()) -> list[str]:
    """Of the steps a primary connection's load ahead would run now (`ready_ahead`, not `done`), those that may
    commit on a connection of their own once the others have committed (`Step.detachable`)."""
    return [s.name for s in ready_ahead(PRIMARY_STEPS, settled) if s.detachable and s.name not in done]


def run_detached(
    conn: Connection, name: str, *, run_id: str, connection_id: int, now: datetime, full: bool
) -> dict[str, int]:
    """Run one detachable step of a primary connection's load on its own (in the caller's transaction, with the
    steps before it committed); its counts, without a history: a detachable step writes nothing the history
    records."""
    step = next(s for s in PRIMARY_STEPS if s.name == name)
    if not step.detachable:
        raise ValueError(f"{name} is not a step that may run on its own")
    ctx = load_context(conn, run_id=run_id, connection_id=connection_id, now=now, full=full)
    return _run_steps(conn, ctx, [step])


_STEP_ORDER = {s.name: index for index, s in enumerate(PRIMARY_STEPS)}


def merge_counts(ahead: dict[str, int], rest: dict[str, int]) -> dict[str, int]:
    """The counts of a load that ran partly ahead: every step once, in step order (whichever load ran it), the
    history summed over both."""
    merged = {name: count for name, count in ahead.items() if name != HISTORY}
    merged.update({name: count for name, count in rest.items() if name != HISTORY})
    merged = dict(sorted(merged.items(), key=lambda item: _STEP_ORDER.get(item[0], len(_STEP_ORDER))))
    if HISTORY in ahead or HISTORY in rest:
        merged[HISTORY] = ahead.get(HISTORY, 0) + rest.get(HISTORY, 0)
    return merged


def _run_steps(conn: Connection, ctx: ImportContext, steps: Iterable[Step]) -> dict[str, int]:
    counts: dict[str, int] = {}
    # What the load writes is what Xero holds: the CRM-change outbox's triggers queue nothing for it (outbox.muted).
    with outbox.muted(conn, ctx.run_id):
        for step in steps:
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
