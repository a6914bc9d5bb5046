"""
### xero_import: Xero -> staging -> validation -> CRM, for every connected organisation

For each active Xero connection (dynamic task mapping, one mapped task per organisation):

1. **extract**: every entity of the registry (`include/xero_crm_sync/entities.py`) into `stg_*` tables, page by
   page, with If-Modified-Since from the entity's watermark (a full read on the first run, on `mode=full`, and
   once a day to reconcile);
2. **validate**: Great Expectations suites per entity; failing records go to `quarantined_record` with their
   reasons, the rest into the `val_*` mirror;
3. **load**: the set-based SQL steps in `sql/transform/` into the CRM tables, then the watermarks move, in the
   same transaction. Extract already validated each entity while the next was read, and committed the steps
   whose entities were all read (up to the purchase order lines) while the payments were read: Xero's pacing
   hides that work. The load runs the rest; watermarks move only here.

Connections that need a reconnect are skipped with a message in `list_connections`; scheduled runs also skip a
connection until its operating company's sync interval (setting S9) has elapsed. A spent daily API limit
stops a connection's run cleanly (status `partial`); the next run resumes from the watermarks.

**Params** (manual runs): `mode` = `incremental` | `full`; `connection_id` = one connection, or empty for all.
After each load, account managers get their new notifications (overdue invoices) by email when the SMTP
connection `xero_crm_smtp` exists (`plugins/xero_notifier.py`; off by default).
Schedule: every `XERO_IMPORT_INTERVAL_MINUTES` (default 5). Produces the asset `xero://crm/import`, which
triggers `xero_push`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from xero_hook import XeroHook
from xero_notifier import AccountManagerNotifier

IMPORTED = Asset("xero://crm/import")
INTERVAL = timedelta(minutes=int(os.environ.get("XERO_IMPORT_INTERVAL_MINUTES", "5")))


def _full(params: dict[str, Any]) -> bool:
    return params.get("mode") == "full"


@dag(
    dag_id="xero_import",
    schedule=INTERVAL,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # watermarks assume one import at a time per connection
    doc_md=__doc__,
    tags=["xero", "import"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    params={
        "mode": Param("incremental", enum=["incremental", "full"], description="full re-reads everything"),
        "connection_id": Param(None, type=["null", "integer"], description="one xero_connection.id, or all"),
    },
)
def xero_import() -> None:
    @task
    def list_connections(params: dict[str, Any], dag_run: Any = None) -> list[dict[str, Any]]:
        scheduled = dag_run is not None and str(dag_run.run_type).endswith("scheduled")
        return XeroHook(params.get("connection_id")).list_connections(respect_interval=scheduled)

    @task(map_index_template="{{ task.op_kwargs['connection']['tenant_name'] }}")
    def extract(connection: dict[str, Any], params: dict[str, Any], dag_run: Any = None) -> dict[str, Any]:
        from xero_crm_sync import import_run
        from xero_crm_sync.webhooks.health import deferred_entities

        hook = XeroHook(connection["id"])
        run_id = get_current_context()["run_id"]
        info = hook.info()
        # While webhooks are healthy, scheduled runs read their entities less often (docs/WEBHOOKS.md).
        scheduled = dag_run is not None and str(dag_run.run_type).endswith("scheduled")
        skip = deferred_entities(hook.engine, info) if scheduled and not _full(params) else frozenset()
        return import_run.extract(
            hook.engine, hook.store, info, run_id, full=_full(params), skip=skip, settings=hook.settings
        ).as_dict()

    @task
    def validate(extracted: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync import import_run

        import_run.validate(XeroHook(extracted["connection_id"]).engine, extracted)
        return extracted

    @task(outlets=[IMPORTED], on_success_callback=[AccountManagerNotifier()])
    def load(extracted: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync import import_run

        return import_run.load(XeroHook(extracted["connection_id"]).engine, extracted, full=_full(params))

    connections = list_connections()
    load.expand(extracted=validate.expand(extracted=extract.expand(connection=connections)))


xero_import()
