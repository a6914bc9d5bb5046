"""Accepted webhook events, stored durably before the receiver answers 200, and what the import makes of them.

One row per event (`webhook_event`); a duplicate or replayed delivery inserts nothing (unique on tenant,
category, resource, type and event time). The receiver's health (last correctly signed request, last one with
events) is kept on `webhook_key`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from xero_crm_sync import db

REQUIRED = ("resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId")


class MalformedDelivery(ValueError):
    """A correctly signed body that is not Xero's payload shape."""


def parse_event_time(value: str) -> datetime:
    """Xero's eventDateUtc: `2025-12-02T00:44:09.923` (UTC, no zone), stored naive UTC."""
    stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo is None else stamp.astimezone(UTC).replace(tzinfo=None)


def parse_delivery(payload: Any) -> list[dict[str, Any]]:
    """The events of a delivery, checked against the spec's required fields (raises MalformedDelivery)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise MalformedDelivery("the body has no `events` list")
    events = []
    for event in payload["events"]:
        if not isinstance(event, dict) or any(not isinstance(event.get(f), str) for f in REQUIRED):
            raise MalformedDelivery(f"an event lacks one of {', '.join(REQUIRED)}")
        try:
            when = parse_event_time(event["eventDateUtc"])
        except ValueError as exc:
            raise MalformedDelivery(f"eventDateUtc {event['eventDateUtc']!r} is not a date") from exc
        events.append(
            {
                "tenant_id": event["tenantId"].lower(),
                "event_category": event["eventCategory"].upper(),
                "event_type": event["eventType"].upper(),
                "resource_id": event["resourceId"].lower(),
                "event_date_utc": when,
            }
        )
    return events


def store_delivery(conn: Connection, client_id: str, events: list[dict[str, Any]], now: datetime) -> int:
    """Insert the events (duplicates are skipped) and note the delivery; returns how many were new."""
    dialect = conn.dialect.name
    rows = [
        {**e, "event_date_utc": db.bind_time(e["event_date_utc"], dialect), "now": db.bind_time(now, dialect)}
        for e in events
    ]
    new = 0
    if rows:
        result = conn.execute(
            text(
                "INSERT INTO webhook_event (tenant_id, event_category, event_type, resource_id, event_date_utc, "
                "received_at) VALUES (:tenant_id, :event_category, :event_type, :resource_id, :event_date_utc, "
                ":now) ON CONFLICT (tenant_id, event_category, resource_id, event_type, event_date_utc) DO NOTHING"
            ),
            rows,
        )
        new = max(0, result.rowcount or 0)
    conn.execute(
        text(
            "UPDATE webhook_key SET deliveries = deliveries + 1, last_delivery_at = :now, "
            "last_event_at = CASE WHEN :has_events THEN :now ELSE last_event_at END WHERE client_id = :c"
        ),
        {"now": db.bind_time(now, dialect), "has_events": bool(rows), "c": client_id},
    )
    return new


@dataclass(frozen=True)
class PendingEvent:
    id: int
    tenant_id: str
    event_category: str
    event_type: str
    resource_id: str
    event_date_utc: datetime


def pending_summary(conn: Connection) -> tuple[int, int | None]:
    """(how many events wait, the newest one's id): what the event trigger polls."""
    row = conn.execute(text("SELECT COUNT(*), MAX(id) FROM webhook_event WHERE state = 'pending'")).one()
    return int(row[0] or 0), (int(row[1]) if row[1] is not None else None)


def pending(conn: Connection, limit: int = 10_000) -> list[PendingEvent]:
    rows = conn.execute(
        text(
            "SELECT id, tenant_id, event_category, event_type, resource_id, event_date_utc FROM webhook_event "
            "WHERE state = 'pending' ORDER BY id LIMIT :n"
        ),
        {"n": limit},
    ).all()
    return [PendingEvent(*row[:5], _as_dt(row[5])) for row in rows]


def mark(
    conn: Connection, ids: list[int], state: str, now: datetime, run_id: str, detail: str | None = None
) -> None:
    if not ids:
        return
    conn.execute(
        text(
            "UPDATE webhook_event SET state = :s, processed_at = :now, run_id = :run, detail = :d "
            "WHERE id IN :ids AND state = 'pending'"
        ).bindparams(bindparam("ids", expanding=True)),
        {"s": state, "now": db.bind_time(now, conn.dialect.name), "run": run_id, "d": detail, "ids": ids},
    )


def _as_dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
