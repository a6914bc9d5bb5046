"""End to end: real Airflow runs (`dag.test()`), the sandbox as a real HTTP server, a real CRM database.

- `airflow_db`: the session's Airflow metadata database, migrated once (`airflow db migrate`).
- `sandbox`: a sandbox on a loopback port, per test module (tests that change Xero get their own org state).
- `pipeline`: a migrated CRM database (SQLite and PostgreSQL) with a demo operating company whose primary (and
  secondary) organisation is connected through the real OAuth2 flow; `pipeline.run_import()` runs xero_import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import REPO_ROOT, _make_db
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.settings import get_settings
from xero_sandbox.limits import LimitConfig
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

COMPANY = "Test Trading Ltd"
NO_LIMITS = LimitConfig(minute=1_000_000, day=10_000_000, concurrent=100, app_minute=10_000_000)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    home = os.environ["AIRFLOW_HOME"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def load_dag(dag_id: str) -> Any:
    """Parse dags/ the way the DAG processor does (Airflow's DagBag) and return the DAG."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"no DAG {dag_id} in dags/{dag_id}.py"
    return dag


@dataclass
class Pipeline:
    url: str
    engine: Engine
    sandbox: SandboxServer
    store: ConnectionStore
    connections: dict[str, int] = field(default_factory=dict)  # role -> xero_connection.id
    tenants: dict[str, str] = field(default_factory=dict)  # role -> tenant id

    def run_import(self, **conf: Any) -> Any:
        """Run xero_import through Airflow (dag.test) and return the DagRun; asserts it succeeded."""
        os.environ["CRM_DATABASE_URL"] = self.url
        os.environ.update(self.sandbox.env())
        dag = load_dag("xero_import")
        dag_run = dag.test(run_conf=conf or None)
        assert str(dag_run.state) in ("success", "DagRunState.SUCCESS"), f"xero_import ended {dag_run.state}"
        return dag_run

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).mappings().all()

    def org(self, role: str = "primary") -> Any:
        """The sandbox's live organisation store (thread mode), to change Xero as the accounts team would."""
        return self.sandbox.state.tenants[self.tenants[role]].store


def build_pipeline(url: str, sandbox: SandboxServer, roles: tuple[str, ...] = ("primary",)) -> Pipeline:
    migrate.migrate(url)
    with db.begin(url) as conn:
        migrate.seed_demo(conn, COMPANY)
    os.environ.update(sandbox.env())
    store = ConnectionStore(db.get_engine(url))
    pipeline = Pipeline(url=url, engine=db.get_engine(url), sandbox=sandbox, store=store)
    tenants = list(sandbox.state.tenants.values())
    for role, tenant in zip(roles, tenants, strict=False):
        result = connect(
            store,
            get_settings(),
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=COMPANY,
            role=role,
            tenant=tenant.tenant_id,
            headless=True,
            announce=lambda _m: None,
        )
        pipeline.connections[role] = result.connection_id
        pipeline.tenants[role] = tenant.tenant_id
    return pipeline


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    started: list[SandboxServer] = []

    def start(**kwargs: Any) -> SandboxServer:
        kwargs.setdefault("limits", NO_LIMITS)
        server = SandboxServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _make_db(request.param, tmp_path)


class AccountsTeam:
    """The accounts team working in Xero: its own login (the sandbox's demo app), plain HTTP calls."""

    def __init__(self, sandbox: SandboxServer, tenant_id: str) -> None:
        from xero_sandbox.oauth_client import authorize_headless

        token = authorize_headless(sandbox.url)
        self._http = httpx.Client(
            base_url=f"{sandbox.url}/api.xro/2.0",
            headers={"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": tenant_id},
            timeout=60,
        )

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self._http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def write(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._http.request(method, path, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self._http.close()


def snapshot(engine: Engine, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    """Every row of the given tables, minus bookkeeping timestamps, for before/after comparisons."""
    out: dict[str, list[tuple]] = {}
    with engine.connect() as conn:
        for table in tables:
            rows = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
            out[table] = sorted(
                tuple(sorted((k, str(v)) for k, v in row.items() if k not in ("updated_at",))) for row in rows
            )
    return out
