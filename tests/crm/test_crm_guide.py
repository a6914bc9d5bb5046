"""docs/CRM_GUIDE.md works as written: its SQL and Python examples run, in order, against a migrated SQLite and
PostgreSQL CRM connected to the Xero sandbox; the rows are what the guide says, and the order outbox then makes the
confirmed order a Draft invoice in Xero (and the order the Python example voids never reaches it)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import text

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import NO_LIMITS, AccountsTeam
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.push.orders import process_outbox
from xero_crm_sync.settings import get_settings
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

GUIDE = REPO_ROOT / "docs" / "CRM_GUIDE.md"
COMPANY = "ACME Ltd"  # the guide's operating company


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def sql_statements(block: str) -> list[str]:
    """The statements of a SQL block (comments and the block's own BEGIN/COMMIT left to the test's transaction)."""
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in code.split(";") if s.strip()]
    return [s for s in statements if s.upper() not in ("BEGIN", "COMMIT")]


@pytest.fixture
def crm(crm_url, monkeypatch):
    with SandboxServer(seed=2, contacts=5, tenants=1, limits=NO_LIMITS) as sandbox:
        monkeypatch.setenv("CRM_DATABASE_URL", crm_url)
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        migrate.migrate(crm_url)
        store = ConnectionStore(db.get_engine(crm_url))
        tenant = next(iter(sandbox.state.tenants))
        connect(
            store,
            get_settings(),
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=COMPANY,
            tenant=tenant,
            headless=True,
            create_operating_company=True,
            announce=lambda _m: None,
        )
        yield store, sandbox, tenant


def test_the_guides_examples_run_as_written_and_reach_xero(crm):
    store, sandbox, tenant = crm
    engine = store.engine
    sql, python = blocks("sql"), blocks("python")
    assert len(sql) == 3 and len(python) == 2
    for block in sql:
        with engine.begin() as conn:
            for statement in sql_statements(block):
                conn.exec_driver_sql(statement)
    for block in python:
        exec(compile(block, str(GUIDE), "exec"), {})  # the guide's own example

    with engine.connect() as conn:
        rows = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
        assert rows(
            "SELECT sl.name, c.first_name, c.last_name FROM sales_ledger sl JOIN contact c ON c.id = sl.contact_id "
            "ORDER BY sl.name"
        ) == [("Harbour Bikes Ltd", "Hana", "Ito"), ("Kiwi Cycles Ltd", "Tom", "Reid")]
        assert rows("SELECT code FROM product WHERE accounting_code IS NULL ORDER BY code") == [
            ("BIKE-1",),
            ("HELMET-1",),
        ]
        assert rows("SELECT order_number, status FROM sales_order ORDER BY order_number") == [
            ("SO-1001", "confirmed"),
            ("SO-1002", "void"),
            ("SO-2001", "void"),
        ]
        assert rows(
            "SELECT o.order_number, e.event FROM order_outbox e JOIN sales_order o ON o.id = e.sales_order_id "
            "ORDER BY e.id"
        ) == [("SO-1001", "confirmed"), ("SO-2001", "confirmed"), ("SO-2001", "voided")]

    summary = process_outbox(engine, store, get_settings(), "guide__1")
    # SO-2001 was voided before its invoice was sent: it is withdrawn without a call.
    assert (summary.invoices_created, summary.done_without_call, summary.failed) == (1, 2, 0)
    with engine.connect() as conn:
        invoices = dict(conn.execute(text("SELECT order_number, xero_invoice_id FROM sales_order")).all())
    team = AccountsTeam(sandbox, tenant)
    try:
        kept = team.get(f"Invoices/{invoices['SO-1001']}")["Invoices"][0]
        in_xero = team.get("Invoices", where='Type=="ACCREC"')["Invoices"]
    finally:
        team.close()
    assert (kept["Status"], kept["Type"], kept["Contact"]["Name"]) == ("DRAFT", "ACCREC", "Harbour Bikes Ltd")
    assert [(line["ItemCode"], Decimal(str(line["Quantity"]))) for line in kept["LineItems"]] == [
        ("BIKE-1", Decimal(2))
    ]
    assert invoices["SO-1002"] is None and invoices["SO-2001"] is None  # voided: never reached Xero
    assert [
        i["InvoiceID"] for i in in_xero if i["Contact"]["Name"] in ("Harbour Bikes Ltd", "Kiwi Cycles Ltd")
    ] == [invoices["SO-1001"]]
