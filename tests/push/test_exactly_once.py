"""Exactly once without trusting an Idempotency-Key forever (Xero keeps one 6 minutes:
https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/).

An order's customer, product and invoice are each created in Xero but each answer is lost; the retry comes after
the sandbox's clock moved past the key window, so a resend with the same key would be a new write. The pipeline
looks each one up by the natural key it controls (ContactNumber, item Code, InvoiceNumber) and adopts it: one
contact, one item, one invoice, and the same CRM state as a run without faults. Real client, real sandbox, real
CRM database (SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.push.conftest import add_customer, add_order, add_product
from xero_crm_sync.push import orders
from xero_crm_sync.push.orders import confirm_order, process_outbox, void_order
from xero_crm_sync.settings import get_settings
from xero_crm_sync.xero_client import RetryPolicy, XeroUnavailable

PAST_THE_KEY_WINDOW = 361  # seconds: Xero's 6 minutes and one


def _order(pipeline: Any) -> int:
    engine = pipeline.engine
    customer = add_customer(engine, "Once Ltd", email="accounts@once.co.nz", currency_code="NZD")
    widget = add_product(engine, "ONCE-1", name="Once widget", sell_price=12.5, sales_account_code="200")
    order = add_order(
        engine, customer, [dict(product_id=widget, quantity=3, unit_price=12.5)], order_number="SO-ONCE-1"
    )
    with engine.begin() as conn:
        confirm_order(conn, order)
    return order


def _state(pipeline: Any, order: int) -> dict[str, Any]:
    org = pipeline.org()
    contacts = [c for c in org.contacts.values() if c["Name"] == "Once Ltd"]
    items = [i for i in org.items.values() if i["Code"] == "ONCE-1"]
    invoices = [i for i in org.invoices.values() if i.get("InvoiceNumber") == "SO-ONCE-1"]
    return {
        "xero": (len(contacts), len(items), len(invoices), [i["Status"] for i in invoices]),
        "linked": pipeline.scalar("SELECT xero_invoice_id FROM sales_order WHERE id = :id", id=order)
        == (invoices[0]["InvoiceID"] if invoices else None),
        "outbox": [
            r["result"].split(" ")[:4] for r in pipeline.rows("SELECT result FROM order_outbox ORDER BY id")
        ],
        "errors": pipeline.scalar("SELECT COUNT(*) FROM sync_error WHERE resolved_at IS NULL"),
    }


def _run_until_done(pipeline: Any, faults: bool) -> int:
    """Process the outbox as the DAG's retries would, moving the sandbox's clock past the key window between
    attempts; returns how many attempts failed."""
    failed = 0
    for _ in range(6):
        try:
            process_outbox(
                pipeline.engine,
                pipeline.store,
                get_settings(),
                f"run-{failed}",
                retry=RetryPolicy(max_attempts=1),
            )
            return failed
        except XeroUnavailable:
            assert faults, "a fault-free run failed"
            failed += 1
            pipeline.sandbox.admin.advance_clock(PAST_THE_KEY_WINDOW)
    pytest.fail("the outbox never finished")


@pytest.mark.parametrize("faults", [False, True], ids=["fault-free", "lost-answers-past-the-key-window"])
def test_lost_answers_retried_after_the_key_window_create_once(
    direct_pipeline: Any, faults: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = direct_pipeline
    # A failed attempt leaves its batch persisted and unsent; to the retry it looks like another push's batch in
    # flight, which an order waits for (bounded; the last test here proves the wait). Not the subject here.
    monkeypatch.setattr(orders, "IN_FLIGHT_WAIT_SECONDS", 0.5)
    order = _order(pipeline)
    if faults:
        # Xero writes each one, then the connection drops before its answer reaches us.
        for method, pattern in (("POST", "Contacts$"), ("POST", "Items$"), ("PUT", "Invoices$")):
            pipeline.sandbox.admin.add_fault("reset_after", count=1, methods=[method], path_pattern=pattern)
    failed = _run_until_done(pipeline, faults)
    assert failed == (3 if faults else 0)
    assert _state(pipeline, order) == {
        "xero": (1, 1, 1, ["DRAFT"]),
        "linked": True,
        "outbox": [["created", "Draft", "invoice", "SO-ONCE-1"]],
        "errors": 0,
    }

    # Voiding: the delete's answer is lost too; the retry records what an uninterrupted run records.
    with pipeline.engine.begin() as conn:
        void_order(conn, order)
    if faults:
        pipeline.sandbox.admin.add_fault("reset_after", count=1, methods=["POST"], path_pattern="Invoices/")
    _run_until_done(pipeline, faults)
    state = _state(pipeline, order)
    assert state["xero"] == (1, 1, 1, ["DELETED"])
    assert state["outbox"][-1] == ["deleted", "Draft", "invoice", "SO-ONCE-1"]
    assert state["errors"] == 0


def test_an_order_whose_customer_another_push_is_sending_waits_for_it_instead_of_failing(
    direct_pipeline: Any,
) -> None:
    """xero_push is sending the order's new customer (its batch saved, its answer not in yet) when the order outbox
    runs. That customer is left out of the outbox's own push (the batch owns it), so the outbox waits for the batch
    to land, then invoices the order with the contact it created: one contact, one invoice, no error to dismiss."""
    import threading

    from xero_crm_sync import crashpoints, xero_access
    from xero_crm_sync.push.run import push_customers

    pipeline = direct_pipeline
    order = _order(pipeline)
    info = pipeline.store.get(pipeline.connections["primary"])
    saved, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_the_push(point: str) -> None:
        if point == "push.batch_saved" and threading.current_thread().name == "xero_push":
            saved.set()
            release.wait(30)

    def the_push_beside() -> None:
        client = xero_access.make_client(pipeline.store, info, get_settings())
        outcome["push"] = push_customers(pipeline.engine, client, info, "push-beside").created

    def the_outbox() -> None:
        outcome["outbox"] = process_outbox(pipeline.engine, pipeline.store, get_settings(), "outbox-beside")

    with crashpoints.observe(hold_the_push):
        push = threading.Thread(target=the_push_beside, name="xero_push")
        push.start()
        assert saved.wait(30)  # the customer is in the push's batch, not yet sent
        outbox = threading.Thread(target=the_outbox, name="xero_order_invoices")
        outbox.start()
        outbox.join(0.8)
        assert outbox.is_alive()  # waiting for the push's answer
        release.set()
        push.join(30)
        outbox.join(60)
    state = _state(pipeline, order)
    assert outcome["push"] == 1 and outcome["outbox"].invoices_created == 1
    assert state["xero"] == (1, 1, 1, ["DRAFT"]) and state["linked"]
    assert (
        pipeline.scalar(
            "SELECT COUNT(*) FROM sync_error WHERE resolved_at IS NULL AND record_type = 'sales_order'"
        )
        == 0
    )
