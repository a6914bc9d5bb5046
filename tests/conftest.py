"""Project-wide test fixtures: isolated CRM databases on SQLite and on the local PostgreSQL.

Every SQL path is tested on both: use the `crm_url` fixture (parametrised sqlite/postgresql) for a fresh, empty
database per test, or `crm_db_session` for one per test module. PostgreSQL databases are created with a random
name on 127.0.0.1:5432 and dropped afterwards, so concurrent test runs never share state.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO_ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported: give every test session its own Airflow home (metadata
# database, logs) before anything imports airflow, so tests never touch var/airflow or ~/airflow and concurrent
# sessions never share state.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="xcs-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(Path(_AIRFLOW_HOME) / "logs")
# A fresh key per session: what tests encrypt is throwaway.
os.environ.setdefault("XERO_CRM_FERNET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
sys.path.insert(0, str(REPO_ROOT / "plugins"))
SHARED_DIR = REPO_ROOT.parent / "shared"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ARTIFACTS = REPO_ROOT / "test-artifacts"


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # any failure means "not reachable"
        return False


PG_AVAILABLE = _pg_available()


def _missing_services(needs: Callable[[str], bool]) -> list[str]:
    """The services that tests carrying a marker `needs(marker)` says are selected need, and that this machine does
    not answer on."""
    missing = []
    if needs("postgres") and not PG_AVAILABLE:
        missing.append(
            f"PostgreSQL at {PG_ADMIN_URL} (point TEST_POSTGRES_URL at a server where the user may CREATE DATABASE)"
        )
    if needs("celery"):
        from tests.scale.airflow_cluster import REDIS_HOST, REDIS_PORT, redis_available

        if not redis_available():
            missing.append(f"Redis at {REDIS_HOST}:{REDIS_PORT} (the Celery test's broker)")
    if needs("browser") and not Path("/usr/bin/chromium").exists():
        missing.append("Debian's Chromium at /usr/bin/chromium (`make browser` installs it)")
    return missing


def _stop_when_missing(missing: list[str]) -> None:
    if missing:
        pytest.exit(
            "make test needs services that are not reachable:\n  - " + "\n  - ".join(missing), returncode=4
        )


def _runs_in_parallel(config: pytest.Config) -> tuple[bool, bool]:
    """(this process is a pytest-xdist controller, this process is one of its workers)."""
    worker = hasattr(config, "workerinput")
    return bool(getattr(config.option, "numprocesses", None)) and not worker, worker


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs `-n 2`) the workers collect, and a worker that stops the session only
    crashes with the reason lost. So the controller checks before any worker starts, by the -m expression: a
    service is needed unless -m deselects every test marked for it (-k and paths are not considered)."""
    controller, _ = _runs_in_parallel(config)
    if controller:
        from _pytest.mark.expression import Expression

        markexpr = config.option.markexpr
        selected = Expression.compile(markexpr) if markexpr else None

        def needs(marker: str) -> bool:
            return selected is None or selected.evaluate(
                lambda name, /, **kwargs: name == marker and not kwargs
            )

        _stop_when_missing(_missing_services(needs))


def pytest_collection_finish(session: pytest.Session) -> None:
    """A missing service stops the session with a message instead of turning its tests into skips that pass
    unnoticed. To run without one on purpose, deselect its tests: `-m "not postgres"` (or celery, browser)."""
    if any(_runs_in_parallel(session.config)):
        return  # the controller checked in pytest_configure
    items = session.items  # what is left after -m / -k deselection
    _stop_when_missing(
        _missing_services(lambda marker: any(item.get_closest_marker(marker) for item in items))
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a test marked `slow` run first (stable otherwise): with two workers taking one file at a time, a
    minute-long file started last leaves one worker idle at the end (the longest first evens out the finish)."""

    def heavy_first(item: pytest.Item) -> int:
        return 0 if item.path in slow_files else 1

    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=heavy_first)


def create_pg_database(prefix: str = "xcs") -> str:
    """Create an empty PostgreSQL database and return its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    from xero_crm_sync import db

    db.dispose_engine(url)
    name = url.rsplit("/", 1)[1]
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _make_db(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    if not PG_AVAILABLE:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} (set TEST_POSTGRES_URL)")
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty CRM database URL, once on SQLite and once on PostgreSQL."""
    yield from _make_db(request.param, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_url_module(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like crm_url, shared by a test module (for slower setups)."""
    yield from _make_db(request.param, tmp_path_factory.mktemp("crm"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
