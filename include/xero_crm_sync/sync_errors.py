"""Unresolved errors (P8), import and export: one row per record and problem in `sync_error`.

A repeat of the same problem updates its row (attempts, last seen, latest message) and re-opens it instead of
adding another; the status page and analysts read the table, users retry or dismiss from the page.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from xero_crm_sync import db
from xero_crm_sync.connections import utcnow

_UPSERT = text(
    "INSERT INTO sync_error (connection_id, direction, record_type, record_id, xero_id, error_code, dedupe_key, "
    "message, xero_message, action, payload, status, attempts, run_id, first_seen_at, last_seen_at) VALUES "
    "(:c, :direction, :t, :r, :x, :code, :key, :msg, :xmsg, :action, :payload, 'open', 1, :run, :now, :now) "
    "ON CONFLICT (connection_id, dedupe_key) DO UPDATE SET attempts = sync_error.attempts + 1, "
    "last_seen_at = excluded.last_seen_at, message = excluded.message, xero_message = excluded.xero_message, "
    "action = excluded.action, payload = excluded.payload, xero_id = excluded.xero_id, "
    "run_id = excluded.run_id, status = 'open', resolved_at = NULL"
)


def record_error(
    conn: Connection,
    *,
    direction: str,
    connection_id: int,
    record_type: str,
    record_id: int | None,
    code: str,
    message: str,
    action: str,
    run_id: str | None,
    now: datetime | None = None,
    xero_message: str | None = None,
    xero_id: str | None = None,
    payload: Any = None,
) -> None:
    """Record (or re-open) the unresolved error `code` of one record; `direction` is 'import' or 'export'."""
    conn.execute(
        _UPSERT,
        {
            "c": connection_id,
            "direction": direction,
            "t": record_type,
            "r": record_id,
            "x": xero_id,
            "code": code,
            "key": f"{direction}:{record_type}:{record_id if record_id is not None else '-'}:{code}",
            "msg": message,
            "xmsg": xero_message,
            "action": action,
            "payload": None
            if payload is None
            else json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str),
            "run": run_id,
            "now": db.bind_time(now or utcnow(), conn.dialect.name),
        },
    )
