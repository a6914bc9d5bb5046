"""`make test` without a service it needs stops with a message naming it; it never turns the tests into skips."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:9/test"  # port 9 (discard): nothing answers


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"TEST_POSTGRES_URL": NOWHERE}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# `make test` runs the suite on pytest-xdist workers ("-n 2"), where the controller does the check.
SERIAL_AND_PARALLEL = pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "parallel"])


@SERIAL_AND_PARALLEL
def test_a_missing_postgresql_stops_the_session_with_how_to_point_it_elsewhere(workers):
    result = _pytest("tests/crm/test_crm_guide.py", *workers)
    assert result.returncode == 4, result.stdout[-2000:]
    assert f"PostgreSQL at {NOWHERE}" in result.stdout + result.stderr
    assert "TEST_POSTGRES_URL" in result.stdout + result.stderr
    assert " skipped" not in result.stdout


@SERIAL_AND_PARALLEL
def test_deselecting_the_postgresql_tests_runs_the_rest(workers):
    result = _pytest("tests/crm/test_crm_guide.py", "-m", "not postgres", *workers)
    assert result.returncode == 0, result.stdout[-2000:]
    # The guide's test runs on SQLite and on PostgreSQL: only the SQLite one is left (xdist does not print
    # "deselected").
    assert "1 passed" in result.stdout and "failed" not in result.stdout and "error" not in result.stdout
