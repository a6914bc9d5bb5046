"""Airflow's `[core] hostname_callable` for the test's Celery worker: task instances it runs record this name, so
the test can tell they ran on the worker and not anywhere else (every process shares this machine's hostname)."""

from __future__ import annotations

import os

WORKER_NAME_VARIABLE = "XCS_TEST_WORKER_NAME"


def hostname() -> str:
    return os.environ[WORKER_NAME_VARIABLE]
