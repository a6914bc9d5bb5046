"""Settings keep their promises: S4's default account manager is the "Unassigned" user on a database set up only
with the README's commands (`migrate`, `connect --create-operating-company`), so imported ledgers get a manager
and overdue invoices notify someone."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import text

from tests.e2e.conftest import AccountsTeam
from tests.operating.conftest import COMPANY, connect_new_company, run
from xero_crm_sync import db, migrate
from xero_crm_sync.company_settings import UNASSIGNED_USER, get_company_settings


def test_an_import_after_migrate_and_connect_gives_ledgers_the_unassigned_manager_and_notifies(
    fresh_crm, sandbox
):
    connect_new_company()
    assert run("import", "--full") == 0
    engine = db.get_engine(fresh_crm)
    with engine.connect() as conn:
        company_id = conn.execute(
            text("SELECT id FROM operating_company WHERE name = :n"), {"n": COMPANY}
        ).scalar_one()
        unassigned = conn.execute(
            text("SELECT id FROM crm_user WHERE operating_company_id = :c AND name = :n"),
            {"c": company_id, "n": UNASSIGNED_USER},
        ).scalar_one()
        assert get_company_settings(conn, company_id).default_account_manager_id == unassigned
        managers = conn.execute(
            text("SELECT account_manager_id, COUNT(*) FROM sales_ledger GROUP BY account_manager_id")
        ).all()
        assert managers and [m for m, _ in managers] == [unassigned], managers
        # An invoice awaiting approval, already past its due date: the accounts team approves it in Xero.
        invoice_id = conn.execute(
            text(
                "SELECT accounting_code FROM sales_invoice WHERE xero_status = 'SUBMITTED' "
                "AND due_date < CURRENT_DATE ORDER BY id LIMIT 1"
            )
        ).scalar_one()
    team = AccountsTeam(sandbox, sandbox.admin.tenants()[0]["tenantId"])
    try:
        team.write("POST", f"/Invoices/{invoice_id}", {"InvoiceID": invoice_id, "Status": "AUTHORISED"})
    finally:
        team.close()
    assert run("import") == 0
    with engine.connect() as conn:
        notified = conn.execute(
            text("SELECT crm_user_id, title FROM notification WHERE kind = 'invoice_overdue'")
        ).all()
    assert len(notified) == 1 and notified[0].crm_user_id == unassigned, notified


def test_migrate_gives_existing_companies_their_unassigned_manager_once(fresh_crm, tmp_path: Path):
    """A database migrated before 0240, with a company whose S4 stayed empty, and one without settings."""
    before = tmp_path / "migrations"
    before.mkdir()
    for path in migrate.MIGRATIONS_DIR.iterdir():
        if path.name < "0240":
            shutil.copy(path, before / path.name)
    engine = db.get_engine(fresh_crm)
    with engine.begin() as conn:
        migrate.apply_migrations(conn, before)
        old = conn.execute(
            text("INSERT INTO operating_company (name) VALUES ('Old Ltd') RETURNING id")
        ).scalar_one()
        bare = conn.execute(
            text("INSERT INTO operating_company (name) VALUES ('Bare Ltd') RETURNING id")
        ).scalar_one()
        conn.execute(text("INSERT INTO integration_settings (operating_company_id) VALUES (:c)"), {"c": old})
    migrate.migrate(fresh_crm)
    with engine.begin() as conn:
        for company_id in (old, bare):
            manager = get_company_settings(conn, company_id).default_account_manager_id
            name = conn.execute(text("SELECT name FROM crm_user WHERE id = :id"), {"id": manager}).scalar()
            assert name == UNASSIGNED_USER, company_id
        # Set to none on purpose afterwards: it stays none through later migrates.
        conn.execute(
            text(
                "UPDATE integration_settings SET default_account_manager_id = NULL WHERE operating_company_id = :c"
            ),
            {"c": old},
        )
    migrate.migrate(fresh_crm)
    with engine.connect() as conn:
        assert get_company_settings(conn, old).default_account_manager_id is None
