"""
### xero_crm_changes: a customer or product edited in the CRM reaches Xero within seconds

Event-driven: database triggers queue a `crm_change_outbox` row in the same transaction as any new customer or
product, or any change to a pushed field (sql/migrations/0261_crm_change_outbox.*.sql). The asset
`xero://crm/changes` is watched by `CrmChangeTrigger` (plugins/xero_triggers.py), which polls every second in
the triggerer, waits a second more to gather a burst, and fires only for changes that still differ from what Xero
holds (an import's own writes never start a run: the echo rule). A run every 5 minutes sweeps up the rest.

**drain**: `push_customers` / `push_products` of the companies with pending changes: the same diff by hash,
matching, template ledger and batches of 50 as `xero_push`, which stays the safety net. See docs/WEBHOOKS.md.
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
from xero_triggers import CrmChangeTrigger

CRM_CHANGES = Asset(
    "xero://crm/changes",
    watchers=[AssetWatcher(name="crm_changes", trigger=CrmChangeTrigger(poll_interval=1.0, debounce=1.0))],
)
RETRY_DELAY = timedelta(seconds=float(os.environ.get("XERO_CRM_CHANGES_RETRY_DELAY_SECONDS", "10")))


@dag(
    dag_id="xero_crm_changes",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=CRM_CHANGES
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # pushes of one organisation never overlap
    doc_md=__doc__,
    tags=["xero", "push", "webhooks"],
    default_args={"retries": 3, "retry_delay": RETRY_DELAY},
)
def xero_crm_changes() -> None:
    @task
    def drain() -> dict[str, Any]:
        from xero_crm_sync.webhooks.outbox import drain

        hook = XeroHook()
        return drain(hook.engine, hook.store, hook.settings, get_current_context()["run_id"]).as_dict()

    drain()


xero_crm_changes()
