"""Operating the integration as a new user would: the commands the README shows, on a fresh CRM database
(SQLite and PostgreSQL), against the sandbox on a loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import _make_db
from tests.e2e.conftest import NO_LIMITS, airflow_db  # noqa: F401  (the session's Airflow metadata database)
from xero_crm_sync import cli, db
from xero_sandbox.server import SandboxServer
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

COMPANY = "Operating Test Ltd"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Xero as it is before each test (tests write to it)."""
    with SandboxServer(seed=7, contacts=40, tenants=1, limits=NO_LIMITS) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_crm(request: pytest.FixtureRequest, tmp_path, sandbox, monkeypatch) -> Iterator[str]:
    """A CRM database that exists only as a URL, with the environment a user sets up (README: Configuration)."""
    for url in _make_db(request.param, tmp_path):
        monkeypatch.setenv("CRM_DATABASE_URL", url)
        for name, value in sandbox.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("XERO_CLIENT_SECRET", GRANULAR_CLIENT_SECRET)
        yield url
        db.dispose_engine(url)


def run(*argv: str) -> int:
    """`python -m xero_crm_sync <argv>` in this process (so coverage of the parser and the error handling is real)."""
    return cli.main(list(argv))


def connect_new_company(company: str = COMPANY) -> None:
    assert run("migrate") == 0
    code = run(
        "connect", "--operating-company", company, "--role", "primary", "--client-id", GRANULAR_CLIENT_ID,
        "--headless", "--create-operating-company",
    )  # fmt: skip
    assert code == 0
    assert os.environ["CRM_DATABASE_URL"]
