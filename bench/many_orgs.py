"""Many organisations on the Celery deployment (issue 13, target 5): N organisations of C contacts each, imported
by one `xero_import` run (one mapped extract -> validate -> load per organisation) on a real distributed Airflow,
with one Celery worker and then with two.

    python -m bench.many_orgs                                   # 20 organisations x 1,000 contacts, 1 then 2 workers
    python -m bench.many_orgs --orgs 2 --contacts 50 --workers 1 --modes full   # a quick look

What runs: the sandbox (its own process) with Xero's real limits on (60 calls a minute and 5 at once per
organisation, 10,000 a minute per app); for each worker count a fresh PostgreSQL CRM with N operating companies,
each connected to one organisation, and a fresh Airflow (`tests/scale/airflow_cluster.py`: scheduler,
dag-processor, api-server, triggerer and Celery workers as processes, Redis as the broker, metadata on PostgreSQL).
Each worker runs `--concurrency` task slots (default 1: one slot is the unit of docs/SCALING.md's model). Then one
full run (a first sync: every organisation read whole), and one incremental run right after it (nothing changed:
the five-minute import of the model).

Measured, never taken from the client: the run's wall time (the DAG run's start to end, in Airflow's metadata);
each organisation's extract-to-load time (its `sync_run` row in the CRM); the slot time of every task instance;
calls and 429s per organisation as the sandbox counted them (`GET /sandbox/counters`); the app's busiest rolling
minute from the shared limiter's own record (`xero_rate_call`). The pacing floor of an organisation's n calls is
60 x floor((n - 1) / 60) s (`bench.peers.pacing_floor`): at about a dozen calls per 1,000-contact organisation it
is 0, so what bounds these runs is Airflow's and our own work, not Xero's pacing.

Results go to bench/many_orgs.json, and into docs/BENCHMARKS.md through `python -m bench.run --render-only` (run
at the end).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers import pacing_floor

ROOT = Path(__file__).resolve().parents[1]
MANY_ORGS_JSON = ROOT / "bench" / "many_orgs.json"
CYCLE_SECONDS = 300  # the five-minute import (XERO_IMPORT_INTERVAL_MINUTES' default)
APP_CALLS_PER_MINUTE = 10_000  # Xero's per-app limit, across all organisations
RUN_TIMEOUT = 3600  # seconds for one DAG run, on 2 shared cores


# --- pure parts: figures, the model check, the table ------------------------------------------------------------


def busiest_window(times: Sequence[float], window: float = 60.0) -> int:
    """The most of `times` (seconds) that fall in any window of `window` seconds (a rolling minute)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def summarise(
    *,
    workers: int,
    concurrency: int,
    mode: str,
    wall_seconds: float,
    tasks: Sequence[dict[str, Any]],
    organisations: Sequence[dict[str, Any]],
    app_busiest_minute: int,
) -> dict[str, Any]:
    """One run's figures: `tasks` are task instances (task_id, state, hostname, duration s); `organisations` one
    entry per organisation (tenant, status, seconds extract-to-load, calls, rate_limited)."""
    n = len(organisations)
    slot_seconds = sum(t["duration"] or 0.0 for t in tasks)
    per_org_slot = slot_seconds / n if n else 0.0
    slots = workers * concurrency
    for org in organisations:
        org["floor_seconds"] = pacing_floor(org["calls"])
    seconds = [o["seconds"] for o in organisations if o["seconds"] is not None]
    calls = [o["calls"] for o in organisations]
    by_worker = Counter(t["hostname"] for t in tasks)
    return {
        "workers": workers,
        "concurrency": concurrency,
        "mode": mode,
        "organisations": n,
        "wall_seconds": round(wall_seconds, 1),
        "tasks": len(tasks),
        "tasks_failed": sum(1 for t in tasks if t["state"] != "success"),
        "tasks_per_worker": dict(sorted(by_worker.items())),
        "slot_seconds": round(slot_seconds, 1),
        "slot_seconds_per_org": round(per_org_slot, 1),
        # The model: every slot busy all the time, the organisations' slot time spread evenly over the slots.
        "model_wall_seconds": round(slot_seconds / slots, 1) if slots else None,
        # What the model calls t_org, measured: a slot's share of the wall time per organisation, so Airflow's
        # dispatch between task instances (scheduler loop, Celery pick-up, task process start) counts too.
        "wall_slot_seconds_per_org": round(wall_seconds * slots / n, 1) if n else None,
        "orgs_per_slot_per_cycle": round(CYCLE_SECONDS * n / (wall_seconds * slots), 1)
        if n and wall_seconds and slots
        else None,
        "org_seconds_median": round(statistics.median(seconds), 1) if seconds else None,
        "org_seconds_max": round(max(seconds), 1) if seconds else None,
        "calls": sum(calls),
        "calls_per_org_median": statistics.median(calls) if calls else 0,
        "rate_limited": sum(o["rate_limited"] for o in organisations),
        "floor_seconds_max": max((o["floor_seconds"] for o in organisations), default=0.0),
        "app_busiest_minute": app_busiest_minute,
        "orgs_at_app_limit": app_limit_organisations(statistics.median(calls) if calls else 0),
        "per_org": list(organisations),
    }


