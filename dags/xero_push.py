"""
### xero_push: CRM -> Xero, customers and products (P1-P5, P8, P9, S8, S10)

For each active **primary** Xero connection (the secondary organisation only enriches, C2), one mapped task per
organisation and step:

1. **push_customers**: customers new in the CRM or whose pushed fields (name, email, currency, status, tax type,
   tax number, phones, address, contact name) changed since their last push, never those flagged do not
   export. New ones are first matched to existing Xero contacts (ContactNumber = CRM id, email, name) and linked
   instead of created (P9); the rest are created with the template ledger's defaults (S8, P2).
2. **push_products**: products new or changed (code, name, description, prices, account codes, sales tax type).

Changes are found in SQL by a hash of exactly the pushed fields (`sql/push/`); no change, no call. Writes go in
batches of at most 50 with `summarizeErrors=false`, each persisted with its Idempotency-Key before it is sent
(a rerun resends unfinished batches first). A record Xero rejects becomes an unresolved error (`sync_error`) with
Xero's message; the others succeed and get their Accounting Code and Last Accounting Export Date. Waiting and
in-flight writes are in `export_queue`, done ones in `sync_history`, runs in `sync_run` (kind `push`).

Never pushed (P5): payments, archiving of obsolete products, bills.

**Schedule**: every `XERO_PUSH_INTERVAL_MINUTES` (default 5; a company whose sync interval, S9, has not elapsed
waits) and right after each import (asset `xero://crm/import`). **Params**: `connection_id` = one connection, or empty for all.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from xero_hook import XeroHook

IMPORTED = Asset("xero://crm/import")
INTERVAL_MINUTES = int(os.environ.get("XERO_PUSH_INTERVAL_MINUTES", "5"))


@dag(
    dag_id="xero_push",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(f"*/{INTERVAL_MINUTES} * * * *", timezone="UTC"), assets=IMPORTED
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one push at a time: the diff and the export queue assume it
    doc_md=__doc__,
    tags=["xero", "push"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "connection_id": Param(None, type=["null", "integer"], description="one xero_connection.id, or all"),
    },
)
def xero_push() -> None:
    @task
    def list_connections(params: dict[str, Any]) -> list[dict[str, Any]]:
        from xero_crm_sync.push.run import push_connections

        # Runs of the time schedule respect each company's sync interval (S9); after an import, or by hand, all go.
        scheduled = get_current_context()["dag_run"].run_type == "scheduled"
        return push_connections(
            XeroHook(params.get("connection_id")).store,
            params.get("connection_id"),
            respect_interval=scheduled,
        )

    @task(map_index_template="{{ task.op_kwargs['connection']['tenant_name'] }}")
    def push_customers(connection: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync.push.run import run_step

        hook = XeroHook(connection["id"])
        run_id = get_current_context()["run_id"]
        return run_step("customers", hook.engine, hook.store, hook.settings, connection["id"], run_id)

    @task
    def push_products(customers: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync.push.run import run_step

        hook = XeroHook(customers["connection_id"])
        run_id = get_current_context()["run_id"]
        return run_step(
            "products",
            hook.engine,
            hook.store,
            hook.settings,
            customers["connection_id"],
            run_id,
            last=True,
            stopped_before=customers.get("stopped"),
        )

    # Products follow customers per organisation: one organisation's call budget is spent one step at a time.
    push_products.expand(customers=push_customers.expand(connection=list_connections()))


xero_push()
