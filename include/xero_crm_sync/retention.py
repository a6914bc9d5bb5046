"""Staging retention: forget what old import runs staged, never what the mirror still points at.

Staging is append-only (one row per record per run, with Xero's raw payload), so without retention it grows with
every run: a 100,000-contact organisation's daily full reconcile stages about 800 MiB. Once an import run is older
than the window (`keep_staged()`: `$XERO_STAGING_KEEP_DAYS`, 14 days by default), its staged rows and lines are
deleted, except the staged records the mirror points at (`staging.forget_run`): they hold the raw payload of the
version the mirror and the CRM carry, so analysts can always read what Xero said for every current record.
A run is stamped (`sync_run.staging_pruned_at`) when nothing of it is left, so it is not looked at again; a run that
still holds a mirrored version is looked at on the next pass (the next full reconcile re-stages those records, and
the mirror moves to the newer rows). Quarantined records older than the window go when resolved, or when a later
run quarantined the same record again (the status page lists open ones: an open record nothing superseded stays).
The CRM-change outbox's drained rows older than the window go too (pending ones stay: work not yet done).

A transaction per entity of a run, oldest run first, at most `max_runs` runs per call and, given `max_seconds`, no
new run after that long: SQLite's write lock is held for one table's deletes at a time, and a backlog (the first
pass after an upgrade) is worked off over several passes instead of holding up the DAG that runs it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from xero_crm_sync import db, staging
from xero_crm_sync.entities import ENTITIES, Entity
from xero_crm_sync.settings import SettingsError

KEEP_STAGED_DAYS = 14.0


def keep_staged() -> timedelta:
    """The retention window: `$XERO_STAGING_KEEP_DAYS` (days; fractions allowed), else 14 days."""
    value = os.environ.get("XERO_STAGING_KEEP_DAYS", "").strip()
    try:
        days = float(value) if value else KEEP_STAGED_DAYS
    except ValueError:
        raise SettingsError(f"XERO_STAGING_KEEP_DAYS must be a number of days, not {value!r}") from None
    if not days > 0:
        raise SettingsError(f"XERO_STAGING_KEEP_DAYS must be more than 0 days, not {value!r}")
    return timedelta(days=days)


@dataclass
class PruneResult:
    runs: int = 0  # import runs looked at
    finished: int = 0  # of those, runs with nothing left (stamped)
    staged_deleted: int = 0  # staged records deleted (their lines with them)
    kept_for_mirror: int = 0  # staged records kept: the mirror points at them
    quarantine_deleted: int = 0
    outbox_deleted: int = 0  # CRM-change outbox rows drained before the window

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune_staging(
    engine: Engine, *, older_than: datetime, max_runs: int = 200, max_seconds: float | None = None
) -> PruneResult:
    """Forget what import runs started before `older_than` (naive UTC) staged; see the module. With `max_seconds`,
    no further run is started once that much time has passed (the rest waits for the next pass)."""
    result = PruneResult()
    started = time.monotonic()
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT run_id, connection_id FROM sync_run WHERE kind = 'import' AND staging_pruned_at IS NULL "
                "AND started_at < :older_than ORDER BY started_at LIMIT :max_runs"
            ),
            {"older_than": db.bind_time(older_than, conn.dialect.name), "max_runs": max_runs},
        ).all()
    for run_id, connection_id in runs:
        if max_seconds is not None and result.runs and time.monotonic() - started > max_seconds:
            break
        params = {"run_id": run_id, "connection_id": connection_id}
        left = False
        for entity in ENTITIES:
            # A transaction per entity of a run: SQLite's write lock is held for one table's deletes at a time.
            with engine.begin() as conn:
                forgotten = staging.forget_run(
                    conn, entity, run_id, connection_id, extracted_before=older_than
                )
                # Kept for the mirror, or staged again by a late rerun of the run: looked at again next time.
                left = left or _staged_any(conn, entity, params)
            result.staged_deleted += forgotten.deleted
            result.kept_for_mirror += forgotten.kept
        if not left:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE sync_run SET staging_pruned_at = :now WHERE run_id = :run_id "
                        "AND connection_id = :connection_id AND kind = 'import'"
                    ),
                    {**params, "now": db.bind_time(staging.now_utc_naive(), conn.dialect.name)},
                )
            result.finished += 1
        result.runs += 1
    with engine.begin() as conn:
        cutoff = {"older_than": db.bind_time(older_than, conn.dialect.name)}
        result.quarantine_deleted = conn.execute(text(_OLD_QUARANTINE), cutoff).rowcount
        result.outbox_deleted = conn.execute(text(_DRAINED_OUTBOX), cutoff).rowcount
    return result


# Quarantined records older than the window go once resolved, or once a later run quarantined the same record
# again (that row carries the open issue on the status page); an open one that nothing superseded stays, whatever
# its age.
_OLD_QUARANTINE = """
DELETE FROM quarantined_record
WHERE created_at < :older_than
  AND (resolved_at IS NOT NULL OR EXISTS (
        SELECT 1 FROM quarantined_record newer
        WHERE newer.connection_id = quarantined_record.connection_id AND newer.entity = quarantined_record.entity
          AND newer.xero_id = quarantined_record.xero_id AND newer.id > quarantined_record.id))
"""

# CRM-change outbox rows (webhooks/outbox.py) whose push ran before the window: the run they name keeps its own
# record in sync_run. A pending row stays, whatever its age: it is work not yet done.
_DRAINED_OUTBOX = "DELETE FROM crm_change_outbox WHERE state = 'done' AND processed_at < :older_than"


def _staged_any(conn: Connection, entity: Entity, params: dict[str, Any]) -> bool:
    table = staging.TABLES[entity.name].staging.name
    sql = f"SELECT 1 FROM {table} WHERE run_id = :run_id AND connection_id = :connection_id LIMIT 1"  # noqa: S608
    return conn.execute(text(sql), params).first() is not None
