"""The DAGs' tasks as plain calls: each runs the same function its Airflow task calls, with the same arguments.

`dags/xero_import.py` (extract -> validate -> load), `dags/xero_push.py` (push_customers -> push_products) and
`dags/xero_order_invoices.py` (process_outbox) are thin: a task builds a hook and calls one function of
`xero_crm_sync`. Here the hook is replaced by a `TaskEnv` (engine, connection store, settings) so a campaign can
run a task in this process or, to kill it for real, in a subprocess (`tests.chaos.step_runner`). Results are
what the tasks return through XCom: JSON-able dicts.

The campaigns take each DAG's tasks, their order and their retries from the real DAG definitions (`dag_plan`,
parsed by Airflow's DagBag), and check that each task still calls the function run here: a change to a DAG
changes what the campaigns run, or stops them with a message saying what to update.

What differs from the DAGs is configuration only: the client's timeouts (`retry`, short so a held call costs a
second, not two minutes) and the limiter's limits (`FAST_LIMITS`, from the environment).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from sqlalchemy import Engine

from xero_crm_sync import db
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.settings import Settings
from xero_crm_sync.xero_client import RetryPolicy

# The DAGs a campaign runs, and how it runs each of their tasks here: the function of `xero_crm_sync` that the
# Airflow task calls (`run_task` below calls the same one). `list_connections` is the DAG's fan-out over
# connections; a campaign has one connection and asks `runnable` instead.
CAMPAIGN_DAGS = ("xero_import", "xero_push", "xero_order_invoices")
TASK_CALLS = {
    "extract": "extract",
    "validate": "validate",
    "load": "load",
    "push_customers": "run_step",
    "push_products": "run_step",
    "process_outbox": "process_outbox",
}
FAN_OUT = "list_connections"


@dataclass(frozen=True)
class DagPlan:
    """What a campaign takes from a real DAG definition: its tasks in dependency order, and each one's retries."""

    dag_id: str
    tasks: tuple[str, ...]
    retries: dict[str, int]


def plan_from_dag(dag: Any) -> DagPlan:
    """A DAG's plan, checked against what the campaign can run: a task it does not know, or one whose code no
    longer calls the function the campaign calls for it, fails here instead of being silently left out."""
    tasks = tuple(t.task_id for t in dag.topological_sort() if t.task_id != FAN_OUT)
    for task_id in tasks:
        if task_id not in TASK_CALLS:
            raise LookupError(f"{dag.dag_id}.{task_id}: the chaos campaigns do not know how to run this task")
        called = dag.get_task(task_id).python_callable.__code__.co_names
        if TASK_CALLS[task_id] not in called:
            raise LookupError(
                f"{dag.dag_id}.{task_id} no longer calls {TASK_CALLS[task_id]}(): update tests/chaos/tasks.py"
            )
    return DagPlan(dag.dag_id, tasks, {t: dag.get_task(t).retries for t in tasks})


@functools.cache
def dag_plan(dag_id: str) -> DagPlan:
    """The plan of `dags/<dag_id>.py`, parsed as Airflow's DAG processor parses it (once per process; the
    parsed DAG is read from the bag, which needs no Airflow metadata database)."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO_ROOT

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"))
    if bag.import_errors or dag_id not in bag.dags:
        raise LookupError(f"dags/{dag_id}.py does not define {dag_id}: {bag.import_errors}")
    return plan_from_dag(bag.dags[dag_id])


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
    with mock.patch.dict(os.environ, FAST_LIMITS):
        return _run_task(task, env, run_id, xcom)


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
