"""The sandbox sends webhooks as Xero does: intent to receive, signed batched events, retries, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.webhooks.recorder import Recorder
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import DEMO_CLIENT_ID, SandboxState, build_state
from xero_sandbox.webhooks import WebhookConfig, WebhookFaults

KEY = "test-webhook-key"
FAST = WebhookConfig(batch_seconds=0.1, retry_base_seconds=0.05, retry_max_seconds=0.2, timeout_seconds=1.0)


def _state(*, connect: bool = True) -> SandboxState:
    state = build_state(contacts=5, invoices=3)
    state.webhooks.config = FAST
    if connect:
        tenant_id = next(iter(state.tenants))
        state.identity._connect(
            DEMO_CLIENT_ID, state.demo_user().user_id, tenant_id, "evt", state.clock.now()
        )
    return state


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder(key=KEY).start()
    yield rec
    rec.stop()


def _subscribed(state: SandboxState, recorder: Recorder, **faults: Any) -> Any:
    sub = state.webhooks.subscribe(DEMO_CLIENT_ID, recorder.url, key=KEY)
    assert state.webhooks.validate(sub.id).status == "OK", sub.status_detail
    if faults:
        state.webhooks.set_faults(sub.id, WebhookFaults(**faults))
    recorder.received.clear()
    return sub


def _org(state: SandboxState) -> Any:
    return next(iter(state.tenants.values())).store


def test_intent_to_receive_activates_only_a_receiver_that_checks_signatures(recorder: Recorder) -> None:
    state = _state()
    sub = state.webhooks.subscribe(DEMO_CLIENT_ID, recorder.url, key=KEY)
    assert state.webhooks.validate(sub.id).status == "OK"
    first, second = recorder.received
    assert first.signed_ok and not second.signed_ok  # one correctly signed, one not
    assert first.payload == {**first.payload, "events": [], "firstEventSequence": 0, "lastEventSequence": 0}

    recorder.answer = lambda n, signed_ok: 200  # accepts anything: not a verifying receiver
    assert state.webhooks.validate(sub.id).status == "FAILED"
    assert "expected 401" in sub.status_detail
    # A FAILED subscription delivers nothing.
    recorder.received.clear()
    _org(state).create_contacts([{"Name": "Nobody Hears"}])
    assert state.webhooks.flush(2) and recorder.received == []


def test_intent_to_receive_fails_a_receiver_slower_than_the_time_limit(recorder: Recorder) -> None:
    state = _state()
    state.webhooks.config = WebhookConfig(timeout_seconds=0.3)
    recorder.delay = 0.6
    sub = state.webhooks.subscribe(DEMO_CLIENT_ID, recorder.url, key=KEY)
    assert state.webhooks.validate(sub.id).status == "FAILED"
    assert "ReadTimeout" in sub.status_detail


def test_events_are_signed_batched_and_shaped_as_the_spec(recorder: Recorder) -> None:
    state = _state()
    _subscribed(state, recorder)
    org = _org(state)
    created = org.create_contacts([{"Name": "Webhook Alpha"}])[0].record
    org.upsert_contacts([{"ContactID": created["ContactID"], "EmailAddress": "alpha@example.com"}])
    invoice = next(i for i in org.invoices.values() if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED")
    account = next(a for a in org.accounts.values() if a.get("EnablePaymentsToAccount"))
    org.create_payments(
        [{"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"AccountID": account["AccountID"]},
          "Amount": 1, "Date": "2026-01-05"}]
    )  # fmt: skip
    assert state.webhooks.flush(10)
    for request in recorder.received:
        expected = base64.b64encode(hmac.new(KEY.encode(), request.body, hashlib.sha256).digest()).decode()
        assert request.signature == expected
        payload = request.payload
        assert set(payload) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
        assert payload["lastEventSequence"] - payload["firstEventSequence"] + 1 == len(payload["events"])
    events = recorder.events()
    mine = [e for e in events if e["resourceId"] == created["ContactID"]]
    assert [e["eventType"] for e in mine][:1] == ["CREATE"] and mine[-1]["eventType"] == "UPDATE"
    assert all(e["eventCategory"] == "CONTACT" and e["tenantType"] == "ORGANISATION" for e in mine)
    assert mine[0]["resourceUrl"].endswith(f"/api.xro/2.0/Contacts/{created['ContactID']}")
    paid = [e for e in events if e["resourceId"] == invoice["InvoiceID"]]
    assert paid and paid[0]["eventCategory"] == "INVOICE" and paid[0]["eventType"] == "UPDATE"
    required = {
        "resourceUrl",
        "resourceId",
        "eventDateUtc",
        "eventType",
        "eventCategory",
        "tenantId",
        "tenantType",
    }
    assert all(required <= set(e) for e in events)
    # A burst is batched: 250 writes arrive in a few payloads of at most 100 events, sequences contiguous.
    recorder.received.clear()
    org.create_contacts([{"Name": f"Burst {n}"} for n in range(250)])
    assert state.webhooks.flush(10)
    payloads = [r.payload for r in recorder.received]
    assert 3 <= len(payloads) <= 6 and all(len(p["events"]) <= 100 for p in payloads)
    sequences = sorted(
        s for p in payloads for s in range(p["firstEventSequence"], p["lastEventSequence"] + 1)
    )
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))


def test_credit_note_events_carry_type_and_status(recorder: Recorder) -> None:
    state = _state()
    _subscribed(state, recorder)
    org = _org(state)
    contact = next(iter(org.contacts.values()))
    org.create_credit_notes(
        [{"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact["ContactID"]}, "Status": "DRAFT",
          "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}]}]
    )  # fmt: skip
    assert state.webhooks.flush(10)
    notes = [e for e in recorder.events() if e["eventCategory"] == "CREDITNOTE"]
    assert notes and notes[0]["data"] == {"Type": "ACCRECCREDIT", "Status": "DRAFT"}


def test_only_apps_connected_to_the_organisation_hear_of_it(recorder: Recorder) -> None:
    state = _state(connect=False)
    _subscribed(state, recorder)
    _org(state).create_contacts([{"Name": "Private Change"}])
    assert state.webhooks.flush(2) and recorder.received == []


def test_a_failed_delivery_is_retried_until_accepted(recorder: Recorder) -> None:
    state = _state()
    sub = _subscribed(state, recorder)
    recorder.answer = lambda n, signed_ok: 503 if n < 2 else 200
    _org(state).create_contacts([{"Name": "Retried Contact"}])
    assert state.webhooks.flush(10)
    assert [r.status for r in recorder.received] == [503, 503, 200]
    assert len({r.body for r in recorder.received}) == 1  # the same payload each time
    assert sub.stats["failed_attempts"] == 2 and sub.stats["delivered"] == 1


def test_a_subscription_failing_past_the_retry_period_is_disabled(recorder: Recorder) -> None:
    state = _state()
    sub = _subscribed(state, recorder)
    state.webhooks.config = WebhookConfig(
        batch_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.05, give_up_seconds=0.3
    )
    recorder.answer = lambda n, signed_ok: 500
    _org(state).create_contacts([{"Name": "Never Accepted"}])
    state.webhooks.flush(5)
    assert sub.status == "DISABLED"


@pytest.mark.parametrize(
    ("faults", "check"),
    [
        ({"wrong_signature": 1}, lambda rec: [r.signed_ok for r in rec.received] == [False, True]),
        (
            {"duplicate": 1.0},
            lambda rec: len(rec.received) == 2 and rec.received[0].body == rec.received[1].body,
        ),
        ({"drop": 1.0}, lambda rec: rec.received == []),
    ],
    ids=["wrong-signature", "duplicate", "drop"],
)
def test_delivery_faults(recorder: Recorder, faults: dict[str, Any], check: Any) -> None:
    state = _state()
    _subscribed(state, recorder, **faults)
    _org(state).create_contacts([{"Name": "Faulted Contact"}])
    assert state.webhooks.flush(10)
    assert check(recorder), [(r.status, r.signed_ok) for r in recorder.received]


def test_reorder_and_delay_deliver_batches_out_of_order(recorder: Recorder) -> None:
    state = _state()
    sub = _subscribed(state, recorder)
    org = _org(state)
    state.webhooks.set_faults(sub.id, WebhookFaults(reorder=1.0))
    org.create_contacts([{"Name": "First Batch"}])
    time.sleep(FAST.batch_seconds * 2)  # batched, and held back
    state.webhooks.set_faults(sub.id, WebhookFaults())
    org.create_contacts([{"Name": "Second Batch"}])
    assert state.webhooks.flush(10)
    firsts = [r.payload["firstEventSequence"] for r in recorder.received]
    assert firsts != sorted(firsts), firsts


def test_admin_paths_subscribe_validate_and_inject_faults(recorder: Recorder) -> None:
    with SandboxServer(contacts=5) as sandbox:
        admin = sandbox.admin
        sub = admin.subscribe_webhook(recorder.url, key=KEY)
        assert sub["status"] == "OK" and sub["key"] == KEY
        assert "key" not in admin.webhooks()[0]
        assert admin.webhook_faults(sub["id"], duplicate=1.0)["faults"]["duplicate"] == 1.0
        recorder.answer = lambda n, signed_ok: 200
        assert admin.validate_webhook(sub["id"])["status"] == "FAILED"
        assert admin.flush_webhooks(1)
