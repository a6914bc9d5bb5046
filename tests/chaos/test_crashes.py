"""Crash anywhere (`tests/chaos/crashes.py`): a task's process is SIGKILLed at a step boundary or at a seeded random
point inside extract, load, push and the order outbox; recovery as Airflow does it (the task retried, or a new DAG
run); the state then equals an uninterrupted run's: the CRM, Xero, no duplicate in Xero, no watermark past a
change the mirror lacks. The uninterrupted run is observed on SQLite; the cases run on SQLite and one on
PostgreSQL (both databases reach the same canonical state). `make chaos` kills at every boundary and many more
points."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos import crashes
from tests.chaos.conftest import SCENARIO
from tests.chaos.world import sqlite_url
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

CRASH_SEED = 2026  # the random points; printed with each case's name


def _assert_recovered(result: crashes.CaseResult) -> None:
    name = f"{result.case.name} [seed {CRASH_SEED}]"
    assert result.killed, f"{name}: the process was not killed there"
    assert result.crm_diff == {}, f"{name}\n{result.explanation}"
    assert result.xero_diff == {}, f"{name}\n{result.explanation}"
    assert result.duplicates == {}, name
    assert result.watermark_gaps == [], name


def test_killed_tasks_recover_to_the_uninterrupted_state(reference, tmp_path: Path):
    cases = crashes.choose_cases(
        reference,
        seed=CRASH_SEED,
        boundaries=1,
        inner=0,
        tasks=("extract", "load", "push_customers", "process_outbox"),
    )
    assert {c.recovery for c in cases} == {"retry", "new run"}
    for number, case in enumerate(cases):
        print(f"crash case {case.name} [seed {CRASH_SEED}]")
        _assert_recovered(crashes.run_case(case, SCENARIO, sqlite_url(tmp_path, f"case{number}"), reference))


@pytest.mark.parametrize("recovery", ["retry", "new run"])
def test_a_kill_right_after_xero_answered_an_order_records_what_an_uninterrupted_run_does(
    reference, tmp_path: Path, recovery: str
):
    """Killed right after Xero answered the second order run's last write (a void's delete): the recovery, past
    Xero's key window, must record the same outcome (chaos seeds 49345 and 1001 once differed here)."""
    points = reference.points[("orders-2", "process_outbox")]
    case = crashes.Case(
        "orders-2", "process_outbox", "orders.answered", points.count("orders.answered"), recovery
    )
    _assert_recovered(crashes.run_case(case, SCENARIO, sqlite_url(tmp_path, "answered"), reference))


@pytest.mark.parametrize("recovery", ["retry", "new run"])
@pytest.mark.parametrize("stage", ["import-1", "import-2"])  # the first sync, an incremental run
def test_an_extract_killed_after_loading_ahead_recovers(reference, tmp_path: Path, stage: str, recovery: str):
    """Killed after the load steps of the entities already read committed (invoices in the CRM), before the last
    entity was read and before any watermark moved: the retried extract or the new run re-reads, the steps rewrite
    nothing, and the load completes the rest."""
    points = reference.points[(stage, "extract")]
    assert "load_ahead.committed" in points
    hit = points.count("load_ahead.committed")  # the last one: the most committed ahead of the load
    case = crashes.Case(stage, "extract", "load_ahead.committed", hit, recovery)
    _assert_recovered(crashes.run_case(case, SCENARIO, sqlite_url(tmp_path, "ahead"), reference))


@pytest.mark.postgres
@pytest.mark.parametrize("task", ["extract", "load"])
def test_a_load_killed_mid_transaction_on_postgresql_recovers(reference, task: str):
    """PostgreSQL rolls back the dead connection's transaction; the identity values it spent stay spent. On
    PostgreSQL extract runs nearly every load step ahead (on two connections, the lines beside the rest), so the
    load step's own transaction holds the history and the watermarks: killed before its commit."""
    if task == "extract":
        hit = reference.points[("import-2", "extract")].count("load.step") // 2
        case = crashes.Case("import-2", "extract", "load.step", hit, "new run")
    else:
        case = crashes.Case("import-2", "load", "load.before_commit", 1, "new run")
    url = create_pg_database()
    try:
        _assert_recovered(crashes.run_case(case, SCENARIO, url, reference))
    finally:
        drop_pg_database(url)
