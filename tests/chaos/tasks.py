"""The DAGs' tasks as plain calls: each runs the same function its Airflow task calls, with the same arguments.

`dags/xero_import.py` (extract -> validate -> load), `dags/xero_push.py` (push_customers -> push_products) and
`dags/xero_order_invoices.py` (process_outbox) are thin: a task builds a hook and calls one function of
`xero_crm_sync`. Here the hook is replaced by a `TaskEnv` (engine, connection store, settings) so a campaign can
run a task in this process or, to kill it for real, in a subprocess (`tests.chaos.step_runner`). Results are
what the tasks return through XCom: JSON-able dicts.

What differs from the DAGs is configuration only: the client's timeouts (`retry`, short so a held call costs a
second, not two minutes) and the limiter's limits (`FAST_LIMITS`, from the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from xero_crm_sync import db
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.settings import Settings
from xero_crm_sync.xero_client import RetryPolicy

# The DAG's tasks, in order, per DAG.
DAG_TASKS: dict[str, tuple[str, ...]] = {
    "xero_import": ("extract", "validate", "load"),
    "xero_push": ("push_customers", "push_products"),
    "xero_order_invoices": ("process_outbox",),
}
# Airflow retries per task (the DAGs' default_args).
DAG_RETRIES = {"xero_import": 2, "xero_push": 2, "xero_order_invoices": 3}
# The client's limits (read by `xero_crm_sync.limiter` from the environment, in this process and in subprocesses).
# The sandbox's limits in a campaign (world.CHAOS_LIMITS): 60 calls in a one-second window, 5 at once.
FAST_LIMITS = {
    "XERO_LIMIT_PER_MINUTE": "60",
    "XERO_LIMIT_WINDOW_SECONDS": "1",
    "XERO_LIMIT_CONCURRENT": "5",
    "XERO_LIMIT_PER_DAY": "10000000",
    "XERO_LIMIT_APP_PER_MINUTE": "10000000",
}


@dataclass(frozen=True)
class TaskPolicy:
    """The client's retry policy per kind of task (None: the code's default, as the DAGs run it)."""

    client: RetryPolicy | None = None  # extract and push
    orders: RetryPolicy | None = None  # process_outbox


@dataclass
class TaskEnv:
    crm_url: str
    settings: Settings
    connection_id: int
    tenant_id: str
    policy: TaskPolicy = field(default_factory=TaskPolicy)

    @property
    def engine(self) -> Engine:
        return db.get_engine(self.crm_url)

    @property
    def store(self) -> ConnectionStore:
        return ConnectionStore(self.engine)

    def as_dict(self) -> dict[str, Any]:
        return {
            "crm_url": self.crm_url,
            "api_url": self.settings.xero_api_url,
            "connection_id": self.connection_id,
            "tenant_id": self.tenant_id,
        }


def runnable(dag_id: str, env: TaskEnv) -> bool:
    """The DAG's first task (`list_connections`): does this run map any task onto the connection? A connection
    that needs a reconnect, or is disconnected, is left out (with a log line saying why)."""
    if dag_id == "xero_import":
        from xero_crm_sync.import_run import connections_to_run

        return bool(connections_to_run(env.store, env.connection_id))
    if dag_id == "xero_push":
        from xero_crm_sync.push.run import push_connections

        return bool(push_connections(env.store, env.connection_id))
    return True  # process_outbox finds its companies' active primary connections itself


def run_task(task: str, env: TaskEnv, run_id: str, xcom: dict[str, Any]) -> dict[str, Any]:
    """Run one task as its DAG does; `xcom` holds the results of the run's earlier tasks by task name.

    The limiter's limits (`FAST_LIMITS`) hold while the task runs and are put back after it, so a campaign run
    inside the test session leaves the limits of the tests that follow alone."""
    saved = {key: os.environ.get(key) for key in FAST_LIMITS}
    os.environ.update(FAST_LIMITS)
    try:
        return _run_task(task, env, run_id, xcom)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_task(task: str, env: TaskEnv, run_id: str, xcom: dict[str, Any]) -> dict[str, Any]:
    engine, store, policy = env.engine, env.store, env.policy
    if task == "extract":
        from xero_crm_sync import import_run

        info = store.get(env.connection_id)
        return import_run.extract(
            engine, store, info, run_id, full=False, settings=env.settings, retry=policy.client
        ).as_dict()
    if task == "validate":
        from xero_crm_sync import import_run

        import_run.validate(engine, xcom["extract"])
        return xcom["extract"]
    if task == "load":
        from xero_crm_sync import import_run

        return import_run.load(engine, xcom["validate"], full=False)
    if task == "push_customers":
        from xero_crm_sync.push.run import run_step

        return run_step(
            "customers", engine, store, env.settings, env.connection_id, run_id, retry=policy.client
        )
    if task == "push_products":
        from xero_crm_sync.push.run import run_step

        customers = xcom["push_customers"]
        return run_step(
            "products",
            engine,
            store,
            env.settings,
            customers["connection_id"],
            run_id,
            last=True,
            stopped_before=customers.get("stopped"),
            retry=policy.client,
        )
    if task == "process_outbox":
        from xero_crm_sync.push.orders import ORDER_RETRY, InvoiceOptions, process_outbox

        return process_outbox(
            engine, store, env.settings, run_id, options=InvoiceOptions(), retry=policy.orders or ORDER_RETRY
        ).as_dict()
    raise ValueError(f"unknown task {task!r}")
