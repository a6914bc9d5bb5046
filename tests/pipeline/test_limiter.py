"""The shared limiter (`xero_crm_sync.limiter`): Xero's per-organisation limits kept across processes.

Several real processes hammer one organisation through the limiter in the CRM database (SQLite and PostgreSQL);
each records when its calls held a slot. Nothing may exceed the window or the concurrency limit, a killed
process's slot frees itself, and a spent day stops at once instead of waiting.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from xero_crm_sync import db, migrate
from xero_crm_sync import limiter as limiter_module
from xero_crm_sync.limiter import DayBudgetSpent, Limits, limiter_for, limits_from_env

WINDOW = 1.0
LIMITS = Limits(calls_per_minute=8, concurrent=2, window_seconds=WINDOW, calls_per_day=1000)


def _hammer(url: str, calls: int, out: mp.Queue) -> None:
    # A forked child builds its own engines: pooled connections are never shared across processes.
    limiter_module._sidecar_engine.cache_clear()
    limiter_module._pg_engine.cache_clear()
    db._engine_for.cache_clear()
    limiter = limiter_for(db.get_engine(url), LIMITS)
    spans = []
    for _ in range(calls):
        with limiter.call("org-1", "app-1"):
            start = time.time()
            time.sleep(0.01)  # the call in flight
            spans.append((start, time.time()))
    out.put(spans)


def _max_in_any_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    level = best = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


def test_limits_hold_across_processes(crm_url: str) -> None:
    migrate.migrate(crm_url)
    ctx = mp.get_context("fork")  # spawn would re-import the package: seconds per process
    out: mp.Queue = ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(crm_url, 8, out)) for _ in range(3)]
    for w in workers:
        w.start()
    spans = [span for _ in workers for span in out.get(timeout=60)]
    for w in workers:
        w.join(timeout=30)
    assert len(spans) == 24
    # 24 calls at 8 a window: they cannot all fit in less than two full windows.
    assert max(e for _, e in spans) - min(s for s, _ in spans) >= 2 * WINDOW
    assert _max_in_any_window([s for s, _ in spans], WINDOW) <= LIMITS.calls_per_minute
    assert _max_overlap(spans) <= LIMITS.concurrent


def test_a_killed_callers_slot_frees_itself(crm_url: str) -> None:
    migrate.migrate(crm_url)
    limits = Limits(calls_per_minute=100, concurrent=1, window_seconds=WINDOW, lease_seconds=0.5)
    limiter = limiter_for(db.get_engine(crm_url), limits)
    held = limiter.call("org-1", "app-1")
    held.__enter__()  # never left: the process died mid-call
    started = time.monotonic()
    with limiter.call("org-1", "app-1"):
        waited = time.monotonic() - started
    assert 0.4 <= waited < 5


def test_a_spent_day_stops_at_once(crm_url: str) -> None:
    migrate.migrate(crm_url)
    limiter = limiter_for(db.get_engine(crm_url), Limits(calls_per_day=3, day_seconds=3600))
    for _ in range(3):
        with limiter.call("org-1", "app-1"):
            pass
    started = time.monotonic()
    with pytest.raises(DayBudgetSpent) as spent, limiter.call("org-1", "app-1"):
        pass
    assert time.monotonic() - started < 1
    assert 3500 < spent.value.retry_after <= 3600
    with limiter.call("org-2", "app-1"):  # another organisation has its own day
        pass


def test_the_app_limit_spans_organisations(crm_url: str) -> None:
    migrate.migrate(crm_url)
    limiter = limiter_for(
        db.get_engine(crm_url), Limits(app_calls_per_minute=4, window_seconds=WINDOW, calls_per_minute=100)
    )
    started = time.monotonic()
    for org in ("a", "b", "c", "d", "e"):
        with limiter.call(org, "app-1"):
            pass
    assert time.monotonic() - started >= WINDOW * 0.9  # the fifth waited for the app's window


def test_limits_come_from_the_environment() -> None:
    assert limits_from_env({}) == Limits()
    assert limits_from_env({"XERO_LIMIT_PER_MINUTE": "10", "XERO_LIMIT_WINDOW_SECONDS": "2.5"}) == Limits(
        calls_per_minute=10, window_seconds=2.5
    )
    with pytest.raises(ValueError, match="XERO_LIMIT_CONCURRENT"):
        limits_from_env({"XERO_LIMIT_CONCURRENT": "five"})
