"""Run bookkeeping: one `sync_run` row per run, connection and kind ('import' or 'push'), kept up to date by
each step of the run.

Every step merges its part of `counts` (extract, validate, load; customers, products) into the row, so a step
retried by Airflow overwrites only its own part. The step that closes the run passes `status` (and the reason it
stopped early, if any), which also stamps `finished_at`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, text

from xero_crm_sync import db
from xero_crm_sync.connections import utcnow


def record_run(
    engine: Engine,
    connection_id: int,
    run_id: str,
    kind: str,
    counts: Mapping[str, Any],
    *,
    mode: str | None = None,
    status: str | None = None,
    error: str | None = None,
) -> None:
    """Create or update the run's row, merging `counts` into what earlier steps recorded.

    `mode` ('full', 'incremental', 'webhook') is set when given and kept otherwise; a new row without one is
    'incremental'. `status` closes the run ('success', 'partial'); without it a new row is 'running'."""
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT counts FROM sync_run WHERE run_id = :r AND connection_id = :c AND kind = :kind"),
            {"r": run_id, "c": connection_id, "kind": kind},
        ).first()
        merged = dict(counts_of(row[0])) if row is not None else {}
        merged.update(counts)
        params = {
            "r": run_id,
            "c": connection_id,
            "kind": kind,
            "mode": mode,
            "counts": json.dumps(merged, default=str),
            "status": status,
            "error": error,
            "now": db.bind_time(utcnow(), conn.dialect.name),
        }
        if row is None:
            conn.execute(
                text(
                    "INSERT INTO sync_run (run_id, connection_id, kind, mode, status, started_at, finished_at, "
                    "counts, error) VALUES (:r, :c, :kind, COALESCE(:mode, 'incremental'), "
                    "COALESCE(:status, 'running'), :now, CASE WHEN :status IS NULL THEN NULL ELSE :now END, "
                    ":counts, :error)"
                ),
                params,
            )
        else:
            conn.execute(
                text(
                    # A rerun, however late, may stage again: retention looks at the run again (retention.py).
                    "UPDATE sync_run SET counts = :counts, mode = COALESCE(:mode, mode), staging_pruned_at = NULL, "
                    "status = COALESCE(:status, status), error = COALESCE(:error, error), "
                    "finished_at = CASE WHEN :status IS NULL THEN finished_at ELSE :now END "
                    "WHERE run_id = :r AND connection_id = :c AND kind = :kind"
                ),
                params,
            )


def counts_of(value: Any) -> dict[str, Any]:
    """`sync_run.counts` as a dict: PostgreSQL's JSON arrives parsed, SQLite's as text."""
    if not value:
        return {}
    return value if isinstance(value, dict) else json.loads(value)
