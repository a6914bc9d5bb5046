"""
### xero_order_invoices: confirmed orders -> Draft invoices in Xero, within seconds (P6, P7)

Event-driven: the CRM writes an `order_outbox` event in the same transaction as confirming or voiding an order
(`xero_crm_sync.push.orders.confirm_order` / `void_order`). The asset `xero://crm/order-outbox` is watched by
`OrderOutboxTrigger` (plugins/xero_triggers.py), which polls the outbox every second in Airflow's triggerer and
fires on each new event, so a run starts about a second after the confirmation. A run every 5 minutes sweeps up
anything left (e.g. events that waited for a reconnect).

**process_outbox** handles events in order:
- *confirmed*: the customer is pushed first when it is not in Xero yet (and products of its lines), then one
  ACCREC invoice with status DRAFT: currency, customer reference, a line per order line (item code,
  description, quantity, unit price, tax type, discount rate, account code) and a delivery line for a delivery
  charge. The Idempotency-Key is derived from the order and stored before sending; the InvoiceID is stored with
  the order: exactly one invoice per order through retries, crashes and reruns.
- *voided*: the invoice is deleted in Xero while it is still DRAFT; otherwise an unresolved error (`sync_error`)
  asks the accounts team to void or credit it. Its later life in Xero flows back through the import.

**Params**: `delivery_account_code`, `delivery_tax_type` for the delivery line (default: the environment's
`XERO_DELIVERY_ACCOUNT_CODE` / `XERO_DELIVERY_TAX_TYPE`, else left for the accounts team to set on the draft).
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
from xero_triggers import OrderOutboxTrigger

ORDER_OUTBOX = Asset(
    "xero://crm/order-outbox",
    watchers=[AssetWatcher(name="crm_order_outbox", trigger=OrderOutboxTrigger(poll_interval=1.0))],
)
RETRY_DELAY = timedelta(seconds=float(os.environ.get("XERO_ORDER_RETRY_DELAY_SECONDS", "10")))


@dag(
    dag_id="xero_order_invoices",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=ORDER_OUTBOX
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # events are processed in order, one run at a time
    doc_md=__doc__,
    tags=["xero", "push", "orders"],
    default_args={"retries": 3, "retry_delay": RETRY_DELAY},
    params={
        "delivery_account_code": Param(
            os.environ.get("XERO_DELIVERY_ACCOUNT_CODE"), type=["null", "string"], description="delivery line"
        ),
        "delivery_tax_type": Param(
            os.environ.get("XERO_DELIVERY_TAX_TYPE"), type=["null", "string"], description="delivery line"
        ),
    },
)
def xero_order_invoices() -> None:
    @task
    def process_outbox(params: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync.push.orders import InvoiceOptions, process_outbox

        hook = XeroHook()
        options = InvoiceOptions(params.get("delivery_account_code"), params.get("delivery_tax_type"))
        run_id = get_current_context()["run_id"]
        return process_outbox(hook.engine, hook.store, hook.settings, run_id, options=options).as_dict()

    process_outbox()


xero_order_invoices()
