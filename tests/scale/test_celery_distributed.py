"""O4: the import runs distributed. A real Airflow with the CeleryExecutor on this machine (scheduler, dag-processor,
api-server, triggerer and a Celery worker as separate processes; metadata on PostgreSQL; Redis as the broker)
runs xero_import for two organisations. Its task instances must have run on the Celery worker, and the CRM must
end exactly as a local run (dag.test) of the same sandbox leaves it, table by table.

O3 across machines: on the same cluster (started once for the module), the worker runs the order outbox against
one organisation while a plain Python process beside it imports the same organisation, with the sandbox enforcing
Xero's limits over a two-second "minute" and the pipeline's shared limiter (in the CRM's PostgreSQL) set to the
same. The sandbox's journal shows both calling inside the same windows, no call refused (429) and never more
calls in a window than the limit.

The tests run in file order: the second one adds orders and invoices that the first one's comparison with a
local import would otherwise see. Deselect with `-m "not celery"`; it needs the local PostgreSQL and Redis
(skipped when either is missing).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, text

from tests.conftest import PG_AVAILABLE, create_pg_database, drop_pg_database
from tests.e2e.conftest import NO_LIMITS, load_dag
from tests.push.conftest import add_customer, add_order, add_product, company_id
from tests.scale import crm_state
from tests.scale.airflow_cluster import AirflowCluster, redis_available
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.push.orders import confirm_order
from xero_crm_sync.settings import get_settings
from xero_sandbox.limits import LimitConfig
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

pytestmark = [
    pytest.mark.celery,
    pytest.mark.postgres,
    pytest.mark.airflow,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not PG_AVAILABLE, reason="needs PostgreSQL on 127.0.0.1:5432"),
    pytest.mark.skipif(not redis_available(), reason="needs Redis on 127.0.0.1:6379"),
]

COMPANIES = ("North Trading Ltd", "South Trading Ltd")  # one organisation each, both primary
RUN_ID = "celery-distributed-test"
RUN_TIMEOUT = 420  # seconds for the whole DAG run on 2 shared cores

# Xero's limits over a short "minute", so that pacing shows within seconds. The sandbox enforces them (second
# test) and every task process of the worker, like the process beside it, paces itself by the same numbers.
WINDOW = 2.0
PER_WINDOW = 4
CONCURRENT = 5
LIMITED = LimitConfig(
    minute=PER_WINDOW, window_seconds=WINDOW, concurrent=CONCURRENT, day=100_000, app_minute=100_000
)
CLIENT_LIMITS = {
    "XERO_LIMIT_PER_MINUTE": str(PER_WINDOW),
    "XERO_LIMIT_WINDOW_SECONDS": str(WINDOW),
    "XERO_LIMIT_CONCURRENT": str(CONCURRENT),
}
ORDERS = 12  # one invoice call each: with the import beside it, several windows' worth of calls
OUTBOX_RUN_ID = "celery-shared-limits-test"
API = "/api.xro/2.0/"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=11, contacts=25, tenants=2, limits=NO_LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def env_guard(sandbox: SandboxServer) -> Iterator[pytest.MonkeyPatch]:
    """The sandbox's URLs in the environment (connect and the in-process Airflow run read them), restored after."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in sandbox.env().items():
            patch.setenv(key, value)
        yield patch


def connected_crm(sandbox: SandboxServer) -> str:
    """A fresh PostgreSQL CRM with two operating companies, each with one sandbox organisation as its primary."""
    url = create_pg_database("xcs_celery_crm")
    migrate.migrate(url)
    with db.begin(url) as conn:
        for company in COMPANIES:
            migrate.seed_demo(conn, company)
    store = ConnectionStore(db.get_engine(url))
    for company, tenant in zip(COMPANIES, sandbox.admin.tenants(), strict=True):
        connect(
            store,
            get_settings(),
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=company,
            role="primary",
            tenant=tenant["tenantId"],
            headless=True,
            announce=lambda _m: None,
        )
    return url


