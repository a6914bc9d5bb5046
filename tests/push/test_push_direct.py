"""The push's rules against a real sandbox and CRM database (SQLite and PostgreSQL), called without Airflow:
matching from the import's mirror costs no call, an ambiguous match creates nothing, a spent daily limit stops
the run cleanly and the next run resumes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from tests.push.conftest import add_customer, add_order, calls, writes, xero_write
from xero_crm_sync import xero_access
from xero_crm_sync.connections import utcnow
from xero_crm_sync.push import orders, run
from xero_crm_sync.push.orders import confirm_order, process_outbox
from xero_crm_sync.settings import get_settings


def mirror(pipeline, contact: dict, extracted: datetime) -> None:
    """What the last import read about a Xero contact (val_contacts)."""
    values = {
        "connection_id": pipeline.connections["primary"],
        "xero_id": contact["ContactID"],
        "contact_id": contact["ContactID"],
        "name": contact["Name"],
        "email_address": contact.get("EmailAddress"),
        "contact_status": contact["ContactStatus"],
        "last_run_id": "import-1",
        "last_extracted_at": extracted,
    }
    with pipeline.engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO val_contacts ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"
            ),
            values,
        )


def push(pipeline, run_id: str = "run-1") -> run.PushSummary:
    info = pipeline.store.get(pipeline.connections["primary"])
    client = xero_access.make_client(pipeline.store, info, get_settings())
    return run.push_customers(pipeline.engine, client, info, run_id)


def test_a_match_in_the_mirror_links_without_any_call(direct_pipeline):
    pipeline = direct_pipeline
    existing = xero_write(
        pipeline, "Contacts", {"Name": "Lambda Ltd", "EmailAddress": "hello@lambda.co.nz"}, "PUT"
    )
    mirror(pipeline, existing, utcnow())
    ledger_id = add_customer(pipeline.engine, "Lambda Ltd", email="hello@lambda.co.nz")

    summary = push(pipeline)

    assert summary.linked == 1 and summary.created == 0
    assert (
        pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id)
        == existing["ContactID"]
    )
    assert (
        calls(pipeline) == {}
    )  # found in the mirror; and Xero already has these values (the email's case aside)
    assert pipeline.scalar("SELECT operation FROM sync_history WHERE record_id = :id", id=ledger_id) == "link"


def test_an_ambiguous_match_creates_nothing(direct_pipeline):
    pipeline = direct_pipeline
    for name in ("Mu North Ltd", "Mu South Ltd"):
        xero_write(pipeline, "Contacts", {"Name": name, "EmailAddress": "accounts@mu.co.nz"}, "PUT")
    contacts_before = len(pipeline.org().contacts)
    ledger_id = add_customer(pipeline.engine, "Mu Ltd", email="accounts@mu.co.nz")

    summary = push(pipeline)

    assert summary.rejected == 1 and summary.created == 0
    assert calls(pipeline) == {"GET /Contacts": 1}  # asked Xero, then wrote nothing
    assert len(pipeline.org().contacts) == contacts_before
    [error] = pipeline.rows("SELECT * FROM sync_error WHERE record_id = :id", id=ledger_id)
    assert error["error_code"] == "ambiguous_match" and "2 Xero contacts" in error["message"]
    pipeline.sandbox.admin.reset_counters()
    assert push(pipeline, "run-2").changed == 0 and calls(pipeline) == {}  # unchanged: not asked again


def test_a_spent_daily_limit_stops_cleanly_and_the_next_run_resumes(direct_pipeline):
    pipeline = direct_pipeline
    ledger_id = add_customer(pipeline.engine, "Nu Ltd", email="accounts@nu.co.nz")
    pipeline.sandbox.admin.add_fault("429", count=1, problem="day", retry_after=3600, methods=["POST"])

    stopped = push(pipeline)

    assert stopped.stopped and "daily" in stopped.stopped
    assert pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id) is None
    assert pipeline.scalar("SELECT state FROM export_batch") == "pending"

    resumed = push(pipeline, "run-2")

    assert resumed.resumed_batches == 1 and resumed.created == 1
    posts = [w for w in writes(pipeline) if w["path"].endswith("/Contacts")]
    assert len({w["idempotency_key"] for w in posts}) == 1  # the same batch, the same key
    assert [c["Name"] for c in pipeline.org().contacts.values()].count("Nu Ltd") == 1


def test_the_time_schedule_respects_the_sync_interval(direct_pipeline):
    pipeline = direct_pipeline
    connection_id = pipeline.connections["primary"]
    assert [c["id"] for c in run.push_connections(pipeline.store, respect_interval=True)] == [connection_id]
    result = run.run_step("customers", pipeline.engine, pipeline.store, get_settings(), connection_id, "run-1",
                          last=True)  # fmt: skip
    assert result["changed"] == 0 and calls(pipeline) == {}
    assert pipeline.scalar("SELECT status FROM sync_run WHERE kind = 'push'") == "success"
    # Just pushed: the time schedule waits for the company's interval (S9); runs after an import do not.
    assert run.push_connections(pipeline.store, respect_interval=True) == []
    assert [c["id"] for c in run.push_connections(pipeline.store)] == [connection_id]


def test_an_order_waits_out_a_spent_daily_limit(direct_pipeline, monkeypatch):
    pipeline = direct_pipeline
    # The stopped run leaves its customer batch persisted and unsent, which the next run cannot tell from another
    # push's batch in flight; the bounded wait for it has its own test (test_exactly_once.py).
    monkeypatch.setattr(orders, "IN_FLIGHT_WAIT_SECONDS", 0.5)
    customer = add_customer(pipeline.engine, "Xi Ltd", email="accounts@xi.co.nz")
    order = add_order(pipeline.engine, customer, [dict(description="Work", quantity=1, unit_price=50)])
    with pipeline.engine.begin() as conn:
        confirm_order(conn, order)
    pipeline.sandbox.admin.add_fault("429", count=1, problem="day", retry_after=3600, methods=["POST"])

    stopped = process_outbox(pipeline.engine, pipeline.store, get_settings(), "run-1")

    assert stopped.stopped and stopped.failed == 0
    assert pipeline.scalar("SELECT state FROM order_outbox") == "pending"  # no verdict on the order
    assert pipeline.rows("SELECT * FROM sync_error") == []

    pipeline.sandbox.admin.advance_clock(24 * 3600)  # the next day's budget
    done = process_outbox(pipeline.engine, pipeline.store, get_settings(), "run-2")

    assert done.invoices_created == 1 and pipeline.scalar("SELECT state FROM order_outbox") == "done"
    invoice_id = pipeline.scalar("SELECT xero_invoice_id FROM sales_order WHERE id = :id", id=order)
    # Dated the day the order was confirmed (it has no order date), not the day Xero finally received it.
    confirmed = str(pipeline.scalar("SELECT confirmed_at FROM sales_order WHERE id = :id", id=order))[:10]
    assert str(pipeline.org().invoices.get(invoice_id)["Date"])[:10] == confirmed
