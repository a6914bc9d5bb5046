"""Scale tests: the compose file, and a real distributed (Celery) Airflow run."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import airflow_db  # noqa: F401  (the session's migrated Airflow metadata database)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "celery: starts a distributed Airflow (CeleryExecutor) on the local PostgreSQL and Redis"
    )
