"""Benchmark: a confirmed order becomes a Draft invoice through *real* Airflow
components, event-driven, and how long it takes.

    .venv/bin/python -m bench.order_latency

Starts a sandbox (thread), a CRM on SQLite, and Airflow's api-server (loopback, free port), dag-processor,
scheduler and triggerer (no log servers) in a throwaway AIRFLOW_HOME; unpauses only xero_order_invoices; waits
for the triggerer to run OrderOutboxTrigger; confirms an order; prints the seconds until its InvoiceID is stored
and the DAG's runs (one `asset_triggered`). Everything it started is stopped before it exits. Takes ~2 minutes.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(home: str) -> dict[str, str]:
    port = _free_port()
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": key,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "XERO_CRM_FERNET_KEY": os.environ.get("XERO_CRM_FERNET_KEY") or key,
    }


def main() -> int:
    home = tempfile.mkdtemp(prefix="xcs-live-airflow-")
    env = _environment(home)
    os.environ.update(env)
    sys.path.insert(0, str(REPO / "plugins"))
    from tests.e2e.conftest import NO_LIMITS, build_pipeline
    from tests.push.conftest import add_customer, add_order
    from xero_crm_sync.push.orders import confirm_order
    from xero_sandbox.server import SandboxServer

    sandbox = SandboxServer(seed=7, contacts=12, tenants=1, limits=NO_LIMITS).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pipeline = build_pipeline(f"sqlite:///{home}/crm.db", sandbox)
        env.update(sandbox.env(), CRM_DATABASE_URL=pipeline.url)
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=env)
        for args in (
            ["api-server", "--host", "127.0.0.1", "--port", env["AIRFLOW__API__PORT"]],
            ["dag-processor"],
            ["scheduler", "--skip-serve-logs"],
            ["triggerer", "--skip-serve-logs"],
        ):
            log = open(f"{home}/{args[0]}.log", "w")
            procs.append(subprocess.Popen([AIRFLOW, *args], stdout=log, stderr=subprocess.STDOUT, env=env))
        for _ in range(90):
            done = subprocess.run([AIRFLOW, "dags", "unpause", "xero_order_invoices"], capture_output=True,
                                  text=True, env=env)  # fmt: skip
            if done.returncode == 0 and "xero_order_invoices" in done.stdout:
                break
            time.sleep(2)
        time.sleep(25)  # the scheduler registers the asset watcher, the triggerer starts the trigger
        customer = add_customer(pipeline.engine, "Live Ltd", email="accounts@live.co.nz")
        order = add_order(pipeline.engine, customer, [dict(description="Thing", quantity=1, unit_price=10,
                                                           account_code="200")], order_number="SO-LIVE")  # fmt: skip
        with pipeline.engine.begin() as conn:
            confirm_order(conn, order)
        started = time.monotonic()
        invoice_id = None
        while invoice_id is None and time.monotonic() - started < 120:
            time.sleep(0.25)
            invoice_id = pipeline.scalar("SELECT xero_invoice_id FROM sales_order WHERE id = :id", id=order)
        print(f"invoice {invoice_id} stored {time.monotonic() - started:.1f} s after the confirmation")
        runs = subprocess.run([AIRFLOW, "dags", "list-runs", "xero_order_invoices", "-o", "plain"],
                              capture_output=True, text=True, env=env)  # fmt: skip
        print(runs.stdout)
        return 0 if invoice_id else 1
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
