"""Run Airflow from the clone (its home, DAGs and plugins are here) as a subprocess: no `airflow` import here.

Used by `make run` (the demo), `make airflow` and tests that want the real `airflow dags test` command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from xero_crm_sync.settings import PROJECT_ROOT, VAR_DIR


def airflow_environ(base: Mapping[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """The environment Airflow needs to run this project, keeping anything the caller already set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("AIRFLOW_HOME", str(home or VAR_DIR / "airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(PROJECT_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    # Tasks import include/ by name (installed editable) and plugins/ (the hook) from Airflow's plugins folder.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT / "plugins"), env.get("PYTHONPATH")) if p
    )
    # `airflow standalone` starts its scheduler, dag-processor, triggerer and api-server as `airflow` processes
    # looked up on PATH: the virtualenv's bin/ must come first, or they die with FileNotFoundError on a shell
    # where the venv is not activated (`make airflow` on a fresh clone).
    bin_dir = str(Path(airflow_bin()).parent) if os.path.isabs(airflow_bin()) else None
    env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
    return env


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else (shutil.which("airflow") or "airflow")


def run_airflow(args: list[str], env: Mapping[str, str], log_path: Path | None = None) -> int:
    """Run `airflow <args>`; output goes to `log_path` when given (Airflow is verbose)."""
    command = [airflow_bin(), *args]
    if log_path is None:
        return subprocess.run(command, env=dict(env), check=False).returncode
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        return subprocess.run(
            command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode


def ensure_metadata_db(env: Mapping[str, str], log_path: Path) -> None:
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if run_airflow(["db", "migrate"], env, log_path) != 0:
        raise RuntimeError(f"`airflow db migrate` failed; see {log_path}")
