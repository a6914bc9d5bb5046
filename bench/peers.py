"""At Xero's real limits: our first sync against its pacing floor, and peers on the same organisation.

    python -m bench.peers --contacts 2500 --who ours,tap-xero          # the peers table
    python -m bench.peers --contacts 100000 --who ours --database postgresql   # target 1: a paced first sync
    python -m bench.peers --contacts 100000 --who ours --timeline /tmp/ours.txt  # ... and where its time goes

The sandbox runs with Xero's limits on (60 calls a minute and 5 at once per organisation: the limits page,
https://developer.xero.com/documentation/guides/oauth2/limits). Calls and 429s are the sandbox's own counts
(`GET /sandbox/counters`), never a client's. Each peer runs in its own process from a cold start:
- ours: `python -m xero_crm_sync import --full` (extract, validate, load: it ends with validated CRM tables);
- tap-xero: Singer's tap from PyPI in its own virtualenv (`xero_sandbox.peers.tap_xero`), every stream selected
  (it ends with JSON lines on stdout: Singer RECORD messages, nothing validated or loaded).

The pacing floor of n calls: call k cannot start before call k - 60 plus 60 s, so the last one starts no earlier
than 60 * floor((n - 1) / 60) s. Results go to bench/peers.json (one entry per peer, size and database, the last
run replacing an earlier one) and into docs/BENCHMARKS.md at the next `python -m bench.run --render-only`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS_JSON = ROOT / "bench" / "peers.json"
PER_MINUTE = 60


def pacing_floor(calls: int, per_minute: int = PER_MINUTE) -> float:
    """Seconds the last of `calls` calls must wait for at `per_minute` in any rolling minute (latency aside)."""
    return 60.0 * ((calls - 1) // per_minute) if calls > 0 else 0.0


def _totals(sandbox: Any, tenant_id: str) -> dict[str, int]:
    snapshot = sandbox.admin.counters(tenant_id)
    totals = snapshot.get(tenant_id, {}).get("totals", {})
    return {"calls": int(totals.get("calls", 0)), "rate_limited": int(totals.get("rate_limited", 0))}


def run_ours(
    sandbox: Any, contacts: int, database: str, scratch: Path, timeline: Path | None = None
) -> dict[str, Any]:
    from bench.databases import fresh_database
    from bench.scenario import Scenario

    with fresh_database(database, scratch) as url:
        scenario = Scenario(contacts, database, scratch=scratch)
        scenario._prepare(sandbox, url)
        tenant_id = scenario.info.tenant_id
        sandbox.admin.reset_counters(tenant_id)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        # Each line our process prints, stamped with the seconds since it started: where the time past the
        # pacing floor goes (the last call, the last validation, the load).
        stamped: list[str] = []
        with subprocess.Popen(
            [sys.executable, "-m", "xero_crm_sync", "import", "--full", "--run-id", "peers-full"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                stamped.append(f"{time.perf_counter() - started:8.1f}  {line.rstrip()}")
            returncode = process.wait(timeout=3600)
        seconds = time.perf_counter() - started
        if timeline is not None:
            timeline.write_text("\n".join(stamped) + "\n", encoding="utf-8")
        if returncode != 0:
            raise RuntimeError("our import failed:\n" + "\n".join(stamped[-40:]))
        counts = _totals(sandbox, tenant_id)
        from sqlalchemy import text

        with scenario.engine.connect() as conn:
            customers = conn.execute(text("SELECT COUNT(*) FROM sales_ledger")).scalar_one()
            invoices = conn.execute(text("SELECT COUNT(*) FROM sales_invoice")).scalar_one()
            quarantined = conn.execute(text("SELECT COUNT(*) FROM quarantined_record")).scalar_one()
    return {
        "who": "xero-crm-sync (this project)",
        "contacts": contacts,
        "database": database,
        **counts,
        "seconds": round(seconds, 1),
        "floor_seconds": pacing_floor(counts["calls"]),
        "ends_with": (
            f"validated CRM tables ({customers:,} customers, {invoices:,} sales invoices; "
            f"{quarantined:,} records quarantined with reasons)"
        ),
    }


def run_tap(sandbox: Any, contacts: int, scratch: Path) -> dict[str, Any]:
    from xero_sandbox.peers import tap_xero  # the helper that builds and runs tap-xero (docs/SANDBOX.md)

    tenant_id = sandbox.admin.tenants()[0]["tenantId"]
    scratch.mkdir(parents=True, exist_ok=True)
    venv = tap_xero.ensure_venv()
    sandbox.admin.reset_counters(tenant_id)
    started = time.perf_counter()
    run = tap_xero.extract(sandbox.url, tenant_id, workdir=scratch, venv=venv)
    seconds = time.perf_counter() - started
    counts = _totals(sandbox, tenant_id)
    records = sum(run.records.values())
    return {
        "who": "Singer tap-xero (PyPI)",
        "contacts": contacts,
        "database": "-",
        **counts,
        "seconds": round(seconds, 1),
        "floor_seconds": pacing_floor(counts["calls"]),
        "ends_with": (
            f"JSON lines on stdout: {records:,} Singer RECORD messages in {len(run.records)} streams, "
            f"nothing validated or loaded{'' if run.streams_completed else ' (the tap did not complete)'}"
        ),
    }


def record(entries: list[dict[str, Any]], path: Path = PEERS_JSON) -> None:
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": []}
    keep = {(e["who"], e["contacts"], e["database"]) for e in entries}
    runs = [r for r in existing["runs"] if (r["who"], r["contacts"], r["database"]) not in keep] + entries
    existing["runs"] = sorted(runs, key=lambda r: (r["contacts"], r["who"], r["database"]))
    existing["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(json.dumps(existing, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    from xero_sandbox.limits import LimitConfig
    from xero_sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=2_500)
    parser.add_argument("--who", default="ours,tap-xero", help="ours, tap-xero (comma-separated)")
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--timeline",
        type=Path,
        help="write our import's output here, each line stamped with its elapsed seconds",
    )
    args = parser.parse_args(argv)
    # The pipeline refuses to run without a key for secrets at rest; the benchmark's secrets are throwaway.
    os.environ.setdefault("XERO_CRM_FERNET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    who = [w for w in args.who.split(",") if w]
    entries = []
    with tempfile.TemporaryDirectory(prefix="xcs-peers-") as scratch:
        for peer in who:
            # A fresh organisation per peer: the same seed gives the same records, and neither sees the other's
            # calls in its minute.
            with SandboxServer(
                mode="subprocess",
                seed=args.seed,
                contacts=args.contacts,
                limits=LimitConfig(enabled=True, minute=PER_MINUTE, concurrent=5),
                auto_consent=True,
                startup_timeout=900,  # generating 100,000 contacts takes minutes on shared cores
            ) as sandbox:
                if peer == "ours":
                    entry = run_ours(sandbox, args.contacts, args.database, Path(scratch), args.timeline)
                elif peer == "tap-xero":
                    entry = run_tap(sandbox, args.contacts, Path(scratch) / "tap")
                else:
                    raise SystemExit(f"unknown peer {peer!r}: use ours or tap-xero")
            print(json.dumps(entry), flush=True)
            entries.append(entry)
    record(entries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
