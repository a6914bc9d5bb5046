"""Idempotency-Key on PUT/POST, as Xero documents it
(https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/): a repeat of the same request
gets the first answer and writes nothing; keys are per app; a key reused on a different request is a 400; keys
expire 6 minutes after their first call (on the sandbox clock) and are then processed as new."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

from .conftest import api_headers, get_token


@pytest.fixture
def env(make_sandbox):
    server = make_sandbox(tenants=2, contacts=2)
    return server, get_token(server), [t["tenantId"] for t in server.admin.tenants()]


def put(server, token, tenant, name: str, key: str | None, method: str = "PUT") -> httpx.Response:
    headers = api_headers(token, tenant, **({"Idempotency-Key": key} if key is not None else {}))
    return httpx.request(
        method,
        f"{server.url}/api.xro/2.0/Contacts",
        headers=headers,
        json={"Contacts": [{"Name": name}]},
        timeout=60,  # some calls are held by a delay fault until the test releases them
    )


def count(server, tenant) -> int:
    return len(server.state.tenants[tenant].store.contacts)


def test_repeat_returns_the_first_answer_and_writes_nothing(env):
    server, token, (tenant, _) = env
    key = str(uuid.uuid4())
    before = count(server, tenant)
    first = put(server, token, tenant, "Idem Ltd", key)
    second = put(server, token, tenant, "Idem Ltd", key)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert count(server, tenant) == before + 1
    # Per-call headers are fresh on the replay.
    assert second.headers["xero-correlation-id"] != first.headers["xero-correlation-id"]
    assert "X-MinLimit-Remaining" in second.headers


def test_a_key_reused_on_a_different_request_is_refused(env):
    server, token, (tenant, _) = env
    key = str(uuid.uuid4())
    first = put(server, token, tenant, "Original Name", key, method="POST")
    assert first.status_code == 200
    for method, name in (("POST", "Different Name"), ("PUT", "Original Name")):  # other body; other method
        refused = put(server, token, tenant, name, key, method=method)
        assert refused.status_code == 400
        assert refused.json()["Message"] == f"Idempotency Key: {key} is used with a different request."
    names = {c.get("Name") for c in server.state.tenants[tenant].store.contacts.values()}
    assert "Original Name" in names and "Different Name" not in names


def test_keys_are_per_app_across_organisations(env):
    server, token, (first, second) = env
    key = str(uuid.uuid4())
    a = put(server, token, first, "Org A Contact", key)
    assert a.json()["Contacts"][0]["Name"] == "Org A Contact"
    # The same app, the same key, another organisation: a different request.
    assert put(server, token, second, "Org A Contact", key).status_code == 400
    other_app = get_token(
        server,
        scopes=["accounting.contacts"],
        client_id=GRANULAR_CLIENT_ID,
        client_secret=GRANULAR_CLIENT_SECRET,
    )
    c = put(server, other_app, first, "Other App Contact", key)
    assert c.json()["Contacts"][0]["Name"] == "Other App Contact"


def test_a_key_expires_after_its_window_and_is_then_processed_as_new(env):
    server, token, (tenant, _) = env
    assert server.admin.idempotency()["window_seconds"] == 360  # Xero's six minutes
    key = str(uuid.uuid4())
    before = count(server, tenant)
    assert put(server, token, tenant, "Window Ltd", key).status_code == 200
    # The sandbox's clock is real time plus what the test advances: leave real time a margin (advancing 359 s of 360
    # left one second, and on a slow machine the second call came later than that, after the key had expired).
    server.admin.advance_clock(350)
    assert put(server, token, tenant, "Window Ltd", key).status_code == 200  # replayed
    assert count(server, tenant) == before + 1
    server.admin.advance_clock(11)  # 361 s and more
    late = put(server, token, tenant, "Window Ltd", key)
    # Processed again: Xero now refuses the second contact of that name, where a replay would have said 200.
    assert late.status_code == 400
    assert "already assigned" in late.text
    entries = [e for e in server.admin.journal(method="PUT") if e.get("idempotency_key") == key]
    assert [e["replayed"] for e in entries] == [False, True, False]


def test_without_a_key_every_call_writes(env):
    server, token, (tenant, _) = env
    before = count(server, tenant)
    put(server, token, tenant, "No Key 1", None)
    put(server, token, tenant, "No Key 2", None)
    assert count(server, tenant) == before + 2


def test_key_longer_than_128_characters_is_refused(env):
    server, token, (tenant, _) = env
    before = count(server, tenant)
    assert put(server, token, tenant, "Max Key", "k" * 128).status_code == 200
    response = put(server, token, tenant, "Too Long", "k" * 129)
    assert response.status_code == 400
    assert response.json()["Type"] == "ValidationException"
    assert count(server, tenant) == before + 1


def test_journal_records_the_key(env):
    server, token, (tenant, _) = env
    key = str(uuid.uuid4())
    put(server, token, tenant, "Journaled", key)
    put(server, token, tenant, "Journaled", key)
    entries = [e for e in server.admin.journal(method="PUT") if e.get("idempotency_key") == key]
    assert [e["replayed"] for e in entries] == [False, True]
    assert entries[0]["body"] == {"Contacts": [{"Name": "Journaled"}]}


def test_a_repeat_during_the_first_call_waits_for_its_answer(env):
    """A client that timed out retries while its first call is still being processed: no second write."""
    server, token, (tenant, _) = env
    key = str(uuid.uuid4())
    before = count(server, tenant)
    server.admin.add_fault("delay", count=1, hold_seconds=60, methods=["PUT"])
    answers: dict[str, httpx.Response] = {}

    def call(label: str) -> None:
        answers[label] = put(server, token, tenant, "First Call", key)  # a retry sends the same request

    def wait_in_flight(n: int) -> None:
        deadline = time.monotonic() + 30
        while server.admin.limits()["in_flight"].get(tenant) != n:
            assert time.monotonic() < deadline, f"never {n} calls in flight"
            time.sleep(0.01)

    first = threading.Thread(target=call, args=("First Call",))
    first.start()
    wait_in_flight(1)
    second = threading.Thread(target=call, args=("Retry",))
    second.start()
    wait_in_flight(2)
    server.admin.release_held()
    first.join()
    second.join()

    assert answers["First Call"].status_code == answers["Retry"].status_code == 200
    assert answers["Retry"].content == answers["First Call"].content
    assert count(server, tenant) == before + 1
