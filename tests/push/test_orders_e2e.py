"""Confirmed orders -> Draft invoices (P6, P7) through Airflow against the sandbox, on SQLite and PostgreSQL.

- event-driven: xero_order_invoices is scheduled on the outbox asset, watched by OrderOutboxTrigger; the trigger,
  run as the triggerer runs it (its async `run()`, against the real CRM database), fires on its first poll after
  a confirmation (no sleeping on a schedule);
- exactly one invoice per order: Xero creates the first invoice but its answer is lost and the network stays down
  until the task fails; Airflow retries it, the same Idempotency-Key goes out again and Xero replays its first
  answer; a repeated run sends nothing;
- the customer is pushed first; the invoice carries currency, reference, the lines and a delivery line;
- voiding: a draft is deleted in Xero, an authorised invoice becomes an unresolved error for the accounts team.
"""

from __future__ import annotations

import asyncio
import importlib
import os

import pytest

from tests.e2e.conftest import load_dag
from tests.push.conftest import (
    add_customer,
    add_order,
    add_product,
    calls,
    p5_writes,
    run_dag,
    writes,
    xero_write,
)
from xero_crm_sync.push.orders import confirm_order, void_order
from xero_triggers import OrderOutboxTrigger

pytestmark = pytest.mark.airflow


async def next_event(events, timeout: float = 60.0):
    # The timeout only stops a broken test from hanging; nothing asserts how long the trigger took.
    return await asyncio.wait_for(anext(events), timeout)


def test_dag_is_event_driven_on_the_order_outbox(airflow_db):
    dag = load_dag("xero_order_invoices")
    asset = dag.timetable.asset_condition
    assert asset.uri == "xero://crm/order-outbox"
    [watcher] = asset.watchers
    # By classpath, not isinstance: the DAG file may have imported the plugins module as another module object.
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == f"{OrderOutboxTrigger.__module__}.{OrderOutboxTrigger.__qualname__}"
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)  # as the triggerer re-creates it
    assert rebuilt.serialize() == (classpath, kwargs)
    assert dag.max_active_runs == 1


