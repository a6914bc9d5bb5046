"""The xero_connection_health DAG through real Airflow runs (`dag.test()`), and what the other DAGs do with a
connection it flagged. Afterwards, no token the sandbox issued appears in any file Airflow wrote."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.connections import secret_scan
from tests.connections.conftest import Connected
from tests.e2e.conftest import load_dag
from xero_crm_sync.airflow_env import airflow_environ, run_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def _run(env: Connected, dag_id: str, **conf) -> tuple[str, dict[str, str]]:
    """Run a DAG in this process (`dag.test()`); (run state, {task_id[map]: state})."""
    os.environ["CRM_DATABASE_URL"] = env.url
    os.environ.update(env.sandbox.env())
    run = load_dag(dag_id).test(run_conf=conf or None)
    states = {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        .split(".")[-1]
        .lower()
        for ti in run.get_task_instances()
    }
    return str(run.state).split(".")[-1].lower(), states


def _run_cli(env: Connected, dag_id: str, log: Path) -> None:
    """Run a DAG the way `make run` does (`airflow dags test` in its own process); its output goes to `log`."""
    environ = airflow_environ({**os.environ, "CRM_DATABASE_URL": env.url, **env.sandbox.env()})
    assert run_airflow(["dags", "test", dag_id], environ, log) == 0, log.read_text()[-3000:]


def _stage_an_old_import(env: Connected) -> None:
    """An import run of 30 days ago that staged one contact, which the mirror does not hold."""
    from xero_crm_sync import db, staging
    from xero_crm_sync.entities import entity

    when = staging.now_utc_naive() - timedelta(days=30)
    with env.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sync_run (run_id, connection_id, kind, started_at) VALUES ('a-month-ago', :c, 'import', :t)"
            ),
            {"c": env.ids["secondary"], "t": db.bind_time(when, conn.dialect.name)},
        )
        ctx = staging.RunContext(run_id="a-month-ago", connection_id=env.ids["secondary"], extracted_at=when)
        contact = {"ContactID": "5d6e2a1b-0000-4000-8000-000000000001", "Name": "Long Gone Ltd"}
        staging.write_page(conn, entity("contacts"), staging.stage_page(entity("contacts"), [contact], ctx))


def _health_rows(env: Connected) -> list[dict]:
    with env.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text("SELECT connection_id, outcome, refreshed FROM connection_health_check ORDER BY id")
            ).mappings()
        ]


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)
def test_health_dag_records_refreshes_and_flags_a_revoked_connection(two_orgs: Connected, tmp_path: Path):
    # 1. Healthy: both checked, tokens refreshed ahead of expiry (less than 15 minutes left), health recorded.
    for role in ("primary", "secondary"):
        with two_orgs.store.locked_token(two_orgs.ids[role]) as locked:
            token = locked.token
            token["expires_at"] = token["expires_at"] - 20 * 60
            locked.save(token)
    _run_cli(two_orgs, "xero_connection_health", tmp_path / "health.log")
    assert sorted((r["outcome"], r["refreshed"]) for r in _health_rows(two_orgs)) == [("ok", True)] * 2
    assert {two_orgs.row(i)["health"] for i in two_orgs.ids.values()} == {"ok"}
    assert all(two_orgs.row(i)["last_health_check_at"] for i in two_orgs.ids.values())

    # 2. The primary's organisation is disconnected in Xero: the run fails once, naming it; the secondary is fine.
    xero_id = next(
        c["id"] for c in two_orgs.sandbox.admin.connections() if c["tenantId"] == two_orgs.tenants["primary"]
    )
    two_orgs.sandbox.admin.disconnect(xero_id)
    state, tasks = _run(two_orgs, "xero_connection_health")
    assert state == "failed"
    assert sorted(tasks[k] for k in tasks if k.startswith("check[")) == ["failed", "success"]
    assert two_orgs.row(two_orgs.ids["primary"])["status"] == "disconnected"

    # 3. From then on nothing fails because of it: the next run checks the secondary only. Beside the checks it
    # forgets what import runs older than the retention window staged (an import of 30 days ago here).
    _stage_an_old_import(two_orgs)
    state, tasks = _run(two_orgs, "xero_connection_health")
    assert state == "success" and [k for k in tasks if k.startswith("check[")] == ["check[0]"]
    assert tasks["prune_staging"] == "success"
    with two_orgs.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT COUNT(*) FROM stg_contacts WHERE run_id = 'a-month-ago'")).scalar() == 0
        )
        pruned = "SELECT staging_pruned_at FROM sync_run WHERE run_id = 'a-month-ago'"
        assert conn.execute(text(pruned)).scalar() is not None

    # 4. Nothing Airflow wrote (the run's log, its database with XComs and rendered fields) holds a token or the
    # client secret.
    roots = [Path(os.environ["AIRFLOW_HOME"]), tmp_path]
    secrets = {f"issued #{i}": s for i, s in enumerate(two_orgs.issued_secrets())}
    assert len(secrets) > 6
    assert secret_scan.scan(roots, {**secrets, **secret_scan.static_secrets()}) == []


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)
def test_a_connection_needing_reconnect_is_skipped_with_a_message(one_org: Connected, tmp_path: Path):
    one_org.sandbox.admin.remove_user(one_org.sandbox.state.demo_user().user_id)
    one_org.expire_locally(one_org.ids["primary"])
    state, tasks = _run(one_org, "xero_connection_health")
    assert (state, tasks["check[0]"]) == ("failed", "failed")  # once, when it breaks
    assert one_org.row(one_org.ids["primary"])["status"] == "needs_reconnect"

    state, tasks = _run(one_org, "xero_connection_health")
    assert (state, tasks["check[0]"]) == ("success", "skipped")
    _run_cli(one_org, "xero_import", tmp_path / "import.log")
    skipped = [line for line in (tmp_path / "import.log").read_text().splitlines() if "skipping Xero" in line]
    assert skipped and "needs a reconnect" in skipped[0] and "python -m xero_crm_sync connect" in skipped[0]
    with one_org.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sync_run")).scalar() == 0
    secrets = {f"issued #{i}": s for i, s in enumerate(one_org.issued_secrets())}
    assert secret_scan.scan([tmp_path], secrets) == []
