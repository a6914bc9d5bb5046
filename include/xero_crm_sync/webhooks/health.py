"""Are webhooks healthy? If so the routine import polls the webhook entities less often; if not, as before.

Xero sends nothing while nothing changes, so silence alone proves nothing. Webhooks are judged by what polling
still finds: a contact, invoice or credit note that the import loaded with an UpdatedDateUTC older than the
grace period (`XERO_WEBHOOK_GRACE_MINUTES`, 10) and newer than the key's registration, for which no event
arrived, is a *missed* change: Xero changed and did not tell us (the subscription is off, failing or disabled).

- off: no webhook key stored (`python -m xero_crm_sync webhooks set-key`): polling as before.
- waiting: a key, but not one correctly signed request yet (intent to receive not passed): polling as before.
- healthy: a key, signed requests arrive, nothing missed: the scheduled import reads contacts, invoices and
  credit notes only every `XERO_WEBHOOK_POLL_INTERVAL_MINUTES` (60) plus the daily full reconcile; other
  entities (items, stock, purchase orders, tax rates, payments...) keep their interval.
- degraded: changes were missed: the status page says so and the scheduled import polls everything again.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from xero_crm_sync import db
from xero_crm_sync.connections import ConnectionInfo, utcnow

# The entities Xero sends webhooks for, and their event category.
WEBHOOK_ENTITIES = {"contacts": "CONTACT", "invoices": "INVOICE", "credit_notes": "CREDITNOTE"}
FULL_RECONCILE_EVERY = timedelta(hours=24)
_LOOKBACK = timedelta(hours=24)  # missed changes older than this no longer count against the webhooks


def poll_interval() -> timedelta:
    return timedelta(minutes=float(os.environ.get("XERO_WEBHOOK_POLL_INTERVAL_MINUTES", "60")))


def grace() -> timedelta:
    return timedelta(minutes=float(os.environ.get("XERO_WEBHOOK_GRACE_MINUTES", "10")))


@dataclass(frozen=True)
class WebhookStatus:
    state: str  # off | waiting | healthy | degraded
    reason: str
    last_delivery_at: datetime | None = None
    last_event_at: datetime | None = None
    pending: int = 0
    missed: int = 0

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def missed_changes(conn: Connection, since: datetime, until: datetime, limit: int = 500) -> int:
    """Records loaded with UpdatedDateUTC in [since, until) for which no event at or after that time arrived."""
    dialect = conn.dialect.name
    missed = 0
    for entity, category in WEBHOOK_ENTITIES.items():
        rows = conn.execute(
            text(
                f"SELECT LOWER(c.tenant_id), LOWER(v.xero_id), v.updated_date_utc FROM val_{entity} v "  # noqa: S608
                "JOIN xero_connection c ON c.id = v.connection_id AND c.role = 'primary' "
                "WHERE v.updated_date_utc >= :since AND v.updated_date_utc < :until LIMIT :n"
            ),
            {"since": db.bind_time(since, dialect), "until": db.bind_time(until, dialect), "n": limit},
        ).all()
        if not rows:
            continue
        heard = conn.execute(
            text(
                "SELECT tenant_id, resource_id, MAX(event_date_utc) FROM webhook_event "
                "WHERE event_category = :cat AND resource_id IN :ids GROUP BY tenant_id, resource_id"
            ).bindparams(bindparam("ids", expanding=True)),
            {"cat": category, "ids": sorted({r[1] for r in rows})},
        ).all()
        latest = {(t, r): _dt(d) for t, r, d in heard}
        for tenant, xero_id, updated in rows:
            when = latest.get((tenant, xero_id))
            # Xero stamps the event with the change's time; a second of slack for rounding.
            if when is None or when < _dt(updated) - timedelta(seconds=1):
                missed += 1
    return missed


def webhook_status(conn: Connection, now: datetime | None = None) -> WebhookStatus:
    now = now or utcnow()
    row = conn.execute(
        text("SELECT MIN(created_at), MAX(last_delivery_at), MAX(last_event_at) FROM webhook_key")
    ).one()
    registered, last_delivery, last_event = (_dt(v) for v in row)
    pending = int(
        conn.execute(text("SELECT COUNT(*) FROM webhook_event WHERE state = 'pending'")).scalar_one() or 0
    )
    if registered is None:
        return WebhookStatus("off", "no webhook key stored: polling only")
    if last_delivery is None:
        return WebhookStatus(
            "waiting",
            "no correctly signed request from Xero yet (is the subscription's intent to receive done?)",
            pending=pending,
        )
    since = max(registered, now - _LOOKBACK)
    missed = missed_changes(conn, since, now - grace())
    if missed:
        return WebhookStatus(
            "degraded",
            f"{missed} change(s) in Xero reached the CRM only by polling: webhooks are not arriving; "
            "polling runs at its normal interval. Check the subscription in Xero's developer portal.",
            last_delivery,
            last_event,
            pending,
            missed,
        )
    return WebhookStatus("healthy", "events arrive; polling of webhook entities stretched", last_delivery,
                         last_event, pending)  # fmt: skip


def deferred_entities(engine: Engine, info: ConnectionInfo, now: datetime | None = None) -> frozenset[str]:
    """Webhook entities a scheduled import may skip now: webhooks healthy, read within the stretched interval,
    and not due for the daily full reconcile. Empty when webhooks are not healthy (polling as before)."""
    now = now or utcnow()
    with engine.connect() as conn:
        if not webhook_status(conn, now).healthy:
            return frozenset()
        rows = conn.execute(
            text(
                "SELECT entity, last_successful_run_at, last_full_sync_at FROM sync_watermark "
                "WHERE connection_id = :c"
            ),
            {"c": info.id},
        ).all()
    deferred = set()
    for entity, last_run, last_full in rows:
        last_run, last_full = _dt(last_run), _dt(last_full)
        if entity not in WEBHOOK_ENTITIES or last_run is None or last_full is None:
            continue
        if now - last_run < poll_interval() and now - last_full < FULL_RECONCILE_EVERY:
            deferred.add(entity)
    return frozenset(deferred)


def command(action: str, client_id: str | None, key_env: str) -> int:
    """`python -m xero_crm_sync webhooks set-key | status`."""
    from xero_crm_sync.webhooks import keys

    if action == "set-key":
        if not client_id:
            print(
                "error: give --client-id (or set XERO_CLIENT_ID): the Xero app the key belongs to",
                file=sys.stderr,
            )
            return 2
        key = os.environ.get(key_env) or (getpass.getpass("Webhook key: ") if sys.stdin.isatty() else "")
        if not key:
            print(f"error: put the webhook key in ${key_env} (never on the command line)", file=sys.stderr)
            return 2
        with db.begin() as conn:
            keys.set_key(conn, client_id, key)
        print(f"webhook key for {client_id} stored (encrypted)")
        return 0
    with db.get_engine().connect() as conn:
        status = webhook_status(conn)
    print(f"webhooks: {status.state}: {status.reason}")
    print(
        f"last signed request: {status.last_delivery_at or 'never'}; last events: {status.last_event_at or 'never'}"
    )
    print(f"events waiting for import: {status.pending}")
    return 0