def app_limit_organisations(calls_per_org_cycle: float, cycle_seconds: int = CYCLE_SECONDS) -> int | None:
    """How many organisations, each costing `calls_per_org_cycle` calls every cycle, Xero's app limit admits."""
    if not calls_per_org_cycle:
        return None
    return int(APP_CALLS_PER_MINUTE * cycle_seconds / 60 / calls_per_org_cycle)


def render(document: dict[str, Any]) -> str:
    """bench/many_orgs.json as the "Many organisations" section of docs/BENCHMARKS.md."""
    rows = []
    for r in document.get("runs", []):
        rows.append(
            [
                r["mode"],
                f"{r['workers']} x {r['concurrency']}",
                f"{r['organisations']} x {document['contacts']:,}",
                f"{r['wall_seconds']:.0f}",
                f"{r['model_wall_seconds']:.0f}" if r["model_wall_seconds"] is not None else "-",
                f"{r['slot_seconds_per_org']:.1f} / {r['wall_slot_seconds_per_org']:.1f}",
                f"{r['org_seconds_median']} / {r['org_seconds_max']}",
                f"{r['calls']:,} ({r['calls_per_org_median']:g})",
                str(r["rate_limited"]),
                f"{r['floor_seconds_max']:.0f}",
                str(r["app_busiest_minute"]),
                f"{r['orgs_at_app_limit']:,}" if r["orgs_at_app_limit"] else "-",
                f"{r['orgs_per_slot_per_cycle']}" if r["orgs_per_slot_per_cycle"] else "-",
                f"{r['tasks']} ({r['tasks_failed']} failed)",
            ]
        )
    header = [
        "run",
        "workers x slots",
        "organisations",
        "wall s",
        "model wall s",
        "slot s per org: in tasks / of wall",
        "org extract-to-load s, median / max",
        "calls (per org)",
        "429s",
        "pacing floor s (max per org)",
        "app's busiest minute, calls",
        "orgs the app limit admits at these calls every 300 s",
        "orgs one slot keeps in step (300 s)",
        "task instances",
    ]
    lines = [
        "## Many organisations on Celery (issue 13 target 5; `python -m bench.many_orgs`)",
        "",
        f"Updated {document.get('updated_at', '-')} (`{document.get('command', '')}`; load average "
        f"{document.get('load_before', '?')} before, {document.get('load_after', '?')} after, on 2 shared cores).",
        "A real distributed Airflow (CeleryExecutor, Redis, PostgreSQL metadata and CRM) runs one `xero_import` over",
        "every organisation; the sandbox at Xero's real limits (60 calls a minute and 5 at once per organisation,",
        "10,000 a minute per app). Calls and 429s counted by the sandbox; wall time from the DAG run's start to end;",
        "slot s per org in tasks: the task instances' durations (extract, validate, load, the run's list_connections)",
        "divided by the organisations; of wall: wall time x slots / organisations (the model's t_org, Airflow's",
        "dispatch between tasks included); model wall s: the in-task seconds spread over every slot; orgs one slot",
        "keeps in step: 300 s / t_org; org extract-to-load: the CRM's `sync_run` row (with one slot an organisation",
        "waits for every other one's extract before its validate: the scheduler runs the mapped steps breadth first). Pacing",
        "floor: n calls need 60 x floor((n - 1) / 60) s. The incremental run follows the full one, nothing changed.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if document.get("note"):
        lines += ["", document["note"]]
    return "\n".join(lines) + "\n"


# --- the organisations, the CRM, the cluster ------------------------------------------------------------------


def company_name(index: int) -> str:
    return f"Organisation {index + 1:02d} Ltd"


def connect_all(url: str, sandbox: Any) -> list[str]:
    """Migrate the CRM at `url`, add one operating company per sandbox organisation and connect each (primary)."""
    from xero_crm_sync import db, migrate
    from xero_crm_sync.connect import connect
    from xero_crm_sync.connections import ConnectionStore
    from xero_crm_sync.oauth import AppCredentials
    from xero_crm_sync.settings import get_settings
    from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

    migrate.migrate(url)
    tenants = [t["tenantId"] for t in sandbox.admin.tenants()]
    with db.begin(url) as conn:
        for index in range(len(tenants)):
            migrate.seed_demo(conn, company_name(index))
    os.environ.update(sandbox.env())
    store = ConnectionStore(db.get_engine(url))
    for index, tenant in enumerate(tenants):
        connect(
            store,
            get_settings(),
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=company_name(index),
            role="primary",
            tenant=tenant,
            headless=True,
            announce=lambda _m: None,
        )
    return tenants


def add_worker(cluster: Any, number: int) -> str:
    """Start one more Celery worker on the cluster's queue, named so task instances show which worker ran them."""
    from tests.scale.worker_identity import WORKER_NAME_VARIABLE

    name = f"{cluster.worker_name}-{number}"
    env = {
        **cluster.env,
        WORKER_NAME_VARIABLE: name,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scale.worker_identity.hostname",
    }
    cluster.spawn(
        f"celery-worker-{number}",
        [
            "celery",
            "worker",
            "--queues",
            cluster.queue,
            "--concurrency",
            str(cluster.worker_concurrency),
            "--celery-hostname",
            f"{name}@%h",
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
    )
    return name


@contextmanager
def running_cluster(
    scratch: Path, crm_url: str, sandbox: Any, workers: int, concurrency: int
) -> Iterator[Any]:
    from bench.databases import fresh_database
    from tests.scale.airflow_cluster import AirflowCluster

    with fresh_database("postgresql", scratch) as metadata:
        cluster = AirflowCluster(
            home=scratch / f"airflow-{workers}w",
            metadata_url=metadata.replace("+psycopg", "+psycopg2"),
            extra_env={"CRM_DATABASE_URL": crm_url, **sandbox.env()},
            worker_concurrency=concurrency,
        )
        try:
            cluster.start()
            for number in range(2, workers + 1):
                add_worker(cluster, number)
            _wait_until_ready(cluster)
            yield cluster
        finally:
            cluster.stop()


def _wait_until_ready(cluster: Any) -> None:
    import httpx

    cluster.wait_for(
        "the api-server", lambda: httpx.get(f"{cluster.api}/api/v2/monitor/health").is_success, 300
    )
    cluster.wait_for(
        "the dag-processor to parse xero_import",
        lambda: cluster.metadata("SELECT 1 FROM serialized_dag WHERE dag_id = 'xero_import'"),
        300,
    )
    with httpx.Client(base_url=f"{cluster.api}/api/v2", timeout=60) as api:
        api.patch("/dags/xero_import", json={"is_paused": False}).raise_for_status()


def run_import(cluster: Any, run_id: str, mode: str) -> dict[str, Any]:
    """Trigger one xero_import over every connection and wait for it; its dag_run row."""
    import httpx

    with httpx.Client(base_url=f"{cluster.api}/api/v2", timeout=60) as api:
        api.post(
            "/dags/xero_import/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": {"mode": mode}},
        ).raise_for_status()
    return cluster.wait_for(
        f"the xero_import run {run_id}",
        lambda: next(
            (
                r
                for r in cluster.metadata(
                    "SELECT state, start_date, end_date FROM dag_run WHERE dag_id = 'xero_import' AND run_id = :r",
                    r=run_id,
                )
                if r["state"] in ("success", "failed")
            ),
            None,
        ),
        RUN_TIMEOUT,
    )


def collect(cluster: Any, crm_url: str, sandbox: Any, run_id: str, since: float) -> dict[str, Any]:
    """What the metadata, the CRM and the sandbox say about one finished run."""
    from sqlalchemy import text

    from xero_crm_sync import db

    tasks = [
        dict(t)
        for t in cluster.metadata(
            "SELECT task_id, map_index, state, hostname, duration FROM task_instance "
            "WHERE dag_id = 'xero_import' AND run_id = :r",
            r=run_id,
        )
    ]
    counters = sandbox.admin.counters()
    with db.get_engine(crm_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.tenant_id, c.tenant_name, r.status, r.started_at, r.finished_at "
                "FROM xero_connection c LEFT JOIN sync_run r "
                "ON r.connection_id = c.id AND r.run_id = :r AND r.kind = 'import' ORDER BY c.id"
            ),
            {"r": run_id},
        ).mappings()
        organisations = []
        for row in rows:
            totals = counters.get(row["tenant_id"], {}).get("totals", {})
            finished, started = row["finished_at"], row["started_at"]
            organisations.append(
                {
                    "tenant": row["tenant_name"],
                    "status": row["status"],
                    "seconds": round((finished - started).total_seconds(), 1)
                    if finished and started
                    else None,
                    "calls": int(totals.get("calls", 0)),
                    "rate_limited": int(totals.get("rate_limited", 0)),
                }
            )
        # The shared limiter's own record of every call admitted, all organisations: the app's rolling minute.
        times = list(
            conn.execute(
                text("SELECT started_at FROM xero_rate_call WHERE started_at >= :s"), {"s": since}
            ).scalars()
        )
    return {"tasks": tasks, "organisations": organisations, "app_busiest_minute": busiest_window(times)}