# Module scope: one cluster serves both tests (starting it costs half a minute). The reference run is requested
# first, so it runs before the cluster's processes start competing for the two cores.
@pytest.fixture(scope="module")
def local_crm(sandbox: SandboxServer, airflow_db: str, env_guard: pytest.MonkeyPatch) -> Iterator[str]:
    """The reference: xero_import run locally (dag.test) into its own CRM database."""
    url = connected_crm(sandbox)
    try:
        env_guard.setenv("CRM_DATABASE_URL", url)
        dag_run = load_dag("xero_import").test(run_conf={"mode": "full"})
        assert str(dag_run.state) in ("success", "DagRunState.SUCCESS"), f"local run ended {dag_run.state}"
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def celery_crm(sandbox: SandboxServer, env_guard: pytest.MonkeyPatch) -> Iterator[str]:
    url = connected_crm(sandbox)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, celery_crm: str, sandbox: SandboxServer
) -> Iterator[AirflowCluster]:
    metadata = create_pg_database("xcs_celery_meta")
    cluster = AirflowCluster(
        home=tmp_path_factory.mktemp("celery") / "airflow",
        metadata_url=metadata.replace("+psycopg", "+psycopg2"),
        extra_env={"CRM_DATABASE_URL": celery_crm, **sandbox.env(), **CLIENT_LIMITS},
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        drop_pg_database(metadata)


def dag_ready(cluster: AirflowCluster, dag_id: str) -> None:
    cluster.wait_for(
        "the api-server", lambda: httpx.get(f"{cluster.api}/api/v2/monitor/health").is_success, 180
    )
    cluster.wait_for(
        f"the dag-processor to parse {dag_id}",
        lambda: cluster.metadata("SELECT 1 FROM serialized_dag WHERE dag_id = :d", d=dag_id),
        180,
    )


def trigger(cluster: AirflowCluster, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
    dag_ready(cluster, dag_id)
    with httpx.Client(base_url=f"{cluster.api}/api/v2", timeout=60) as api:
        api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        api.post(
            f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf}
        ).raise_for_status()


def wait_for_run(cluster: AirflowCluster, dag_id: str, run_id: str) -> dict[str, Any]:
    return cluster.wait_for(
        f"the {dag_id} run to finish",
        lambda: next(
            (
                r
                for r in cluster.metadata(
                    "SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id
                )
                if r["state"] in ("success", "failed")
            ),
            None,
        ),
        RUN_TIMEOUT,
    )


def trigger_and_wait(cluster: AirflowCluster) -> dict[str, Any]:
    trigger(cluster, "xero_import", RUN_ID, {"mode": "full"})
    return wait_for_run(cluster, "xero_import", RUN_ID)


def test_xero_import_runs_on_celery_workers_and_ends_like_a_local_run(local_crm, celery_crm, cluster):
    run = trigger_and_wait(cluster)
    tasks = cluster.metadata(
        "SELECT task_id, map_index, state, hostname, queue, external_executor_id FROM task_instance "
        "WHERE dag_id = 'xero_import' AND run_id = :r ORDER BY task_id, map_index",
        r=RUN_ID,
    )
    assert run["state"] == "success", f"{[dict(t) for t in tasks]}\n{cluster.logs()}"

    # Two organisations: every per-organisation step is mapped twice.
    mapped = {t["task_id"]: 0 for t in tasks}
    for t in tasks:
        mapped[t["task_id"]] += 1
    assert mapped == {"list_connections": 1, "extract": 2, "validate": 2, "load": 2}, mapped
    # Every task ran on the Celery worker: it reported the worker's name, came off our queue, and has a Celery id.
    for t in tasks:
        where = f"{t['task_id']}[{t['map_index']}]"
        assert t["state"] == "success", where
        assert t["hostname"] == cluster.worker_name, f"{where} ran on {t['hostname']}"
        assert t["queue"] == cluster.queue, where
        assert t["external_executor_id"], f"{where} has no Celery task id"
    assert "celery" in (cluster.home / "celery-worker.log").read_text().lower()

    local = crm_state.snapshot(db.get_engine(local_crm))
    distributed = crm_state.snapshot(db.get_engine(celery_crm))
    assert local["sales_ledger"] and local["sales_invoice"] and local["payment"], (
        "the local run imported nothing"
    )
    assert crm_state.differences(local, distributed) == []


def _import_beside_the_worker(
    url: str, connection_id: int, env: dict[str, str], ready: Any, go: Any, out: mp.Queue
) -> None:
    """A plain Python program, not Airflow: the import's read of one organisation, started on `go`."""
    os.environ.update(env)
    try:
        # Everything slow to start is done before `ready`: the overlap must not be spent importing modules.
        from xero_crm_sync import import_run, validation

        validation._context()  # Great Expectations' start-up: seconds, once per process
        engine = db.get_engine(url)
        store = ConnectionStore(engine)
        info, settings = store.get(connection_id), get_settings()
        ready.set()
        if not go.wait(timeout=RUN_TIMEOUT):
            out.put(("never told to start", 0, 0))
            return
        result = import_run.extract(engine, store, info, "beside-the-worker", full=True, settings=settings)
        out.put(("ok", result.calls, result.rate_limited))
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put((f"{type(exc).__name__}: {exc}", 0, 0))


def _read_by_the_import(entry: dict[str, Any]) -> bool:
    """The import reads whole collections (GET /Contacts?page=..); the outbox's reads name records or filter them
    (GET /Contacts/{id}, GET /Invoices?where=..) and its writes are PUT/POST."""
    return (
        entry["method"] == "GET" and "/" not in entry["path"][len(API) :] and "where=" not in entry["query"]
    )


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["at"]).timestamp()


