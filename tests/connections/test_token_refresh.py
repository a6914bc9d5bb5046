"""Tokens (C3): one refresh in flight per connection, the new refresh token committed before use, a lost refresh
response recovered within Xero's 30-minute grace period, and invalid_grant turning into "needs reconnect"."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading

import pytest
import requests

from tests.connections.conftest import Connected
from tests.connections.workers import call_connections
from xero_crm_sync import health
from xero_crm_sync.import_run import connections_to_run
from xero_crm_sync.oauth import ReconnectRequired, XeroSession, allow_loopback_http

WORKERS = 6


def _sessions(env: Connected, n: int) -> list[XeroSession]:
    allow_loopback_http(env.sandbox.url)
    return [env.store.session(env.ids["primary"], env.settings) for _ in range(n)]


def _assert_one_refresh_and_newest_token_kept(env: Connected) -> None:
    refreshes = env.refresh_calls()
    assert len(refreshes) == 1, refreshes
    assert all(e["status"] == 200 for e in env.sandbox.admin.journal(path_contains="/connect/token"))
    # The token we keep is the newest: Xero has never seen it used.
    stored = env.stored_token(env.ids["primary"])
    assert env.sandbox.state.identity.refresh_tokens[stored["refresh_token"]].used_at is None


@pytest.mark.parametrize("why", ["expired by our clock", "refused by Xero"])
def test_threads_asking_at_once_refresh_once(one_org: Connected, why: str):
    """Many tasks in one process find the token stale at the same moment: one refresh reaches Xero, the others
    wait for the lock and use the token it stored; nobody spends a refresh token twice."""
    if why == "expired by our clock":
        one_org.expire_locally(one_org.ids["primary"])
    else:
        one_org.sandbox.admin.advance_clock(31 * 60)  # Xero says 401 TokenExpired; our clock disagrees
    sessions = _sessions(one_org, WORKERS)
    one_org.sandbox.admin.clear_journal()
    barrier = threading.Barrier(WORKERS)
    statuses: list[int] = []

    def ask(session: XeroSession) -> None:
        barrier.wait(timeout=30)
        statuses.append(session.get(one_org.settings.connections_url, timeout=30).status_code)

    threads = [threading.Thread(target=ask, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * WORKERS
    assert sum(s.refreshes for s in sessions) == 1
    _assert_one_refresh_and_newest_token_kept(one_org)


def test_processes_asking_at_once_refresh_once(one_org: Connected):
    """The same across processes (task processes on one worker, or on several): the row lock on PostgreSQL and
    the write lock on SQLite let exactly one refresh through."""
    one_org.expire_locally(one_org.ids["primary"])
    one_org.sandbox.admin.clear_journal()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(
            target=call_connections,
            args=(one_org.url, one_org.ids["primary"], one_org.sandbox.url, barrier, results, 2),
        )
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    answers = []
    for _ in procs:
        try:
            answers.append(results.get(timeout=120))
        except queue.Empty:
            break
    for p in procs:
        p.join(30)
    assert [a.get("error") for a in answers] == [None] * 3, answers
    assert all(a["statuses"] == [200, 200] for a in answers)
    assert sum(a["refreshes"] for a in answers) == 1
    _assert_one_refresh_and_newest_token_kept(one_org)


def test_a_lost_refresh_response_is_retried_with_the_same_token(one_org: Connected):
    """Xero rotates the token but the answer never arrives (connection reset after processing): the retry with
    the same refresh token succeeds inside the grace period, and the token stored is the retry's."""
    one_org.expire_locally(one_org.ids["primary"])
    one_org.sandbox.admin.add_fault("reset_after", target="identity", path_pattern="connect/token", count=1)
    one_org.sandbox.admin.clear_journal()
    (session,) = _sessions(one_org, 1)
    assert session.get(one_org.settings.connections_url, timeout=30).status_code == 200
    calls = one_org.refresh_calls()
    assert [c.get("fault") for c in calls] == ["reset_after", None]
    assert [c["status"] for c in calls] == [200, 200]  # both processed by Xero: the first answer was lost
    stored = one_org.stored_token(one_org.ids["primary"])
    assert one_org.sandbox.state.identity.refresh_tokens[stored["refresh_token"]].used_at is None
    assert one_org.row(one_org.ids["primary"])["status"] == "active"


@pytest.mark.parametrize(("minutes_later", "outcome"), [(29, "ok"), (31, "reconnect_required")])
def test_a_worker_that_died_mid_refresh_is_recovered_within_the_grace_period(
    one_org: Connected, minutes_later: int, outcome: str
):
    """A worker sent the refresh and died before storing the answer: the stored refresh token was spent at Xero.
    The next check within 30 minutes still refreshes with it; after 30 minutes Xero refuses it, and the
    connection asks for a reconnect instead of failing silently."""
    connection_id = one_org.ids["primary"]
    spent = one_org.stored_token(connection_id)["refresh_token"]
    credentials = one_org.store.credentials(connection_id)
    lost = requests.post(
        one_org.settings.token_url,
        data={"grant_type": "refresh_token", "refresh_token": spent},
        auth=(credentials.client_id, credentials.client_secret),
        timeout=30,
    )
    assert lost.status_code == 200  # Xero rotated; the answer went nowhere
    one_org.sandbox.admin.advance_clock(minutes_later * 60)
    result = health.check_connection(
        one_org.store, one_org.store.get(connection_id), one_org.settings, refresh_ahead=3600
    )
    assert result.outcome == outcome
    row = one_org.row(connection_id)
    if outcome == "ok":
        assert result.refreshed and row["status"] == "active"
        assert one_org.stored_token(connection_id)["refresh_token"] != spent
    else:
        assert row["status"] == "needs_reconnect"
        assert "invalid_grant" in row["last_error"] and "connect" in row["last_error"]


def test_the_new_refresh_token_is_committed_before_the_access_token_is_used(one_org: Connected):
    """The first call with the new access token dies (connection reset): the new refresh token is stored already,
    so nothing is lost even if the process dies right there."""
    one_org.expire_locally(one_org.ids["primary"])
    one_org.sandbox.admin.add_fault("reset", target="connections", methods=["GET"], count=1)
    (session,) = _sessions(one_org, 1)
    with pytest.raises(requests.ConnectionError):
        session.get(one_org.settings.connections_url, timeout=30)
    stored = one_org.stored_token(one_org.ids["primary"])
    assert stored["refresh_token"] == session.token["refresh_token"]
    assert one_org.sandbox.state.identity.refresh_tokens[stored["refresh_token"]].used_at is None


def test_invalid_grant_marks_needs_reconnect_and_dags_skip_it(one_org: Connected, caplog):
    connection_id = one_org.ids["primary"]
    user = one_org.sandbox.state.demo_user()
    one_org.sandbox.admin.remove_user(user.user_id)  # the authorising user leaves the organisation
    one_org.expire_locally(connection_id)
    (session,) = _sessions(one_org, 1)
    with pytest.raises(ReconnectRequired, match="invalid_grant"):
        session.get(one_org.settings.connections_url, timeout=30)
    row = one_org.row(connection_id)
    assert row["status"] == "needs_reconnect" and row["health"] == "reconnect_required"
    with caplog.at_level(logging.WARNING):
        assert connections_to_run(one_org.store) == []
        assert one_org.store.runnable() == []
    assert "needs a reconnect" in caplog.text or "needs_reconnect" in caplog.text
    assert "python -m xero_crm_sync connect" in caplog.text
