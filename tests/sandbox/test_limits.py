"""Xero's rate limits: per organisation a minute, a day and in-flight calls; per app a minute; 429s with
X-Rate-Limit-Problem and Retry-After; X-*-Remaining headers on every Accounting API answer."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from xero_sandbox.clock import Clock
from xero_sandbox.limits import LimitConfig, RateLimiter
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

from .conftest import api_headers, get_token


def contacts(server, token, tenant_id) -> httpx.Response:
    return httpx.get(f"{server.url}/api.xro/2.0/Contacts", headers=api_headers(token, tenant_id), timeout=30)


@pytest.fixture
def limited(make_sandbox):
    def make(**limits):
        server = make_sandbox(tenants=2, contacts=2, limits=LimitConfig(**limits))
        token = get_token(server)
        return server, token, [t["tenantId"] for t in server.admin.tenants()]

    return make


def test_minute_limit_refuses_with_xero_headers_and_refusals_do_not_count(limited):
    server, token, (tenant, _) = limited(minute=3, window_seconds=60)
    remaining = [contacts(server, token, tenant).headers["X-MinLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]

    refused = contacts(server, token, tenant)

    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    assert refused.headers["X-DayLimit-Remaining"] == "4997"
    server.admin.advance_clock(60)
    # The refused call did not use a slot: a full minute's worth is available again.
    assert [contacts(server, token, tenant).status_code for _ in range(3)] == [200, 200, 200]
    counters = server.admin.counters(tenant)[tenant]["endpoints"]["GET /Contacts"]
    assert counters["rate_limited"] == 1 and counters["calls"] == 7


def test_one_second_window_frees_after_retry_after(limited):
    server, token, (tenant, _) = limited(minute=3, window_seconds=1)
    for _ in range(50):
        response = contacts(server, token, tenant)
        if response.status_code == 429:
            break
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    time.sleep(int(response.headers["Retry-After"]))
    assert contacts(server, token, tenant).status_code == 200


def test_limits_are_per_organisation(limited):
    server, token, (first, second) = limited(minute=2, window_seconds=60)
    assert [contacts(server, token, first).status_code for _ in range(3)] == [200, 200, 429]
    assert contacts(server, token, second).status_code == 200


def test_day_limit(limited):
    server, token, (tenant, _) = limited(minute=100, day=4, day_seconds=1000)
    assert [contacts(server, token, tenant).headers["X-DayLimit-Remaining"] for _ in range(4)] == [
        "3",
        "2",
        "1",
        "0",
    ]
    refused = contacts(server, token, tenant)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
    assert 60 < int(refused.headers["Retry-After"]) <= 1000
    server.admin.advance_clock(1000)  # less than the token lifetime
    assert contacts(server, token, tenant).status_code == 200


def test_app_minute_limit_spans_organisations_but_not_apps(limited):
    server, token, (first, second) = limited(minute=100, app_minute=3, window_seconds=60)
    assert [contacts(server, token, t).status_code for t in (first, first, second)] == [200, 200, 200]
    refused = contacts(server, token, second)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "appminute"
    assert refused.headers["X-AppMinLimit-Remaining"] == "0"
    other_app = get_token(
        server,
        scopes=["accounting.contacts"],
        client_id=GRANULAR_CLIENT_ID,
        client_secret=GRANULAR_CLIENT_SECRET,
    )
    assert contacts(server, other_app, second).status_code == 200


def test_concurrent_limit(limited):
    server, token, (tenant, _) = limited(concurrent=2, minute=100)
    # Two calls held in flight by a latency fault (until released); a third one meanwhile is refused.
    server.admin.add_fault("delay", count=2, hold_seconds=60)
    held: list[int] = []
    threads = [
        threading.Thread(target=lambda: held.append(contacts(server, token, tenant).status_code))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for _ in range(500):
        if server.admin.limits()["in_flight"].get(tenant) == 2:
            break
        time.sleep(0.01)
    refused = contacts(server, token, tenant)
    server.admin.release_held()
    for thread in threads:
        thread.join()
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert held == [200, 200]
    assert server.admin.limits()["in_flight"].get(tenant, 0) == 0


def test_limits_switched_off(limited):
    server, token, (tenant, _) = limited(enabled=False, minute=1, day=1)
    assert {contacts(server, token, tenant).status_code for _ in range(4)} == {200}


def test_limits_can_be_changed_by_admin(limited):
    server, token, (tenant, _) = limited(minute=100)
    server.admin.set_limits(minute=1, window_seconds=60)
    assert [contacts(server, token, tenant).status_code for _ in range(2)] == [200, 429]
    server.admin.set_limits(enabled=False)
    assert contacts(server, token, tenant).status_code == 200


def test_changing_limits_by_admin_leaves_the_callers_config_alone(make_sandbox):
    # One config shared by many in-process sandboxes (as the tests' NO_LIMITS is) must not be changed through one
    # of them: a later sandbox started with it would refuse calls nobody asked it to refuse.
    shared = LimitConfig(minute=100)
    server = make_sandbox(contacts=2, limits=shared)
    server.admin.set_limits(minute=1)
    assert shared.minute == 100
    assert server.admin.limits()["minute"] == 1


def test_rate_limiter_rolling_window_unit():
    clock = Clock()
    limiter = RateLimiter(clock, LimitConfig(minute=2, window_seconds=10))
    for _ in range(2):
        assert limiter.acquire("app", "t").problem is None
        limiter.release("app", "t")
    clock.advance(5)
    assert limiter.acquire("app", "t").problem == "minute"  # both calls are still inside the window
    clock.advance(5)
    assert limiter.acquire("app", "t").problem is None  # ... and now they have left it


def test_rate_limiter_retry_after_counts_to_the_oldest_call_leaving():
    clock = Clock()
    limiter = RateLimiter(clock, LimitConfig(minute=1, window_seconds=10))
    limiter.acquire("app", "t")
    limiter.release("app", "t")
    clock.advance(4)
    decision = limiter.acquire("app", "t")
    assert decision.problem == "minute" and decision.retry_after == 6
