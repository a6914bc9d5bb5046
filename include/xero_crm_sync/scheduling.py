"""Which connections a DAG run works on: active ones (others are skipped with what to do), and on runs of the
time schedule only those whose operating company's sync interval (S9) has elapsed since their last run of that
kind. Manual runs, and pushes that follow an import, always go. Shared by the import and the push."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from xero_crm_sync.connections import ROLES, ConnectionStore, utcnow

log = logging.getLogger(__name__)

# A minute of slack: a 5-minute schedule must not skip every other run because the last one started at :00.3.
SLACK = timedelta(minutes=1)


def due_connections(engine: Engine, kind: str, now: datetime) -> set[int]:
    """Connections whose company's interval has elapsed since their last `kind` run ('import' or 'push')."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, COALESCE(s.sync_interval_minutes, 5), "
                "(SELECT MAX(r.started_at) FROM sync_run r WHERE r.connection_id = c.id AND r.kind = :kind) "
                "FROM xero_connection c LEFT JOIN integration_settings s "
                "ON s.operating_company_id = c.operating_company_id"
            ),
            {"kind": kind},
        ).all()
    due = set()
    for connection_id, minutes, last in rows:
        if last is not None and not isinstance(last, datetime):
            last = datetime.fromisoformat(str(last))
        if last is None or now - last >= timedelta(minutes=int(minutes)) - SLACK:
            due.add(int(connection_id))
    return due


def connections_to_run(
    store: ConnectionStore,
    *,
    kind: str,
    roles: tuple[str, ...] = ROLES,
    connection_id: int | None = None,
    respect_interval: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The connections to work on, as secret-free dicts (they travel through XCom)."""
    due = due_connections(store.engine, kind, now or utcnow()) if respect_interval else None
    chosen = []
    for info in store.runnable(connection_id, roles=roles):
        if due is not None and info.id not in due:
            log.info(
                "connection %s (%s): its sync interval (S9) has not elapsed; next run",
                info.id,
                info.tenant_name,
            )
            continue
        chosen.append(info.as_dict())
    return chosen