def measure(
    sandbox: Any, scratch: Path, workers: int, concurrency: int, modes: Sequence[str]
) -> list[dict[str, Any]]:
    from bench.databases import fresh_database

    results = []
    with fresh_database("postgresql", scratch) as crm_url, ExitStack() as stack:
        connect_all(crm_url, sandbox)
        print(f"==> {workers} worker(s) x {concurrency} slot(s): starting the cluster", flush=True)
        cluster = stack.enter_context(running_cluster(scratch, crm_url, sandbox, workers, concurrency))
        for mode in modes:
            run_id = f"many-orgs-{workers}w-{mode}"
            sandbox.admin.reset_counters()
            since = time.time()
            run = run_import(cluster, run_id, mode)
            wall = (run["end_date"] - run["start_date"]).total_seconds()
            figures = collect(cluster, crm_url, sandbox, run_id, since)
            result = summarise(
                workers=workers, concurrency=concurrency, mode=mode, wall_seconds=wall, **figures
            )
            result["state"] = run["state"]
            print(
                f"    {mode}: {run['state']} in {wall:.0f} s (model {result['model_wall_seconds']} s), "
                f"{result['slot_seconds_per_org']} slot s per organisation, {result['calls']} calls, "
                f"{result['rate_limited']} 429s, app's busiest minute {result['app_busiest_minute']} calls",
                flush=True,
            )
            results.append(result)
    return results


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    from xero_sandbox.limits import LimitConfig
    from xero_sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(prog="python -m bench.many_orgs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--contacts", type=int, default=1_000)
    parser.add_argument("--workers", default="1,2", help="Celery worker counts to measure, comma-separated")
    parser.add_argument("--concurrency", type=int, default=1, help="task slots per worker")
    parser.add_argument("--modes", default="full,incremental", help="runs per worker count, in order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=MANY_ORGS_JSON)
    parser.add_argument(
        "--note", default="", help="a sentence to print under the table (e.g. why fewer orgs)"
    )
    parser.add_argument("--no-render", action="store_true", help="do not re-render docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    from bench.databases import postgres_available
    from tests.scale.airflow_cluster import redis_available

    if not postgres_available() or not redis_available():
        raise SystemExit("bench.many_orgs needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")
    # The pipeline refuses to run without a key for secrets at rest; the benchmark's secrets are throwaway.
    os.environ.setdefault("XERO_CRM_FERNET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    modes = [m for m in args.modes.split(",") if m]
    document: dict[str, Any] = {
        "command": "python -m bench.many_orgs " + " ".join(argv if argv is not None else sys.argv[1:]),
        "contacts": args.contacts,
        "load_before": _load_average(),
        "runs": [],
        "note": args.note,
    }
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="xcs-many-orgs-") as scratch,
        SandboxServer(
            mode="subprocess",
            seed=args.seed,
            contacts=args.contacts,
            tenants=args.orgs,
            limits=LimitConfig(enabled=True, minute=60, concurrent=5, app_minute=APP_CALLS_PER_MINUTE),
            auto_consent=True,
            startup_timeout=900,
        ) as sandbox,
    ):
        print(f"sandbox: {args.orgs} organisations x {args.contacts:,} contacts at Xero's limits", flush=True)
        for workers in (int(w) for w in args.workers.split(",") if w):
            document["runs"] += measure(sandbox, Path(scratch), workers, args.concurrency, modes)
    document["bench_seconds"] = round(time.perf_counter() - started, 1)
    document["load_after"] = _load_average()
    document["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.json.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.json} in {document['bench_seconds']:.0f} s", flush=True)
    if not args.no_render and args.json == MANY_ORGS_JSON:
        from bench import run

        run.main(["--render-only"])
    return 0 if all(r["state"] == "success" and not r["rate_limited"] for r in document["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
