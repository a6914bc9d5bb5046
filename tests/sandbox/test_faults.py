"""Fault mode: the next N calls, or a seeded fraction of them, fail as Xero or the network to it fails."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from xero_sandbox.faults import FaultPlan, FaultRule
from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from .conftest import api_headers, get_token


@pytest.fixture
def env(make_sandbox):
    server = make_sandbox(tenants=1, contacts=3)
    token = get_token(server)
    tenant = server.admin.tenants()[0]["tenantId"]
    return server, token, tenant


def get_contacts(server, token, tenant, timeout: float = 30) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api.xro/2.0/Contacts", headers=api_headers(token, tenant), timeout=timeout
    )


def put_contact(
    server, token, tenant, name: str, key: str | None = None, timeout: float = 30
) -> httpx.Response:
    headers = api_headers(token, tenant, **({"Idempotency-Key": key} if key else {}))
    return httpx.put(
        f"{server.url}/api.xro/2.0/Contacts",
        headers=headers,
        json={"Contacts": [{"Name": name}]},
        timeout=timeout,
    )


def contact_count(server, tenant) -> int:
    return len(server.state.tenants[tenant].store.contacts)


def journal_entry(server, **filters) -> dict:
    """The latest matching journal entry (the server writes it when it has finished with the call)."""
    for _ in range(500):
        entries = server.admin.journal(**filters)
        if entries:
            return entries[-1]
        time.sleep(0.01)
    raise AssertionError(f"no journal entry for {filters}")


def test_next_n_calls_answer_500_then_normal(env):
    server, token, tenant = env
    server.admin.add_fault("500", count=2)
    statuses = [get_contacts(server, token, tenant).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert server.admin.faults() == []


def test_503_and_injected_429_carry_their_headers(env):
    server, token, tenant = env
    server.admin.add_fault("503", count=1)
    unavailable = get_contacts(server, token, tenant)
    assert unavailable.status_code == 503 and "Retry-After" in unavailable.headers
    server.admin.add_fault("429", count=1, problem="day", retry_after=42)
    limited = get_contacts(server, token, tenant)
    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit-Problem"] == "day"
    assert limited.headers["Retry-After"] == "42"
    assert "X-MinLimit-Remaining" in limited.headers


def test_faulted_writes_are_not_processed(env):
    server, token, tenant = env
    before = contact_count(server, tenant)
    server.admin.add_fault("500", count=1, methods=["PUT"])
    assert put_contact(server, token, tenant, "Never Written").status_code == 500
    assert contact_count(server, tenant) == before


def test_timeout_holds_longer_than_the_client_waits(env):
    server, token, tenant = env
    before = contact_count(server, tenant)
    server.admin.add_fault("timeout", count=1, hold_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        put_contact(server, token, tenant, "Timed Out", timeout=0.5)
    entry = journal_entry(server, method="PUT")
    assert entry["fault"] == "timeout"
    assert contact_count(server, tenant) == before


def test_reset_aborts_the_connection_before_processing(env):
    server, token, tenant = env
    before = contact_count(server, tenant)
    server.admin.add_fault("reset", count=1)
    with pytest.raises(httpx.ReadError, match="reset"):
        put_contact(server, token, tenant, "Reset")
    assert contact_count(server, tenant) == before
    assert get_contacts(server, token, tenant).status_code == 200


def test_reset_after_processing_loses_the_answer_and_a_keyed_retry_replays_it(env):
    server, token, tenant = env
    before = contact_count(server, tenant)
    key = str(uuid.uuid4())
    server.admin.add_fault("reset_after", count=1, methods=["PUT"])
    with pytest.raises(httpx.ReadError, match="reset"):
        put_contact(server, token, tenant, "Lost Answer Ltd", key=key)
    assert contact_count(server, tenant) == before + 1  # it was written

    retry = put_contact(server, token, tenant, "Lost Answer Ltd", key=key)

    assert retry.status_code == 200
    assert retry.json()["Contacts"][0]["Name"] == "Lost Answer Ltd"
    assert contact_count(server, tenant) == before + 1  # and not written twice
    entries = server.admin.journal(method="PUT")
    assert [(e.get("fault"), e["replayed"]) for e in entries[-2:]] == [("reset_after", False), (None, True)]


def test_delay_holds_then_processes(env):
    server, token, tenant = env
    server.admin.add_fault("delay", count=1, hold_seconds=0.2)
    assert get_contacts(server, token, tenant).status_code == 200
    assert journal_entry(server, method="GET", path_contains="/Contacts")["fault"] == "delay"


def test_fraction_is_reproducible_with_a_seed(env):
    server, token, tenant = env

    def campaign() -> list[int]:
        server.admin.clear_faults()
        server.admin.add_fault("503", fraction=0.5, seed=7)
        return [get_contacts(server, token, tenant).status_code for _ in range(16)]

    first, second = campaign(), campaign()
    assert first == second
    assert set(first) == {200, 503}


def test_path_and_method_filters(env):
    server, token, tenant = env
    server.admin.add_fault("500", count=1, path_pattern="/Invoices")
    assert get_contacts(server, token, tenant).status_code == 200
    assert len(server.admin.faults()) == 1


def test_lost_refresh_answer_is_survivable_within_the_grace_period(env):
    """The identity service can fault too: a refresh whose answer is lost was still performed (the token
    rotated); the client retries with the token it still has, within the 30-minute grace."""
    server, token, _ = env
    server.admin.add_fault("reset_after", count=1, target="identity", path_pattern="/connect/token")
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    with pytest.raises(httpx.ReadError, match="reset"):
        httpx.post(f"{server.url}/connect/token", data=data, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    retry = httpx.post(f"{server.url}/connect/token", data=data, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    assert retry.status_code == 200 and retry.json()["refresh_token"] != token["refresh_token"]


def test_bad_fault_definitions_are_refused(env):
    server, _, _ = env
    for options in ({"kind": "418"}, {"kind": "500", "fraction": 2}, {"kind": "429", "problem": "hour"}):
        response = httpx.post(f"{server.url}/sandbox/faults", json=options)
        assert response.status_code == 422, options


def test_fault_plan_unit_counts_and_matching():
    plan = FaultPlan()
    plan.add(FaultRule(kind="500", count=1, tenant_id="a"))
    assert plan.draw("accounting", "GET", "/api.xro/2.0/Contacts", "b") is None
    assert plan.draw("identity", "POST", "/connect/token", "a") is None
    rule = plan.draw("accounting", "GET", "/api.xro/2.0/Contacts", "a")
    assert rule is not None and rule.kind == "500"
    assert plan.draw("accounting", "GET", "/api.xro/2.0/Contacts", "a") is None


def test_released_timeout_answers_504_at_once(env):
    server, token, tenant = env
    server.admin.add_fault("timeout", count=1, hold_seconds=60)
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(get_contacts(server, token, tenant, timeout=60)))
    thread.start()
    for _ in range(500):
        if server.admin.limits()["in_flight"].get(tenant) == 1:
            break
        time.sleep(0.01)
    server.admin.release_held()
    thread.join()
    assert answers[0].status_code == 504
    assert journal_entry(server, method="GET", path_contains="/Contacts")["fault"] == "timeout"
