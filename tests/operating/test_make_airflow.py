"""`make airflow` on a fresh clone: the command it runs brings up Airflow standalone with this project's DAGs.

The shell it starts from has no virtualenv on PATH (the README never asks to activate one), which is exactly what
broke it: `airflow standalone` starts its components as `airflow` processes looked up on PATH.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.scale.airflow_cluster import free_port
from xero_crm_sync.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

DAG_IDS = {"xero_import", "xero_push", "xero_order_invoices", "xero_connection_health"}


def _fresh_shell_env(tmp_path: Path, api_port: int) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
            "AIRFLOW__API__PORT": str(api_port),
            # The scheduler's and triggerer's log servers listen too: free ports, never the fixed defaults.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # No login for the test's API calls; the standalone's other defaults stay as `make airflow` has them.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    return env


@pytest.mark.airflow
def test_airflow_standalone_comes_up_without_the_venv_on_path(tmp_path: Path) -> None:
    api_port, sandbox_port = free_port(), free_port()
    env = _fresh_shell_env(tmp_path, api_port)
    on_path = shutil.which("airflow", path=env["PATH"])
    assert on_path is None or Path(on_path).parent != Path(sys.executable).parent
    log_path = tmp_path / "standalone.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xero_crm_sync", "airflow-standalone", "--contacts", "20"]
            + ["--sandbox-port", str(sandbox_port), "--api-port", str(api_port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        dags = _wait_for_dags(proc, api_port, log_path, timeout=240)
        assert DAG_IDS <= dags
        assert "FileNotFoundError" not in log_path.read_text(errors="replace")
    finally:
        _stop(proc)


def _wait_for_dags(proc: subprocess.Popen[bytes], api_port: int, log_path: Path, timeout: float) -> set[str]:
    """The api-server answers and lists the project's DAGs (so the dag-processor parsed them)."""
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow-standalone exited ({proc.returncode}):\n{_tail(log_path)}")
        if "FileNotFoundError" in log_path.read_text(errors="replace"):
            pytest.fail(f"a standalone component could not start:\n{_tail(log_path)}")
        try:
            response = httpx.get(f"http://127.0.0.1:{api_port}/api/v2/dags", timeout=5)
            if response.status_code == 200:
                found = {d["dag_id"] for d in response.json()["dags"]}
                if DAG_IDS <= found:
                    return found
        except httpx.HTTPError:
            pass
        time.sleep(2)
    pytest.fail(f"the DAGs never showed up in the API (saw {sorted(found)}):\n{_tail(log_path)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C as a user would (the standalone stops its components), then make sure the whole group is gone."""
    for sig, wait in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)  # the group is the command's own session (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
