"""The receiver: signature first (constant time, raw body), every event stored before the 200, 401 stores nothing."""

from __future__ import annotations

import json
import logging
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.webhooks.conftest import KEY, Served, event_rows
from xero_crm_sync.webhooks import keys
from xero_crm_sync.webhooks.receiver import create_app
from xero_sandbox.state import DEMO_CLIENT_ID, build_state
from xero_sandbox.webhooks import WebhookConfig

TENANT = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"


def _body(*resource_ids: str, when: str = "2026-01-02T03:04:05.678") -> bytes:
    events = [
        {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{rid}",
            "resourceId": rid,
            "eventDateUtc": when,
            "eventType": "UPDATE",
            "eventCategory": "CONTACT",
            "tenantId": TENANT,
            "tenantType": "ORGANISATION",
        }
        for rid in resource_ids
    ]
    payload = {"events": events, "firstEventSequence": 1, "lastEventSequence": len(events), "entropy": "ABC"}
    return json.dumps(payload).encode()


def _post(client: TestClient, body: bytes, signature: str | None) -> object:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-xero-signature"] = signature
    return client.post("/", content=body, headers=headers)


def test_signed_events_are_stored_once_and_answered_with_an_empty_200(
    crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = TestClient(create_app(lambda: crm))
    body = _body("717f2bfc-c6d4-41fd-b238-3f2f0c0cf777", "0f4c2c5a-1d1e-4f64-9b3c-2f7d0c1a2b3c")
    response = _post(client, body, keys.signature(KEY, body))
    assert response.status_code == 200 and response.content == b"" and "set-cookie" not in response.headers
    assert [r[:3] for r in event_rows(crm)] == [
        ("CONTACT", "UPDATE", "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777"),
        ("CONTACT", "UPDATE", "0f4c2c5a-1d1e-4f64-9b3c-2f7d0c1a2b3c"),
    ]
    # A duplicate delivery (Xero retries, at least once) is accepted and stores nothing new.
    assert _post(client, body, keys.signature(KEY, body)).status_code == 200
    assert len(event_rows(crm)) == 2
    with crm.connect() as conn:
        deliveries, blob = conn.execute(text("SELECT deliveries, key_blob FROM webhook_key")).one()
    assert deliveries == 2
    assert KEY not in blob  # encrypted at rest
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "signature",
    [None, "", keys.signature("another-key", _body("717f2bfc-c6d4-41fd-b238-3f2f0c0cf777")), "bm90LWEtc2ln"],
    ids=["unsigned", "empty", "other-key", "garbage"],
)
def test_unsigned_or_badly_signed_gets_401_and_stores_nothing(crm: Engine, signature: str | None) -> None:
    client = TestClient(create_app(lambda: crm))
    body = _body("717f2bfc-c6d4-41fd-b238-3f2f0c0cf777")
    response = _post(client, body, signature)
    assert response.status_code == 401
    assert event_rows(crm) == []
    with crm.connect() as conn:
        assert conn.execute(text("SELECT deliveries, last_delivery_at FROM webhook_key")).one() == (0, None)


def test_a_body_changed_after_signing_is_refused(crm: Engine) -> None:
    client = TestClient(create_app(lambda: crm))
    body = _body("717f2bfc-c6d4-41fd-b238-3f2f0c0cf777")
    tampered = body.replace(b"UPDATE", b"CREATE")
    assert _post(client, tampered, keys.signature(KEY, body)).status_code == 401
    # Re-serialising the JSON (spaces, key order) is a different body: signatures are over the raw bytes.
    reformatted = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert _post(client, reformatted, keys.signature(KEY, body)).status_code == 401
    assert event_rows(crm) == []


def test_a_signed_body_that_is_not_xeros_shape_is_refused_without_storing(crm: Engine) -> None:
    client = TestClient(create_app(lambda: crm))
    for body in (b"not json", b'{"events": [{"resourceId": "x"}]}', b'{"entropy": "x"}'):
        assert _post(client, body, keys.signature(KEY, body)).status_code == 400
    assert event_rows(crm) == []


def test_sandbox_intent_to_receive_and_delivery_over_http(crm: Engine, receiver: Served) -> None:
    state = build_state(contacts=3)
    state.webhooks.config = WebhookConfig(batch_seconds=0.05)
    tenant_id = next(iter(state.tenants))
    state.identity._connect(DEMO_CLIENT_ID, state.demo_user().user_id, tenant_id, "evt", state.clock.now())
    wrong = state.webhooks.subscribe(DEMO_CLIENT_ID, receiver.url, key="not-the-stored-key")
    assert state.webhooks.validate(wrong.id).status == "FAILED"
    sub = state.webhooks.subscribe(DEMO_CLIENT_ID, receiver.url, key=KEY)
    started = time.monotonic()
    assert state.webhooks.validate(sub.id).status == "OK", sub.status_detail
    assert time.monotonic() - started < 5  # both answers well within Xero's 5 seconds
    contact = state.tenants[tenant_id].store.create_contacts([{"Name": "Over The Wire"}])[0].record
    assert state.webhooks.flush(10)
    assert ("CONTACT", "CREATE", contact["ContactID"], "pending") in event_rows(crm)
    assert sub.stats["failed_attempts"] == 0
