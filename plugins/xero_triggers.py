"""Event triggers for the triggerer: DAG runs that start within about a second of work appearing in the CRM.

Each trigger polls one table every `poll_interval` seconds in Airflow's triggerer and yields one `TriggerEvent`
whenever work newer than the last it announced is pending; an `AssetWatcher` on the DAG's asset turns that into
an asset event and a DAG run, visible in the UI like any other asset-triggered run.

- `OrderOutboxTrigger`: the order outbox (P6) -> xero_order_invoices.
- `WebhookEventTrigger`: Xero webhook events the receiver stored -> xero_webhook_import.
- `CrmChangeTrigger`: CRM customer/product edits queued by database triggers -> xero_crm_changes.

`debounce` (seconds) waits that long after first seeing new work before announcing it, so a burst (a webhook
delivery of 100 events, a bulk edit in the CRM) becomes one run, not one per row; work that a running run took
during that wait is not announced at all.

The CRM database is resolved when the trigger starts, as tasks resolve it (the Airflow connection `xero_crm_db`,
else CRM_DATABASE_URL), never passed as a keyword argument: trigger kwargs are stored in Airflow's metadata
database and printed in the triggerer's log, and a URL may hold a password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from sqlalchemy import Engine


class _PendingWorkTrigger(BaseEventTrigger):
    """Fires when `_poll()` reports pending work newer than the last it announced."""

    def __init__(self, poll_interval: float = 1.0, after_id: int = 0, debounce: float = 0.0) -> None:
        super().__init__()
        self.poll_interval = float(poll_interval)
        self.after_id = int(after_id)
        self.debounce = float(debounce)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"poll_interval": self.poll_interval, "after_id": self.after_id, "debounce": self.debounce},
        )

    def _poll(self, engine: Engine) -> tuple[int, int | None]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from xero_crm_sync import db
        from xero_crm_sync_provider.hooks.xero import acrm_database_url

        engine = db.get_engine(await acrm_database_url())
        announced = self.after_id
        while True:
            # The database driver blocks; a thread keeps the triggerer's event loop free for other triggers.
            pending, newest = await asyncio.to_thread(self._poll, engine)
            if pending and newest is not None and newest > announced:
                if self.debounce:
                    await asyncio.sleep(self.debounce)
                    pending, newest = await asyncio.to_thread(self._poll, engine)
                announced = max(announced, newest or announced)
                # A running run may have taken the work meanwhile (a webhook run stays while events keep
                # coming): then there is nothing to start a run for.
                if pending:
                    yield TriggerEvent({"pending": pending, "newest_event_id": newest})
            await asyncio.sleep(self.poll_interval)


class OrderOutboxTrigger(_PendingWorkTrigger):
    """Fires when the order outbox holds a pending event it has not announced yet."""

    def _poll(self, engine: Engine) -> tuple[int, int | None]:
        from xero_crm_sync.push.orders import pending_summary

        with engine.connect() as conn:
            return pending_summary(conn)


class WebhookEventTrigger(_PendingWorkTrigger):
    """Fires when the receiver stored webhook events that no run has picked up yet."""

    def _poll(self, engine: Engine) -> tuple[int, int | None]:
        from xero_crm_sync.webhooks.events import pending_summary

        with engine.connect() as conn:
            return pending_summary(conn)


class CrmChangeTrigger(_PendingWorkTrigger):
    """Fires when CRM edits to pushed fields wait in the change outbox (and differ from what Xero holds)."""

    def _poll(self, engine: Engine) -> tuple[int, int | None]:
        from xero_crm_sync.webhooks.outbox import pending_summary

        with engine.connect() as conn:
            return pending_summary(conn)
