"""A real Airflow API server (`airflow api-server` in its own process, 127.0.0.1, a port the OS picks) with this
project's plugins, the SimpleAuthManager with two test users, and a CRM database holding what real runs wrote
(`real_runs.py`: xero_import through `dag.test()` against the sandbox) plus, under another operating company, one
of everything else the status page shows (`seed.py`). One server per test session: starting Airflow's API
server takes a while."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ARTIFACTS
from tests.e2e.conftest import airflow_db  # noqa: F401 (the session's Airflow metadata database, a fixture)
from tests.ui.real_runs import RealRuns, run_real_syncs
from tests.ui.seed import Seeded, seed
from xero_crm_sync.airflow_env import airflow_bin, airflow_environ

USERS = {"admin": ("admin", "admin-password-for-tests"), "viewer": ("viewer", "viewer-password-for-tests")}
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
UI_ARTIFACTS = ARTIFACTS / "ui"


@dataclass
class ApiServer:
    url: str
    seeded: Seeded
    real: RealRuns
    log: Path

    def token(self, user: str) -> str:
        """A JWT for the user, from Airflow's own login endpoint."""
        username, password = USERS[user][0], USERS[user][1]
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]


@pytest.fixture(scope="session")
def api_server(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:  # noqa: F811
    work = tmp_path_factory.mktemp("ui")
    real = run_real_syncs(f"sqlite:///{work / 'crm.db'}")
    seeded = seed(real.url)
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps({name: password for name, password in USERS.values()}))
    env = airflow_environ(
        {
            **os.environ,
            "CRM_DATABASE_URL": seeded.url,
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        }
    )
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = UI_ARTIFACTS / "api-server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [airflow_bin(), "api-server", "-H", "127.0.0.1", "-p", "0", "-w", "1", "--apps", "core"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its uvicorn worker below
        )
    try:
        port = _wait_for_port(proc, log, timeout=180)
        yield ApiServer(f"http://127.0.0.1:{port}", seeded, real, log)
    finally:
        _stop(proc)


def _wait_for_port(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    raise AssertionError(f"airflow api-server did not start:\n{log.read_text(errors='replace')[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
