"""The diff in SQL (P4, S10), on SQLite and PostgreSQL: what counts as changed, what an import brings is not."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from tests.push.conftest import add_customer, add_product, update
from xero_crm_sync import db, echo, migrate
from xero_crm_sync.connections import utcnow
from xero_crm_sync.push import ledger, sqlfiles

XERO_ID = "9b3e2f4a-1c5d-4e6f-8a7b-0c1d2e3f4a5b"


@pytest.fixture
def crm(crm_url: str) -> Iterator[tuple[Engine, int, int]]:
    migrate.migrate(crm_url)
    engine = db.get_engine(crm_url)
    with engine.begin() as conn:
        oc = migrate.seed_demo(conn, "Diff Ltd")
        connection_id = conn.execute(
            text(
                "INSERT INTO xero_connection (operating_company_id, role, tenant_id) VALUES (:oc, 'primary', 't') "
                "RETURNING id"
            ),
            {"oc": oc},
        ).scalar_one()
    yield engine, oc, connection_id
    db.dispose_engine(crm_url)


def diff(engine: Engine, oc: int, connection_id: int, kind: str = "customers") -> dict[int, str]:
    record_type, select = (
        ("sales_ledger", sqlfiles.DIFF_CUSTOMERS)
        if kind == "customers"
        else ("product", sqlfiles.DIFF_PRODUCTS)
    )
    params = {"operating_company_id": oc, "connection_id": connection_id, "only_id": None, "order_id": None}
    with engine.begin() as conn:
        echo.adopt_imported(
            conn, record_type, operating_company_id=oc, connection_id=connection_id, run_id=None
        )
        return {row.id: row.fields_hash for row in sqlfiles.fetch(conn, select, params)}


def pushed(
    engine: Engine, connection_id: int, record_type: str, record_id: int, fields_hash: str, when: datetime
) -> None:
    with engine.begin() as conn:
        ledger.record_success(
            conn,
            connection_id=connection_id,
            record_type=record_type,
            record_id=record_id,
            xero_id=XERO_ID,
            fields_hash=fields_hash,
            operation="create",
            run_id="r",
            now=when,
        )


def mirror_contact(engine: Engine, connection_id: int, extracted: datetime, **fields: object) -> None:
    values = {
        "connection_id": connection_id,
        "xero_id": XERO_ID,
        "contact_id": XERO_ID,
        "contact_status": "ACTIVE",
        "last_run_id": "import-1",
        "last_extracted_at": extracted,
        **fields,
    }
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM val_contacts"))
        conn.execute(
            text(
                f"INSERT INTO val_contacts ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"
            ),
            values,
        )


def test_new_changed_unchanged_and_do_not_export(crm):
    engine, oc, connection_id = crm
    alpha = add_customer(engine, "Alpha Ltd", email="a@alpha.co.nz", person=("Ann", "Able"))
    add_customer(engine, "Hidden Ltd", do_not_export=True, do_not_export_reason="test account")
    found = diff(engine, oc, connection_id)
    assert list(found) == [alpha]

    pushed(engine, connection_id, "sales_ledger", alpha, found[alpha], utcnow())
    assert diff(engine, oc, connection_id) == {}  # no change, no call

    update(engine, "sales_ledger", alpha, analysis_code_1="X", account_manager_id=None)  # not pushed fields
    assert diff(engine, oc, connection_id) == {}
    update(engine, "sales_ledger", alpha, status="On Stop", on_stop_source="user")  # a CRM credit hold
    assert diff(engine, oc, connection_id) == {}, "a credit hold never archives the contact in Xero"
    update(engine, "sales_ledger", alpha, on_stop_source="xero_archived")  # contact status is pushed
    assert list(diff(engine, oc, connection_id)) == [alpha]
    update(engine, "sales_ledger", alpha, status="Active", on_stop_source=None)
    assert diff(engine, oc, connection_id) == {}
    with engine.begin() as conn:  # the contact person's name is pushed too
        conn.execute(
            text(
                "UPDATE contact SET last_name = 'Baker' WHERE id = (SELECT contact_id FROM sales_ledger WHERE id = :id)"
            ),
            {"id": alpha},
        )
    assert list(diff(engine, oc, connection_id)) == [alpha]


def test_rejected_values_are_not_resent_until_changed_or_retried(crm):
    engine, oc, connection_id = crm
    beta = add_customer(engine, "Beta Ltd", email="not-an-email")
    fields_hash = diff(engine, oc, connection_id)[beta]
    with engine.begin() as conn:
        ledger.record_rejected_hash(conn, "sales_ledger", beta, fields_hash)
        ledger.record_error(
            conn, connection_id=connection_id, record_type="sales_ledger", record_id=beta, code="rejected",
            message="Xero rejected it", action="fix it", run_id="r",
        )  # fmt: skip
    assert diff(engine, oc, connection_id) == {}
    with engine.begin() as conn:
        conn.execute(text("UPDATE sync_error SET status = 'retrying' WHERE record_id = :id"), {"id": beta})
    assert list(diff(engine, oc, connection_id)) == [beta]
    with engine.begin() as conn:
        conn.execute(text("UPDATE sync_error SET status = 'open' WHERE record_id = :id"), {"id": beta})
    update(engine, "sales_ledger", beta, email="accounts@beta.co.nz")
    assert list(diff(engine, oc, connection_id)) == [beta]


def test_records_in_an_unfinished_batch_are_left_to_the_resume_step(crm):
    engine, oc, connection_id = crm
    gamma = add_customer(engine, "Gamma Ltd")
    with engine.begin() as conn:
        ledger.open_batch(
            conn, connection_id=connection_id, record_type="sales_ledger", method="POST", path="Contacts",
            collection="Contacts", members=[ledger.Member(gamma, "create", "h", {"Name": "Gamma Ltd"})],
            run_id="r", now=utcnow(),
        )  # fmt: skip
    assert diff(engine, oc, connection_id) == {}


def test_values_an_import_brought_are_not_changed(crm):
    engine, oc, connection_id = crm
    delta = add_customer(
        engine, "Delta Ltd", email="d@delta.co.nz", phone="64 9 555", city="Auckland", accounting_code=XERO_ID
    )
    imported = utcnow()
    mirror_contact(
        engine, connection_id, imported, name="Delta Ltd", email_address="d@delta.co.nz", phone="64 9 555",
        city="Auckland", first_name="Xero-only person",  # no CRM contact person: not compared
    )  # fmt: skip
    assert diff(engine, oc, connection_id) == {}  # adopted: the import brought exactly these values
    update(engine, "sales_ledger", delta, email="new@delta.co.nz")
    assert list(diff(engine, oc, connection_id)) == [delta]

    # After our push, a mirror read *before* it must not be trusted: it still shows the old email.
    fields_hash = diff(engine, oc, connection_id)[delta]
    pushed(engine, connection_id, "sales_ledger", delta, fields_hash, imported + timedelta(seconds=5))
    update(engine, "sales_ledger", delta, email="d@delta.co.nz")  # back to what the stale mirror shows
    assert list(diff(engine, oc, connection_id)) == [delta]


def test_product_prices_hash_the_same_as_xero_returns_them(crm):
    engine, oc, connection_id = crm
    widget = add_product(engine, "W-1", name="Widget", sell_price=12.5, cost_price=4.25, accounting_code=XERO_ID,
                         sales_account_code="200", purchase_account_code="310", is_tracked=True)  # fmt: skip
    hidden = add_product(engine, "W-2", do_not_export=True)
    values = {
        "connection_id": connection_id, "xero_id": XERO_ID, "item_id": XERO_ID, "code": "W-1", "name": "Widget",
        "sales_unit_price": 12.50, "purchase_unit_price": 4.2500, "sales_account_code": "200",
        "purchase_cogs_account_code": "310", "last_run_id": "i", "last_extracted_at": utcnow(),
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO val_items ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"
            ),
            values,
        )
    assert diff(engine, oc, connection_id, "products") == {}
    update(engine, "product", widget, sell_price=12.75)
    assert list(diff(engine, oc, connection_id, "products")) == [widget]
    assert hidden not in diff(engine, oc, connection_id, "products")


def test_the_import_placeholder_person_is_not_a_contact_name(crm):
    engine, oc, connection_id = crm
    # I4 gives a Xero contact without FirstName/LastName a CRM contact named after the account.
    omega = add_customer(engine, "Omega Ltd", person=(None, "Omega Ltd"), accounting_code=XERO_ID)
    mirror_contact(engine, connection_id, utcnow(), name="Omega Ltd")
    assert diff(engine, oc, connection_id) == {}
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT first_name, last_name FROM push_customer_fields WHERE id = :id"), {"id": omega}
        )
        assert tuple(row.one()) == (None, None)


@pytest.mark.parametrize("crm_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_push_that_commits_while_the_adoption_waits_for_the_record_wins(crm):
    """PostgreSQL, two workers at once: an import's adoption reads the mirror and the customer, then waits for the
    row a push is updating (the push has sent other values and records their hash). When the push commits, the
    adoption must not record the values the mirror showed as what Xero holds: the push has just replaced them
    there, and the CRM's own values would never be sent (a lost update). The adoption reads the record's export
    date and hash again after the wait (sql/echo/). SQLite has one writer: the two cannot interleave there."""
    engine, oc, connection_id = crm
    delta = add_customer(engine, "Delta Ltd", email="d@delta.co.nz", accounting_code=XERO_ID)
    imported = utcnow()
    mirror_contact(engine, connection_id, imported, name="Delta Ltd", email_address="d@delta.co.nz")
    update(engine, "sales_ledger", delta, email="new@delta.co.nz")  # a sales user's edit, to push
    new_hash = diff(engine, oc, connection_id)[
        delta
    ]  # (the diff adopts nothing: the mirror shows the old email)
    update(engine, "sales_ledger", delta, email="d@delta.co.nz")  # and back: the mirror's values again

    adopted: list[int] = []
    with engine.connect() as push:
        push.begin()  # the push's transaction: it holds the customer's row from its update until it commits
        ledger.record_success(
            push, connection_id=connection_id, record_type="sales_ledger", record_id=delta, xero_id=XERO_ID,
            fields_hash=new_hash, operation="update", run_id="push", now=imported + timedelta(seconds=5),
        )  # fmt: skip

        def adopt() -> None:
            with engine.begin() as conn:
                adopted.append(
                    echo.adopt_imported(
                        conn,
                        "sales_ledger",
                        operating_company_id=oc,
                        connection_id=connection_id,
                        run_id=None,
                    )
                )

        worker = threading.Thread(target=adopt)
        worker.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the adoption has read, and waits for the push's row lock
            with engine.connect() as watcher:
                waiting = watcher.execute(
                    text(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%UPDATE sales_ledger%' AND datname = current_database()"
                    )
                ).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the adoption never waited for the push's row"
        push.commit()
        worker.join(30)
    assert adopted == [0]
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT last_export_hash FROM sales_ledger WHERE id = :id"), {"id": delta})
        assert stored.scalar_one() == new_hash
