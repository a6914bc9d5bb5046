"""Fixtures for connection tests: a real sandbox (thread mode, so tests can read what it issued), a migrated CRM
database on SQLite and PostgreSQL, and organisations connected through the real OAuth2 flow (headless)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import (
    ARTIFACTS,
    PG_ADMIN_URL,
    PG_AVAILABLE,
    create_pg_database,
    drop_pg_database,
)
from tests.connections import secret_scan
from tests.e2e.conftest import airflow_db  # noqa: F401 (the session's Airflow metadata database, a fixture)
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.settings import Settings, get_settings
from xero_sandbox.limits import LimitConfig
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

COMPANY = "ACME Trading"
NO_LIMITS = LimitConfig(minute=1_000_000, day=10_000_000, concurrent=100, app_minute=10_000_000)
CREDENTIALS = AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET)


@dataclass
class Connected:
    """A CRM database with ACME's organisations connected to a running sandbox."""

    url: str
    engine: Engine
    sandbox: SandboxServer
    store: ConnectionStore
    settings: Settings
    ids: dict[str, int] = field(default_factory=dict)  # role -> xero_connection.id
    tenants: dict[str, str] = field(default_factory=dict)  # role -> tenant id

    def connect(self, role: str, tenant_index: int, company: str = COMPANY) -> int:
        tenant = list(self.sandbox.state.tenants.values())[tenant_index]
        result = connect(
            self.store,
            self.settings,
            CREDENTIALS,
            operating_company=company,
            role=role,
            tenant=tenant.tenant_id,
            headless=True,
            create_operating_company=True,
            announce=lambda _m: None,
            timeout=30,
        )
        if company == COMPANY:
            self.ids[role], self.tenants[role] = result.connection_id, tenant.tenant_id
        return result.connection_id

    def row(self, connection_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(text("SELECT * FROM xero_connection WHERE id = :i"), {"i": connection_id})
                .mappings()
                .one()
            )

    def stored_token(self, connection_id: int) -> dict[str, Any]:
        with self.store.locked_token(connection_id) as locked:
            return locked.token

    def expire_locally(self, connection_id: int) -> None:
        """Make our stored access token look expired by our clock (Xero would still accept it)."""
        with self.store.locked_token(connection_id) as locked:
            token = locked.token
            token["expires_at"] = time.time() - 5
            locked.save(token)

    def refresh_calls(self, **filters: Any) -> list[dict[str, Any]]:
        """What the sandbox's token endpoint received for refreshes (journal, oldest first)."""
        entries = self.sandbox.admin.journal(method="POST", path_contains="/connect/token", **filters)
        return [e for e in entries if (e.get("body") or {}).get("grant_type") == "refresh_token"]

    def issued_secrets(self) -> set[str]:
        """Every token the sandbox ever issued, and the app's client secret: none may reach a log or file."""
        identity = self.sandbox.state.identity
        return {*identity.access_tokens, *identity.refresh_tokens, GRANULAR_CLIENT_SECRET}


def make_connected(url: str, sandbox: SandboxServer, roles: tuple[str, ...]) -> Connected:
    migrate.migrate(url)
    os.environ.update(sandbox.env())
    engine = db.get_engine(url)
    env = Connected(url, engine, sandbox, ConnectionStore(engine), get_settings())
    for index, role in enumerate(roles):
        env.connect(role, index)
    return env


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    started: list[SandboxServer] = []

    def start(**kwargs: Any) -> SandboxServer:
        kwargs.setdefault("limits", NO_LIMITS)
        kwargs.setdefault("contacts", 5)
        server = SandboxServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database to copy (CREATE DATABASE ... TEMPLATE is a file copy: much faster than
    running the migrations for every test)."""
    if not PG_AVAILABLE:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} (set TEST_POSTGRES_URL)")
    url = create_pg_database("xcs_tpl")
    migrate.migrate(url)
    db.dispose_engine(url)  # a template must have no open connections
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh CRM database, migrated: SQLite, or a copy of the PostgreSQL template."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.db'}"
        migrate.migrate(url)
        yield url
        db.dispose_engine(url)
        return
    template = request.getfixturevalue("pg_template")
    name = f"xcs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.rsplit("/", 1)[1]}"'))
    admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    drop_pg_database(url)


@pytest.fixture
def one_org(crm_db: str, make_sandbox: Any) -> Connected:
    """ACME with a primary organisation; the sandbox user has no other organisation."""
    return make_connected(crm_db, make_sandbox(tenants=1), ("primary",))


@pytest.fixture
def two_orgs(crm_db: str, make_sandbox: Any) -> Connected:
    """ACME with a primary and a secondary organisation, both authorised by the same Xero user."""
    return make_connected(crm_db, make_sandbox(tenants=2), ("primary", "secondary"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every test run: no Xero access token, client secret or Fernet key in any file the run wrote
    (the session's Airflow home with its task logs, and test-artifacts/). Findings fail the run."""
    roots = [Path(os.environ["AIRFLOW_HOME"]), ARTIFACTS]
    findings = secret_scan.scan(roots, secret_scan.static_secrets())
    if findings:
        report = "\n".join(str(f) for f in findings)
        print(f"\nSECRET SCAN: {len(findings)} finding(s)\n{report}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
