"""
### xero_webhook_import: Xero webhooks -> just the changed records -> the import's own steps, within seconds

Event-driven: Xero posts signed webhooks (contacts, invoices, credit notes; a payment updates its invoice) to the
receiver (`POST /xero-webhooks/` on the api-server, plugins/xero_webhooks_plugin.py), which stores each event
in `webhook_event`. The asset `xero://crm/webhook-events` is watched by `WebhookEventTrigger`
(plugins/xero_triggers.py), which polls the table every second in the triggerer, so a run starts seconds after
Xero's change. A run every 5 minutes sweeps up anything left (e.g. events that waited for a reconnect).

**process_events**: per connection, re-reads just the changed records with Xero's `IDs=` filter (100 ids a call)
through the connection's normal client, then validates and loads them with the import's own steps
(`import_run.validate`, `import_run.load`): every import rule applies unchanged. Duplicate, replayed and
out-of-order events end in the same CRM state (Xero's current record is what is loaded; an older version never
overwrites a newer one). Our own push coming back is not re-read (echo guard). The routine `xero_import` stays
the safety net; see docs/WEBHOOKS.md.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    dag,
    get_current_context,
    task,
)

from xero_hook import XeroHook
from xero_triggers import WebhookEventTrigger

WEBHOOK_EVENTS = Asset(
    "xero://crm/webhook-events",
    watchers=[
        AssetWatcher(name="xero_webhook_events", trigger=WebhookEventTrigger(poll_interval=1.0, debounce=0.5))
    ],
)
RETRY_DELAY = timedelta(seconds=float(os.environ.get("XERO_WEBHOOK_RETRY_DELAY_SECONDS", "10")))


@dag(
    dag_id="xero_webhook_import",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=WEBHOOK_EVENTS
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one run drains everything pending; the next picks up what arrived meanwhile
    doc_md=__doc__,
    tags=["xero", "import", "webhooks"],
    default_args={"retries": 3, "retry_delay": RETRY_DELAY},
)
def xero_webhook_import() -> None:
    @task
    def process_events() -> dict[str, Any]:
        from xero_crm_sync.webhooks.importer import process_events

        hook = XeroHook()
        run_id = get_current_context()["run_id"]
        return process_events(hook.engine, hook.store, hook.settings, run_id).as_dict()

    process_events()


xero_webhook_import()
