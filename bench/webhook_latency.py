"""Benchmark: real time both ways through *real* Airflow components (api-server, dag-processor, scheduler,
triggerer; LocalExecutor), the sandbox sending signed webhooks to the api-server's /xero-webhooks/ route.

    .venv/bin/python -m bench.webhook_latency [--edits 50] [--burst 1000] [--contacts 1200]

Measures (issue 11): Xero edit -> CRM row updated, p50/p95 over --edits edits (one a second); CRM edit -> Xero
updated, p50/p95 over --edits edits; a burst of --burst Xero edits: calls the sandbox counted and seconds until
the CRM has all of them; calls an hour for an idle organisation (from the schedules: nothing is called while
nothing changes). Prints a Markdown table (the one in docs/BENCHMARKS.md). Everything it starts is stopped.
`LiveAirflow` is also what tests/webhooks/test_live.py runs, with a couple of edits.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
KEY = "bench-webhook-key-local-only"
DAGS = ("xero_webhook_import", "xero_crm_changes")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


STOP_GRACE_SECONDS = 8.0


class LiveAirflow:
    """Airflow's components as processes on a throwaway AIRFLOW_HOME, for a pipeline built on `sandbox`."""

    def __init__(self, pipeline: Any, sandbox: Any) -> None:
        self.pipeline, self.sandbox = pipeline, sandbox
        self.home = tempfile.mkdtemp(prefix="xcs-webhooks-airflow-")
        self.port = _free_port()
        secret = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            **sandbox.env(),
            "CRM_DATABASE_URL": pipeline.url,
            "AIRFLOW_HOME": self.home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.subscription: dict[str, Any] = {}

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xero-webhooks/"

    def start(self, timeout: float = 240) -> LiveAirflow:
        from xero_crm_sync.webhooks import keys

        with self.pipeline.engine.begin() as conn:
            keys.set_key(conn, self._client_id(), KEY)
        subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, env=self.env)
        for args in (
            ["api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            ["dag-processor"],
            ["scheduler", "--skip-serve-logs"],
            ["triggerer", "--skip-serve-logs"],
        ):
            log = open(f"{self.home}/{args[0]}.log", "w")
            self.procs.append(subprocess.Popen([AIRFLOW, *args], stdout=log, stderr=subprocess.STDOUT,
                                               env=self.env, start_new_session=True))  # fmt: skip
        deadline = time.monotonic() + timeout
        pending = set(DAGS)
        while pending and time.monotonic() < deadline:
            for dag_id in sorted(pending):
                done = subprocess.run([AIRFLOW, "dags", "unpause", dag_id], capture_output=True, text=True,
                                      env=self.env)  # fmt: skip
                if done.returncode == 0 and dag_id in done.stdout:
                    pending.discard(dag_id)
            time.sleep(2)
        if pending:
            raise RuntimeError(f"could not unpause {pending}:\n{self.logs()}")
        # Xero's side: subscribe the app and pass intent to receive against the api-server's route.
        while time.monotonic() < deadline:
            try:
                self.subscription = self.sandbox.admin.subscribe_webhook(
                    self.webhook_url, client_id=self._client_id(), key=KEY
                )
            except httpx.HTTPError:
                self.subscription = {}
            if self.subscription.get("status") == "OK":
                break
            time.sleep(2)
        else:
            raise RuntimeError(f"intent to receive failed: {self.subscription}\n{self.logs()}")
        return self

    def _client_id(self) -> str:
        from xero_sandbox.state import GRANULAR_CLIENT_ID

        return GRANULAR_CLIENT_ID

    def wait(self, check: Callable[[], bool], timeout: float) -> float | None:
        """Seconds until check() holds, or None after timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check():
                return time.monotonic() - started
            time.sleep(0.1)
        return None

    def logs(self, lines: int = 25) -> str:
        out = []
        for name in ("api-server", "scheduler", "triggerer", "dag-processor"):
            path = Path(self.home) / f"{name}.log"
            if path.exists():
                out.append(
                    f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        # One grace period for all of them, then SIGKILL: a component still busy after it (the teardown took 33 s
        # when each had its own 30 s) has nothing left to save in a throwaway Airflow home.
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> LiveAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- measurements -----------------------------------------------------------------------------------------


def _codes(pipeline: Any, n: int) -> list[str]:
    with pipeline.engine.connect() as conn:
        from sqlalchemy import text

        return list(
            conn.execute(
                text(
                    "SELECT accounting_code FROM sales_ledger WHERE accounting_code IS NOT NULL ORDER BY id LIMIT :n"
                ),
                {"n": n},
            ).scalars()
        )


def xero_to_crm(
    live: LiveAirflow, codes: list[str], tag: str, *, spacing: float = 1.0, timeout: float = 120
) -> list[float]:
    """Rename contacts in Xero one every `spacing` s; seconds until each CRM row shows the new name."""
    org = live.pipeline.org()
    started: dict[str, float] = {}
    done: dict[str, float] = {}
    for n, code in enumerate(codes):
        org.upsert_contacts([{"ContactID": code, "Name": f"{tag} {n} Ltd"}])
        started[code] = time.monotonic()
        # Look every 0.1 s until the next edit is due: latencies are measured to a tenth of a second.
        live.wait(lambda: _collect(live, started, done, tag, codes), spacing)
    live.wait(lambda: _collect(live, started, done, tag, codes) or len(done) == len(codes), timeout)
    return [done[c] - started[c] for c in codes if c in done]


def _collect(
    live: LiveAirflow, started: dict[str, float], done: dict[str, float], tag: str, codes: list[str]
) -> bool:
    from sqlalchemy import bindparam, text

    waiting = [c for c in started if c not in done]
    if not waiting:
        return False
    with live.pipeline.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT accounting_code, name FROM sales_ledger WHERE accounting_code IN :c").bindparams(
                bindparam("c", expanding=True)
            ),
            {"c": waiting},
        ).all()
    now = time.monotonic()
    for code, name in rows:
        if name == f"{tag} {codes.index(code)} Ltd":
            done[code] = now
    return False


def isolated_edits(live: LiveAirflow, codes: list[str], tag: str, *, quiet: float) -> list[float]:
    """Xero edits `quiet` s apart (longer than a run lingers): each one starts a run of its own, from cold."""
    latencies = []
    for n, code in enumerate(codes):
        time.sleep(quiet)
        latencies += xero_to_crm(live, [code], f"{tag}{n}", spacing=0)
    return latencies


def crm_to_xero(
    live: LiveAirflow, codes: list[str], tag: str, *, spacing: float = 1.0, timeout: float = 120
) -> list[float]:
    """Change customers' email in the CRM one every `spacing` s; seconds until Xero holds each."""
    from sqlalchemy import text

    org = live.pipeline.org()
    started: dict[str, float] = {}
    done: dict[str, float] = {}

    def collect() -> bool:
        now = time.monotonic()
        for code in started:
            if (
                code not in done
                and org.contacts.get(code).get("EmailAddress") == f"{tag}.{codes.index(code)}@example.com"
            ):
                done[code] = now
        return len(done) == len(codes)

    for n, code in enumerate(codes):
        with live.pipeline.engine.begin() as conn:
            conn.execute(text("UPDATE sales_ledger SET email = :e WHERE accounting_code = :c"),
                         {"e": f"{tag}.{n}@example.com", "c": code})  # fmt: skip
        started[code] = time.monotonic()
        live.wait(lambda: collect() and False, spacing)  # look every 0.1 s until the next edit is due
    live.wait(collect, timeout)
    return [done[c] - started[c] for c in codes if c in done]


def burst(live: LiveAirflow, codes: list[str], timeout: float = 600) -> tuple[int, float, int]:
    """Rename every contact in `codes` in Xero at once; (calls counted by the sandbox, seconds, rows updated)."""
    admin = live.sandbox.admin
    admin.clear_journal()
    org = live.pipeline.org()
    started = time.monotonic()
    org.upsert_contacts([{"ContactID": c, "Name": f"Burst {n} Ltd"} for n, c in enumerate(codes)])
    done: dict[str, float] = {}
    startmap = dict.fromkeys(codes, started)
    live.wait(lambda: _collect(live, startmap, done, "Burst", codes) or len(done) == len(codes), timeout)
    seconds = max(done.values()) - started if done else float("nan")
    calls = [e for e in admin.journal(limit=100_000) if "/api.xro/" in e["path"]]
    return len(calls), seconds, len(done)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def idle_calls_per_hour() -> dict[str, float]:
    """Calls an hour for an idle organisation, from the schedules (an incremental read of an entity is one call)."""
    from xero_crm_sync.entities import ENTITIES
    from xero_crm_sync.webhooks.health import WEBHOOK_ENTITIES, poll_interval

    polling_minutes = float(os.environ.get("XERO_IMPORT_INTERVAL_MINUTES", "5"))
    runs = 60 / polling_minutes
    webhook_runs = 60 / (poll_interval().total_seconds() / 60)
    others = len(ENTITIES) - len(WEBHOOK_ENTITIES)
    return {
        "polling": runs * len(ENTITIES),
        "webhooks healthy": runs * others + webhook_runs * len(WEBHOOK_ENTITIES),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_latency")
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=1200)
    parser.add_argument("--isolated", type=int, default=5, help="edits after a quiet spell (each from cold)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "plugins"))
    from tests.e2e.conftest import NO_LIMITS, build_pipeline
    from xero_crm_sync import import_run
    from xero_sandbox.server import SandboxServer

    home = tempfile.mkdtemp(prefix="xcs-webhooks-bench-")
    sandbox = SandboxServer(seed=5, contacts=args.contacts, limits=NO_LIMITS).start()
    try:
        pipeline = build_pipeline(f"sqlite:///{home}/crm.db", sandbox)
        info = pipeline.store.get(pipeline.connections["primary"])
        extracted = import_run.extract(
            pipeline.engine, pipeline.store, info, "bench-initial", full=True
        ).as_dict()
        import_run.validate(pipeline.engine, extracted)
        import_run.load(pipeline.engine, extracted, full=True)
        codes = _codes(pipeline, max(args.burst, args.edits * 2 + args.isolated))
        with LiveAirflow(pipeline, sandbox) as live:
            warm = xero_to_crm(
                live, codes[:1], "Warm", timeout=180
            )  # the triggers are running once this lands
            x2c = xero_to_crm(live, codes[: args.edits], "Xero")
            quiet = float(os.environ.get("XERO_WEBHOOK_LINGER_SECONDS", "30")) + 20
            cold = isolated_edits(
                live, codes[2 * args.edits : 2 * args.edits + args.isolated], "Quiet", quiet=quiet
            )
            c2x = crm_to_xero(live, codes[args.edits : 2 * args.edits], "crm")
            burst_codes = codes[: args.burst]  # fewer when the organisation holds fewer customers
            calls, seconds, loaded = burst(live, burst_codes)
        idle = idle_calls_per_hour()
        print("| Measure | Result |\n| --- | --- |")
        print(f"| Xero edit -> CRM row (p50 / p95, {len(x2c)}/{args.edits} edits) | "
              f"{_pct(x2c, 50):.1f} s / {_pct(x2c, 95):.1f} s |")  # fmt: skip
        print(f"| Xero edit after {quiet:.0f} s of quiet -> CRM row (p50 / max, {len(cold)}/{args.isolated} edits) | "
              f"{_pct(cold, 50):.1f} s / {max(cold, default=float('nan')):.1f} s |")  # fmt: skip
        print(f"| CRM edit -> Xero (p50 / p95, {len(c2x)}/{args.edits} edits) | "
              f"{_pct(c2x, 50):.1f} s / {_pct(c2x, 95):.1f} s |")  # fmt: skip
        print(
            f"| Burst of {len(burst_codes)} Xero edits | {calls} calls, {seconds:.1f} s until {loaded} of "
            f"{len(burst_codes)} rows updated |"
        )
        print(f"| Idle organisation, calls an hour | {idle['webhooks healthy']:.0f} with webhooks healthy, "
              f"{idle['polling']:.0f} polling every 5 minutes |")  # fmt: skip
        print(f"(first event after start-up: {warm[0] if warm else float('nan'):.1f} s)")
        return 0
    finally:
        sandbox.stop()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
