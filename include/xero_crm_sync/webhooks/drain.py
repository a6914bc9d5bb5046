"""A webhook run stays while events keep coming: one task start serves a whole stream of edits.

Starting a task costs seconds (Airflow schedules the run, a new process imports pandas and Great Expectations
and builds the validation suites); one pass over a few changed records costs a fraction of a second. So after
a pass that found events, the run watches the event table and passes again as soon as more are pending, until
`linger` seconds go by without one or the run has lasted `max_seconds`. A run whose first pass finds nothing
ends at once (the five-minute sweep, a run the triggerer queued behind this one).

Each pass is a run of its own in `sync_run` and `webhook_event.run_id`: `<run_id>`, then `<run_id>.2`,
`<run_id>.3`, ... A retried task starts again at `<run_id>`: a pass only ever loads Xero's current records, so
re-running one changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.settings import Settings
from xero_crm_sync.webhooks import events
from xero_crm_sync.webhooks.importer import WebhookImportResult, process_events

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25  # how often a lingering run looks for new events (one indexed COUNT)


def pass_run_id(run_id: str, number: int) -> str:
    return run_id if number == 1 else f"{run_id}.{number}"


def add_pass(total: WebhookImportResult, one: WebhookImportResult) -> None:
    """Fold one pass's counts into the run's."""
    total.events += one.events
    total.ignored += one.ignored
    total.echoes += one.echoes
    total.calls += one.calls
    for connection_id, loaded in one.connections.items():
        seen = total.connections.setdefault(connection_id, {"records": {}, "status": loaded["status"]})
        for entity, records in loaded["records"].items():
            seen["records"][entity] = seen["records"].get(entity, 0) + records
        seen["status"] = loaded["status"]


def _has_pending(engine: Engine) -> bool:
    with engine.connect() as conn:
        return events.pending_summary(conn)[0] > 0


def drain_events(
    engine: Engine,
    store: ConnectionStore,
    settings: Settings,
    run_id: str,
    *,
    linger: float,
    max_seconds: float,
    poll: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    **pass_options: Any,
) -> WebhookImportResult:
    """Pass over the pending events, then again whenever more arrive within `linger` s, for at most `max_seconds`.

    `pass_options` go to every `process_events` call (limits, retry policy)."""
    started = clock()
    total = WebhookImportResult(run_id=run_id, passes=0)
    while True:
        total.passes += 1
        one = process_events(engine, store, settings, pass_run_id(run_id, total.passes), **pass_options)
        add_pass(total, one)
        if one.events == 0:
            break
        quiet_until = min(clock() + linger, started + max_seconds)
        while clock() < quiet_until and not _has_pending(engine):
            sleep(poll)
        if clock() >= quiet_until:
            break
    if total.passes > 1:
        log.info(
            "webhook run %s: %d passes over %d events in %.1f s (stayed while events kept coming)",
            run_id, total.passes, total.events, clock() - started,
        )  # fmt: skip
    return total
