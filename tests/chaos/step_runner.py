"""Run one DAG task in its own process, as an Airflow worker does, so a crash test can SIGKILL it for real.

    XERO_CRM_CRASH_AT=load.step@4 CRM_DATABASE_URL=... XERO_API_URL=... XERO_IDENTITY_URL=... \\
        python -m tests.chaos.step_runner --task load --run-id import-2__1 --connection-id 1 \\
        --tenant-id ... --xcom-in in.json --xcom-out out.json

`--xcom-in` holds the results of the run's earlier tasks (what Airflow passes through XCom); the task's own
result is written to `--xcom-out` only when it returns, after the `task.end` crash point (a task that did all
its work but died before Airflow recorded it). Exit status 0 on success, 1 when the task raised, -9 when a
crash point killed it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tests.chaos.tasks import TaskEnv, run_task
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.step_runner")
    parser.add_argument("--task", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--connection-id", type=int, required=True)
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--xcom-in", type=Path, required=True)
    parser.add_argument("--xcom-out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    env = TaskEnv(settings.crm_database_url, settings, args.connection_id, args.tenant_id)
    xcom = json.loads(args.xcom_in.read_text())
    crash_point("task.start")
    result = run_task(args.task, env, args.run_id, xcom)
    crash_point("task.end")
    args.xcom_out.write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
