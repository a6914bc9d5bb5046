"""
### xero_connection_health: keep every Xero connection alive and say when one is not

Every 10 minutes, for each Xero connection that is not disconnected (one mapped task per organisation):

1. **refresh ahead of expiry**: a token with less than 15 minutes left is refreshed now, under the
   connection's lock (`include/xero_crm_sync/health.py`), so refresh tokens never sit unused towards Xero's
   60-day expiry and imports and pushes start with a fresh token;
2. **check `/connections`**: the organisation must still be listed for the app;
3. **record** the outcome in `connection_health_check` and on the connection (the status page shows both).

Beside the checks, **prune_staging** forgets what import runs older than the retention window staged
(`$XERO_STAGING_KEEP_DAYS`, 14 days by default; `include/xero_crm_sync/retention.py`): staged rows and their
lines, never the staged rows the mirror points at (the raw payload of every current record stays), and old
quarantined records once resolved or quarantined again by a later run. Oldest run first, at most 200 runs and
about two minutes a run of this DAG (a backlog is worked off over several runs).

Outcomes: `ok`; `refresh_failed` / `unreachable` (passing: the task retries; the stored refresh token stays
valid for Xero's 30-minute grace period); `reconnect_required` (Xero refused the grant: revoked, authorising
user removed, or unused for 60 days) and `tenant_missing` (disconnected in Xero): the connection is flagged,
the task **fails once** so the run shows it, and from then on every DAG skips the connection with a message
until someone runs `python -m xero_crm_sync connect` again. Connections that already need a reconnect are
shown as skipped tasks.

**Params** (manual runs): `connection_id` = one connection, or empty for all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from xero_hook import XeroHook


@dag(
    dag_id="xero_connection_health",
    schedule=timedelta(minutes=10),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["xero", "operations"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "connection_id": Param(None, type=["null", "integer"], description="one xero_connection.id, or all"),
    },
)
def xero_connection_health() -> None:
    @task
    def list_connections(params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every connection that is not disconnected (those needing a reconnect show up as skipped); first,
        forget health checks older than a few weeks."""
        from xero_crm_sync import health
        from xero_crm_sync.connections import utcnow

        hook = XeroHook(params.get("connection_id"))
        hook.store.prune_health_checks(utcnow() - health.KEEP_HISTORY)
        return [info.as_dict() for info in hook.store.list(connection_id=params.get("connection_id"))]

    @task(map_index_template="{{ task.op_kwargs['connection']['tenant_name'] }}")
    def check(connection: dict[str, Any]) -> dict[str, Any]:
        from xero_crm_sync import health

        hook = XeroHook(connection["id"])
        result = health.check_connection(
            hook.store, hook.info(), hook.settings, run_id=get_current_context()["run_id"]
        )
        if result.outcome == "skipped":
            raise AirflowSkipException(result.detail)
        if result.newly_broken:
            # Once, when it breaks: later runs skip the connection instead of failing again.
            raise AirflowFailException(f"{connection['tenant_name']} ({connection['role']}): {result.detail}")
        if result.transient:
            raise RuntimeError(f"{connection['tenant_name']}: {result.detail}")  # retried
        return result.as_dict()

    @task
    def prune_staging() -> dict[str, Any]:
        """Staging retention (see above): a short transaction per entity of each old import run."""
        from xero_crm_sync import retention, staging

        hook = XeroHook()
        older_than = staging.now_utc_naive() - retention.keep_staged()
        # At most ~2 minutes a run: the next health run (10 minutes on) never waits for a backlog.
        return retention.prune_staging(hook.engine, older_than=older_than, max_seconds=120).as_dict()

    check.expand(connection=list_connections())
    prune_staging()


xero_connection_health()