def test_confirmed_orders_become_one_draft_invoice_each(push_pipeline, monkeypatch):
    pipeline = push_pipeline
    engine, org = pipeline.engine, pipeline.org()
    monkeypatch.setenv("CRM_DATABASE_URL", pipeline.url)
    monkeypatch.setenv("XERO_ORDER_RETRY_DELAY_SECONDS", "1")

    gamma = add_customer(engine, "Gamma Ltd", email="accounts@gamma.co.nz", currency_code="NZD")
    gadget = add_product(engine, "GADGET", name="Gadget", description="A gadget", sell_price=20,
                         sales_account_code="200", sales_tax_type="OUTPUT2")  # fmt: skip
    first_order = add_order(
        engine, gamma,
        [dict(product_id=gadget, quantity=2, unit_price=19.5, discount_rate=10),
         dict(description="Installation", quantity=1, unit_price=80, account_code="200", tax_type="OUTPUT2")],
        order_number="SO-1001", customer_reference="PO 77", currency_code="NZD", delivery_charge=15,
    )  # fmt: skip
    second_order = add_order(
        engine, gamma, [dict(description="Consulting", quantity=3, unit_price=150, account_code="200")],
        order_number="SO-1002",
    )  # fmt: skip

    # --- the trigger fires on its first poll after each confirmation --------------------------------------
    async def watch() -> tuple[dict, dict, int, int]:
        events = OrderOutboxTrigger(poll_interval=0.05).run()
        with engine.begin() as conn:
            first_event = confirm_order(conn, first_order)
        fired_first = await next_event(events)
        with engine.begin() as conn:
            second_event = confirm_order(conn, second_order)
        fired_second = await next_event(events)
        await events.aclose()
        return fired_first.payload, fired_second.payload, first_event, second_event

    first_fired, second_fired, first_event, second_event = asyncio.run(watch())
    assert first_fired == {"pending": 1, "newest_event_id": first_event}
    assert second_fired == {"pending": 2, "newest_event_id": second_event}

    # --- the run: Xero creates the first invoice but the answer is lost, then the network stays down until the
    # task's own retries are spent and it fails; Airflow retries the task ---------------------------------------
    pipeline.sandbox.admin.add_fault("reset_after", count=1, methods=["PUT"], path_pattern="Invoices$")
    pipeline.sandbox.admin.add_fault("reset", count=2, methods=["PUT"], path_pattern="Invoices$")
    dag_run = run_dag(pipeline, "xero_order_invoices")
    assert dag_run.get_task_instance("process_outbox").try_number == 2

    orders = {r["id"]: r for r in pipeline.rows("SELECT * FROM sales_order")}
    contact_id = pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=gamma)
    assert contact_id is not None  # the customer was pushed first
    invoices = [i for i in org.invoices.values() if i["Contact"]["ContactID"] == contact_id]
    assert sorted(i["InvoiceID"] for i in invoices) == sorted(
        [orders[first_order]["xero_invoice_id"], orders[second_order]["xero_invoice_id"]]
    )  # exactly one invoice per order
    assert {(i["Type"], i["Status"]) for i in invoices} == {("ACCREC", "DRAFT")}

    invoice = org.invoices.get(orders[first_order]["xero_invoice_id"])
    assert (invoice["CurrencyCode"], invoice["Reference"]) == ("NZD", "PO 77")
    lines = [
        (line.get("ItemCode"), line["Description"], line["Quantity"], line["UnitAmount"], line.get("TaxType"),
         line.get("DiscountRate"), line.get("AccountCode"))
        for line in invoice["LineItems"]
    ]  # fmt: skip
    assert lines[0] == ("GADGET", "A gadget", 2.0, 19.5, "OUTPUT2", 10.0, "200")  # product's tax and account
    assert lines[1] == (None, "Installation", 1.0, 80.0, "OUTPUT2", None, "200")
    assert lines[2][1:4] == ("Delivery", 1.0, 15.0)
    assert len(lines) == 3

    sent = writes(pipeline)
    puts = [w for w in sent if w["method"] == "PUT" and w["path"].endswith("/Invoices")]
    first_key = puts[0]["idempotency_key"]
    # Created once; two attempts refused by the network; the task's retry, not knowing whether the first reached
    # Xero, looked the invoice up by the number it gave it and adopted it instead of sending again.
    assert [w["idempotency_key"] == first_key for w in puts] == [True, True, True, False]
    assert [w.get("fault") for w in puts[:3]] == ["reset_after", "reset", "reset"]
    journal = pipeline.sandbox.admin.journal(tenant_id=pipeline.tenants["primary"])
    lookups = [e for e in journal if e["method"] == "GET" and e["path"].endswith("/Invoices")]
    assert len(lookups) == 1 and puts[2]["seq"] < lookups[0]["seq"] < puts[3]["seq"]
    customer_post = next(w for w in sent if w["path"].endswith("/Contacts"))
    assert customer_post["seq"] < puts[0]["seq"]
    assert pipeline.scalar("SELECT COUNT(*) FROM order_outbox WHERE state = 'pending'") == 0
    history = pipeline.rows("SELECT record_id, operation FROM sync_history WHERE record_type = 'sales_order'")
    assert sorted((h["record_id"], h["operation"]) for h in history) == [
        (first_order, "create_invoice"),
        (second_order, "create_invoice"),
    ]

    # --- the run repeated: nothing to send ------------------------------------------------------------------
    pipeline.sandbox.admin.reset_counters()
    run_dag(pipeline, "xero_order_invoices")
    assert calls(pipeline) == {}

    # --- voiding: the draft is withdrawn; the invoice the accounts team authorised is theirs -----------------
    authorised_id = orders[second_order]["xero_invoice_id"]
    xero_write(pipeline, "Invoices", {"InvoiceID": authorised_id, "Status": "AUTHORISED"})
    with engine.begin() as conn:
        void_order(conn, first_order)
        void_order(conn, second_order)
    run_dag(pipeline, "xero_order_invoices")
    assert calls(pipeline) == {"GET /Invoices/{InvoiceID}": 2, "POST /Invoices/{InvoiceID}": 1}
    assert org.invoices.get(orders[first_order]["xero_invoice_id"])["Status"] == "DELETED"
    assert org.invoices.get(authorised_id)["Status"] == "AUTHORISED"
    [error] = pipeline.rows(
        "SELECT * FROM sync_error WHERE record_type = 'sales_order' AND record_id = :id", id=second_order
    )
    number = org.invoices.get(authorised_id)["InvoiceNumber"]
    assert error["error_code"] == "invoice_not_draft" and error["status"] == "open"
    assert number in error["message"] and "AUTHORISED" in error["message"] and number in error["action"]
    outbox = pipeline.rows(
        "SELECT sales_order_id, state FROM order_outbox WHERE event = 'voided' ORDER BY id"
    )
    assert [(o["sales_order_id"], o["state"]) for o in outbox] == [
        (first_order, "done"),
        (second_order, "failed"),
    ]

    # P5: nothing of it was ever written.
    assert p5_writes(writes(pipeline)) == []
    assert os.environ["CRM_DATABASE_URL"] == pipeline.url
