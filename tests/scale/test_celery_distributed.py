"""O4: the import runs distributed. A real Airflow with the CeleryExecutor on this machine (scheduler, dag-processor,
api-server, triggerer and a Celery worker as separate processes; metadata on PostgreSQL; Redis as the broker)
runs xero_import for two organisations. Its task instances must have run on the Celery worker, and the CRM must
end exactly as a local run (dag.test) of the same sandbox leaves it, table by table.

Deselect with `-m "not celery"`; it needs the local PostgreSQL and Redis (skipped when either is missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_AVAILABLE, create_pg_database, drop_pg_database
from tests.e2e.conftest import NO_LIMITS, load_dag
from tests.scale import crm_state
from tests.scale.airflow_cluster import AirflowCluster, redis_available
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.settings import get_settings
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


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed=11, contacts=25, tenants=2, limits=NO_LIMITS) as server:
        yield server


@pytest.fixture
def env_guard() -> Iterator[None]:
    """Restore the environment variables a test sets for the in-process Airflow run."""
    saved = {
        k: os.environ.get(k)
        for k in ("CRM_DATABASE_URL", "XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL")
    }
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def connected_crm(sandbox: SandboxServer) -> str:
    """A fresh PostgreSQL CRM with two operating companies, each with one sandbox organisation as its primary."""
    url = create_pg_database("xcs_celery_crm")
    migrate.migrate(url)
    with db.begin(url) as conn:
        for company in COMPANIES:
            migrate.seed_demo(conn, company)
    os.environ.update(sandbox.env())
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


@pytest.fixture
def local_crm(sandbox: SandboxServer, airflow_db: str, env_guard: None) -> Iterator[str]:
    """The reference: xero_import run locally (dag.test) into its own CRM database."""
    url = connected_crm(sandbox)
    try:
        os.environ["CRM_DATABASE_URL"] = url
        dag_run = load_dag("xero_import").test(run_conf={"mode": "full"})
        assert str(dag_run.state) in ("success", "DagRunState.SUCCESS"), f"local run ended {dag_run.state}"
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def celery_crm(sandbox: SandboxServer, env_guard: None) -> Iterator[str]:
    url = connected_crm(sandbox)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def cluster(tmp_path: Path, celery_crm: str, sandbox: SandboxServer) -> Iterator[AirflowCluster]:
    metadata = create_pg_database("xcs_celery_meta")
    cluster = AirflowCluster(
        home=tmp_path / "airflow",
        metadata_url=metadata.replace("+psycopg", "+psycopg2"),
        extra_env={"CRM_DATABASE_URL": celery_crm, **sandbox.env()},
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        drop_pg_database(metadata)


def trigger_and_wait(cluster: AirflowCluster) -> dict[str, Any]:
    cluster.wait_for(
        "the api-server", lambda: httpx.get(f"{cluster.api}/api/v2/monitor/health").is_success, 180
    )
    cluster.wait_for(
        "the dag-processor to parse xero_import",
        lambda: cluster.metadata("SELECT 1 FROM serialized_dag WHERE dag_id = 'xero_import'"),
        180,
    )
    with httpx.Client(base_url=f"{cluster.api}/api/v2", timeout=60) as api:
        api.patch("/dags/xero_import", json={"is_paused": False}).raise_for_status()
        api.post(
            "/dags/xero_import/dagRuns",
            json={"dag_run_id": RUN_ID, "logical_date": None, "conf": {"mode": "full"}},
        ).raise_for_status()
    return cluster.wait_for(
        "the xero_import run to finish",
        lambda: next(
            (
                r
                for r in cluster.metadata(
                    "SELECT state FROM dag_run WHERE dag_id = 'xero_import' AND run_id = :r", r=RUN_ID
                )
                if r["state"] in ("success", "failed")
            ),
            None,
        ),
        RUN_TIMEOUT,
    )


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
