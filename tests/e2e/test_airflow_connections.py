"""Configured in Airflow alone: the Xero app in the connection `xero_default` (type xero), the CRM database in
`xero_crm_db`, as a data engineer sets them up in Airflow's Connections UI (here as AIRFLOW_CONN_* variables,
which Airflow reads the same way). No CRM_DATABASE_URL, no XERO_* variable: a real `dag.test()` import lands in
the database the connection names, and the app's secret from the connection is the one the token refresh used.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.connections import secret_scan
from tests.e2e.conftest import build_pipeline, load_dag
from xero_crm_sync.oauth import RefreshFailed
from xero_hook import XeroHook
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

pytestmark = pytest.mark.airflow

ENVIRONMENT_SETTINGS = (
    "CRM_DATABASE_URL",
    "XERO_LOGIN_URL",
    "XERO_IDENTITY_URL",
    "XERO_API_URL",
    "XERO_CLIENT_ID",
    "XERO_CLIENT_SECRET",
)


def _crm_db_connection(url: str) -> str:
    """The CRM database as an Airflow connection: SQLite in the JSON form (the file in host), PostgreSQL as a URI,
    the two forms `AIRFLOW_CONN_*` takes."""
    if url.startswith("sqlite:///"):
        return json.dumps({"conn_type": "sqlite", "host": url.removeprefix("sqlite:///")})
    return "postgres://" + url.split("://", 1)[1]


def _configure_in_airflow_only(monkeypatch, crm_url: str, xero_url: str, client_secret: str) -> None:
    """No setting in the environment; the CRM database in `xero_crm_db`, the app and Xero's hosts (the
    sandbox) in `xero_default`."""
    for name in ENVIRONMENT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_XERO_CRM_DB", _crm_db_connection(crm_url))
    extra = {"login_url": xero_url, "identity_url": xero_url, "api_url": xero_url}
    app = {"conn_type": "xero", "login": GRANULAR_CLIENT_ID, "password": client_secret, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps(app))


def _stale_secret_and_expired_token(pipeline, connection_id: int) -> None:
    """The app's secret was rotated in Xero after the organisation was connected: the CRM row still holds the old
    one, and its access token has expired, so the run must refresh with the secret from Airflow's connection."""
    store = pipeline.store
    with pipeline.engine.begin() as conn:
        blob = store.box.decrypt_json(
            conn.execute(
                text("SELECT token_blob FROM xero_connection WHERE id = :id"), {"id": connection_id}
            ).scalar()
        )
        blob["client_secret"] = "rotated-away-secret-that-xero-no-longer-accepts"
        blob["token"]["expires_at"] = time.time() - 60
        conn.execute(
            text("UPDATE xero_connection SET token_blob = :b WHERE id = :id"),
            {"b": store.box.encrypt_json(blob), "id": connection_id},
        )


def test_import_configured_only_by_airflow_connections(
    airflow_db, make_sandbox, crm_db, monkeypatch, capfd, tmp_path: Path
):
    sandbox = make_sandbox(seed=5, contacts=25, tenants=1)
    # Migrates the CRM and connects the organisation, as `connect` does.
    pipeline = build_pipeline(crm_db, sandbox)
    connection_id = pipeline.connections["primary"]
    _stale_secret_and_expired_token(pipeline, connection_id)
    refreshes_before = len(_refreshes(sandbox))

    _configure_in_airflow_only(monkeypatch, crm_db, sandbox.url, GRANULAR_CLIENT_SECRET)

    dag_run = load_dag("xero_import").test(run_conf={"mode": "full"})

    assert str(dag_run.state).split(".")[-1].lower() == "success"
    # The rows are in the database the connection names, read from Xero at the hosts the connection names.
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_ledger") > 0
    assert pipeline.scalar("SELECT COUNT(*) FROM sync_run WHERE connection_id = :c", c=connection_id) == 1
    # The expired token was refreshed, with the secret from `xero_default` (the CRM row's one is refused).
    assert len(_refreshes(sandbox)) > refreshes_before
    with pipeline.engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, health FROM xero_connection WHERE id = :id"), {"id": connection_id}
        ).one()
    assert tuple(row) == ("active", "ok")

    # The secret is nowhere in what the run printed or Airflow wrote (task logs, metadata database).
    out, err = capfd.readouterr()
    assert GRANULAR_CLIENT_SECRET not in out + err
    assert (
        secret_scan.scan([Path(os.environ["AIRFLOW_HOME"])], {"client secret": GRANULAR_CLIENT_SECRET}) == []
    )


def _refreshes(sandbox) -> list[dict]:
    entries = sandbox.admin.journal(method="POST", path_contains="/connect/token")
    return [e for e in entries if (e.get("body") or {}).get("grant_type") == "refresh_token"]


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)
def test_a_wrong_secret_in_the_connection_fails_the_run_without_sending_the_organisation_to_reconnect(
    airflow_db, make_sandbox, crm_db, monkeypatch
):
    """A typo in the Connections form is fixed there: the organisation's grant is fine, so it is not flagged."""
    sandbox = make_sandbox(seed=5, contacts=5, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    connection_id = pipeline.connections["primary"]
    _stale_secret_and_expired_token(pipeline, connection_id)
    _configure_in_airflow_only(monkeypatch, crm_db, sandbox.url, "a-mistyped-client-secret")

    # The hook as a task uses it (not a whole DAG run: its task retries would only wait out their delays).
    hook = XeroHook(connection_id)
    session = hook.store.session(connection_id, hook.settings)
    with pytest.raises(RefreshFailed, match="xero_default"):
        session.refresh_token(hook.settings.token_url)

    assert pipeline.scalar("SELECT status FROM xero_connection WHERE id = :id", id=connection_id) == "active"