def test_a_celery_worker_and_a_process_beside_it_keep_xero_limits_together(
    celery_crm: str, cluster: AirflowCluster, sandbox: SandboxServer
) -> None:
    engine = db.get_engine(celery_crm)
    customer = add_customer(engine, "Celery Limits Ltd")
    widget = add_product(engine, "CELERY-LIMITS-1", name="Limits widget", sell_price=5)
    orders = [
        add_order(engine, customer, [dict(product_id=widget, quantity=1, unit_price=5)])
        for _ in range(ORDERS)
    ]
    with engine.begin() as conn:
        for order in orders:
            confirm_order(conn, order)
    store = ConnectionStore(engine)
    # The orders' company (the first) and its primary organisation: the one both processes call.
    info = next(
        c for c in store.list() if c.operating_company_id == company_id(engine) and c.role == "primary"
    )
    tenant = info.tenant_id

    sandbox.admin.set_limits(**LIMITED.to_dict())
    # A program of its own: nothing of this process (pooled connections, the sandbox's thread) is inherited.
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    beside = ctx.Process(
        target=_import_beside_the_worker,
        args=(
            celery_crm,
            info.id,
            {**sandbox.env(), "CRM_DATABASE_URL": celery_crm, **CLIENT_LIMITS},
            ready,
            go,
            out,
        ),
    )
    try:
        sandbox.admin.clear_journal()
        sandbox.admin.reset_counters()
        beside.start()
        cluster.wait_for(
            "the process beside to be ready", lambda: ready.is_set() or not beside.is_alive(), 120
        )
        trigger(cluster, "xero_order_invoices", OUTBOX_RUN_ID, {})
        # The process beside starts the moment the worker's first call reaches "Xero": the worker has more than
        # two windows' worth of calls still to make, so the two are calling the organisation at the same time.
        cluster.wait_for(
            "the worker's first call to Xero",
            lambda: sandbox.admin.journal(tenant_id=tenant, path_contains=API),
            RUN_TIMEOUT,
        )
        go.set()
        run = wait_for_run(cluster, "xero_order_invoices", OUTBOX_RUN_ID)
        outcome, beside_calls, beside_refused = out.get(timeout=RUN_TIMEOUT)
    finally:
        go.set()
        beside.join(timeout=30)
        if beside.is_alive():
            beside.kill()
        sandbox.admin.set_limits(**NO_LIMITS.to_dict())

    # The outbox ran on the Celery worker (the asset trigger may have started a run of its own too: all count).
    tasks = cluster.metadata(
        "SELECT run_id, task_id, state, hostname FROM task_instance WHERE dag_id = 'xero_order_invoices'"
    )
    assert run["state"] == "success", f"{[dict(t) for t in tasks]}\n{cluster.logs()}"
    for t in tasks:
        if t["state"] in ("success", "failed"):
            assert (t["state"], t["hostname"]) == ("success", cluster.worker_name), dict(t)
    assert outcome == "ok", outcome
    with engine.connect() as conn:
        invoiced = conn.execute(
            text(
                "SELECT COUNT(*) FROM sales_order WHERE id IN :ids AND xero_invoice_id IS NOT NULL"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": orders},
        ).scalar_one()
    assert invoiced == ORDERS

    # What the sandbox received for the organisation: no refusal, and never more in a window than the limit.
    calls = sorted(
        (e for e in sandbox.admin.journal(tenant_id=tenant) if e["path"].startswith(API)),
        key=lambda e: e["seq"],
    )
    refused = [e for e in calls if e["status"] == 429]
    assert refused == [], f"Xero would have refused {len(refused)} calls: {refused[:3]}"
    assert sandbox.admin.counters(tenant)[tenant]["totals"]["rate_limited"] == 0
    assert beside_refused == 0
    # The journal stamps a call when it answers; our limiter counts a call from its answer too, so answers
    # bunched into one window would mean more calls in it than Xero allows.
    times = sorted(_at(e) for e in calls)
    busiest = max(sum(1 for t in times[i:] if t < start + WINDOW) for i, start in enumerate(times))
    assert busiest <= PER_WINDOW, f"{busiest} calls answered within {WINDOW} s (limit {PER_WINDOW})"

    # Whose calls: the import's reads were all the process beside's (it counted them itself), the rest the worker's.
    imported = sorted(_at(e) for e in calls if _read_by_the_import(e))
    outbox = sorted(_at(e) for e in calls if not _read_by_the_import(e))
    assert len(imported) == beside_calls > 0
    assert sum(e["method"] == "PUT" and e["path"] == API + "Invoices" for e in calls) == ORDERS
    # Both called inside one stretch of time, and together made more calls in it than one window admits: the
    # limits were kept by the two processes sharing the windows, not by one waiting for the other to finish.
    start, end = max(imported[0], outbox[0]), min(imported[-1], outbox[-1])
    assert start < end, "the worker's calls and the process beside's did not overlap"
    # The limiter does not promise either process a share of each window (here the import beside once got one
    # call in while the worker took the other slots: a flake of `make test`), only that together they keep it.
    in_overlap = [t for t in times if start <= t <= end]
    assert len(in_overlap) > PER_WINDOW, f"only {len(in_overlap)} calls while both were calling"
    assert len(calls) > 2 * PER_WINDOW  # pacing was needed: more calls than two windows admit
