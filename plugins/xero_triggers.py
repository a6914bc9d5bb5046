"""OrderOutboxTrigger: event-driven scheduling of xero_order_invoices on the CRM's order outbox (P6).

An `AssetWatcher` on `Asset("xero://crm/order-outbox")` runs this trigger in Airflow's triggerer. Its `run()`
polls the `order_outbox` table every `poll_interval` seconds and yields one `TriggerEvent` whenever an event newer
than the last one it announced is pending: Airflow records an asset event and starts a xero_order_invoices run
within about a second of the confirmation, visible in the UI like any other asset-triggered run.

The CRM database URL is read from the environment (CRM_DATABASE_URL) when the trigger runs, never passed as a
keyword argument: trigger kwargs are stored in Airflow's metadata database and printed in the triggerer's log,
and a URL may hold a password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class OrderOutboxTrigger(BaseEventTrigger):
    """Fires when the order outbox holds a pending event it has not announced yet."""

    def __init__(self, poll_interval: float = 1.0, after_id: int = 0) -> None:
        super().__init__()
        self.poll_interval = float(poll_interval)
        self.after_id = int(after_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"poll_interval": self.poll_interval, "after_id": self.after_id},
        )

    def _poll(self) -> tuple[int, int | None]:
        from xero_crm_sync import db
        from xero_crm_sync.push.orders import pending_summary

        with db.get_engine().connect() as conn:
            return pending_summary(conn)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        announced = self.after_id
        while True:
            # The database driver blocks; a thread keeps the triggerer's event loop free for other triggers.
            pending, newest = await asyncio.to_thread(self._poll)
            if pending and newest is not None and newest > announced:
                announced = newest
                yield TriggerEvent({"pending": pending, "newest_event_id": newest})
            await asyncio.sleep(self.poll_interval)
