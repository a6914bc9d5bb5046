"""
### xero_webhook_import: Xero webhooks -> just the changed records -> the import's own steps, within seconds

Event-driven: Xero posts signed webhooks (contacts, invoices, credit notes; a payment updates its invoice) to the
receiver (`POST /xero-webhooks/` on the api-server, plugins/xero_webhooks_plugin.py), which stores each event
in `webhook_event`. The asset `xero://crm/webhook-events` is watched by `WebhookEventTrigger`
(plugins/xero_triggers.py), which polls the table every second in the triggerer, so a run starts seconds after
Xero's change. A run every 5 minutes sweeps up anything left (e.g. events that waited for a reconnect).

**process_events**: per connection, re-reads just the changed records with Xero's `IDs=` filter (100 ids a call)
through the connection's normal client, then validates and loads them with the import's own steps
(`import_run.validate`, `import_run.load`): every import rule applies unchanged. After a pass that found events
the run stays (`linger_seconds` without a new event, at most `max_run_seconds`) and passes again as soon as more
are pending, so a stream of edits pays a task start once, not per edit (webhooks/drain.py). Duplicate, replayed and
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
    Param,
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
LINGER_SECONDS = float(os.environ.get("XERO_WEBHOOK_LINGER_SECONDS", "30"))
MAX_RUN_SECONDS = float(os.environ.get("XERO_WEBHOOK_MAX_RUN_SECONDS", "240"))  # within the 5-minute sweep


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
    params={
        "linger_seconds": Param(
            LINGER_SECONDS,
            type="number",
            minimum=0,
            description="stay this long after the last event for more (0: one pass)",
        ),
        "max_run_seconds": Param(
            MAX_RUN_SECONDS, type="number", minimum=0, description="a run passes again for at most this long"
        ),
    },
)
def xero_webhook_import() -> None:
    @task
    def process_events() -> dict[str, Any]:
        from xero_crm_sync.webhooks.drain import drain_events

        hook = XeroHook()
        context = get_current_context()
        params = context["params"]
        return drain_events(
            hook.engine, hook.store, hook.settings, context["run_id"],
            linger=float(params["linger_seconds"]), max_seconds=float(params["max_run_seconds"]),
        ).as_dict()  # fmt: skip

    process_events()


xero_webhook_import()
