"""`make bench`: the import and the push at 1,000 / 10,000 / 100,000 contacts, on SQLite and PostgreSQL.

    python -m bench.run                                # everything (about 20 minutes on 2 cores)
    python -m bench.run --sizes 1000,10000 --databases postgresql --repeats 1   # a quick look

Every scenario (one size on one database, see bench/scenario.py) runs in a fresh Python process, so its peak
memory and one-off start-up costs are its own; sizes up to 10,000 run `--repeats` times (3) and the medians are
reported, 100,000 runs once. Writes bench/results.json and docs/BENCHMARKS.md (the table and the targets).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.databases import KINDS, PG_ADMIN_URL, postgres_available

ROOT = Path(__file__).resolve().parents[1]
RESULTS_JSON = ROOT / "bench" / "results.json"
BENCHMARKS_MD = ROOT / "docs" / "BENCHMARKS.md"
NOTES_MD = ROOT / "bench" / "NOTES.md"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
SCENARIO_TIMEOUT = 3600  # seconds, per scenario process


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in DEFAULT_SIZES), help="contacts, comma-separated"
    )
    parser.add_argument("--databases", default=",".join(KINDS), help="sqlite,postgresql")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of sizes up to 10,000 (medians reported)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=RESULTS_JSON, help="where the raw figures go")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="where the table goes")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the markdown from the JSON file (after editing NOTES.md)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="RESULTS_JSON",
        help="write one report from the scenarios of several runs (e.g. 1k/10k early, 100k later)",
    )
    # Internal: run one scenario in this process and write its result to a file.
    parser.add_argument("--one", nargs=2, metavar=("CONTACTS", "DATABASE"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def run_one(contacts: int, database: str, seed: int, result_path: Path) -> None:
    from bench.scenario import Scenario

    with tempfile.TemporaryDirectory(prefix="xcs-bench-") as scratch:
        result = Scenario(contacts, database, seed=seed, scratch=Path(scratch)).run()
    result_path.write_text(json.dumps(result), encoding="utf-8")


def spawn(contacts: int, database: str, seed: int, env: dict[str, str]) -> dict[str, Any]:
    """One scenario in a child process; its result, or an error that says where to look."""
    with tempfile.TemporaryDirectory(prefix="xcs-bench-run-") as tmp:
        result_path = Path(tmp) / "result.json"
        log_path = Path(tmp) / "scenario.log"
        command = [sys.executable, "-m", "bench.run", "--one", str(contacts), database, "--seed", str(seed)]
        command += ["--result", str(result_path)]
        with log_path.open("w") as log:
            code = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=SCENARIO_TIMEOUT,
                check=False,
            ).returncode
        if code != 0 or not result_path.exists():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"scenario {contacts} contacts on {database} failed (exit {code}):\n{tail}")
        return json.loads(result_path.read_text())


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The pipeline refuses to run without a key for secrets at rest; the benchmark's secrets are throwaway.
    env.setdefault("XERO_CRM_FERNET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "-"


def _postgres_version() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return str(version).split(" ")[0]
    except Exception:  # reported as unknown, the run goes on
        return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.one:
        run_one(int(args.one[0]), args.one[1], args.seed, args.result)
        return 0
    if args.merge:
        documents = [json.loads(path.read_text(encoding="utf-8")) for path in args.merge]
        scenarios = [s for d in documents for s in d["scenarios"]]
        results = report.aggregate(scenarios)
        merged = {
            **documents[-1],
            "command": " + ".join(d["command"] for d in documents),
            # Each run's own command, so the report can say that its rows come from different runs.
            "merged_from": [c for d in documents for c in d.get("merged_from") or d["command"].split(" + ")],
            "bench_seconds": round(sum(d["bench_seconds"] for d in documents), 1),
            "results": results,
            "targets": report.check_targets(results, documents[-1]["machine"].get("cpus")),
            "scenarios": scenarios,
            "failures": [f for d in documents for f in d["failures"]],
        }
        report.write_outputs(merged, args.json, args.markdown, NOTES_MD)
        print(f"wrote {args.markdown} and {args.json} from {len(documents)} runs")
        return 0
    if args.render_only:
        document = json.loads(args.json.read_text(encoding="utf-8"))
        document["targets"] = report.check_targets(document["results"], document["machine"].get("cpus"))
        report.write_outputs(document, args.json, args.markdown, NOTES_MD)
        print(f"wrote {args.markdown} from {args.json}")
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    databases = [d for d in args.databases.split(",") if d]
    unknown = set(databases) - set(KINDS)
    if unknown:
        raise SystemExit(f"unknown database {sorted(unknown)}: use {', '.join(KINDS)}")
    if "postgresql" in databases and not postgres_available():
        raise SystemExit(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (set BENCH_POSTGRES_URL)")
    env = _environment()
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "postgresql": _postgres_version() if "postgresql" in databases else None,
        "load_before": _load_average(),
    }
    started = time.perf_counter()
    scenarios: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for contacts in sizes:
        repeats = args.repeats if contacts <= 10_000 else 1
        for database in databases:
            for repeat in range(repeats):
                print(f"==> {contacts:,} contacts on {database} ({repeat + 1}/{repeats})", flush=True)
                try:
                    result = spawn(contacts, database, args.seed, env)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    # One failed scenario must not lose the others' figures: recorded, reported, run goes on.
                    print(f"    FAILED: {exc}", flush=True)
                    failures.append({"contacts": contacts, "database": database, "error": str(exc)[-3000:]})
                    continue
                full = result["runs"]["full"]
                print(
                    f"    full import: own {full['own_wall']:.1f} s, CPU {full['cpu']:.1f} s, "
                    f"calls {full['calls']}/{full['fewest']}, peak RSS {result['process_peak_rss_mb']:.0f} MiB "
                    f"(scenario {result['scenario_seconds']:.0f} s)",
                    flush=True,
                )
                scenarios.append(result)
    machine["load_after"] = _load_average()
    results = report.aggregate(scenarios)
    document = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "bench_seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "results": results,
        "targets": report.check_targets(results, machine["cpus"]),
        "scenarios": scenarios,
        "failures": failures,
    }
    report.write_outputs(document, args.json, args.markdown, NOTES_MD)
    missed = [t for t in document["targets"] if t["met"] is False]
    for failure in failures:
        print(f"  FAILED scenario: {failure['contacts']:,} contacts on {failure['database']}")
    print(
        f"wrote {args.markdown} and {args.json} in {document['bench_seconds']:.0f} s; "
        f"{len(document['targets']) - len(missed)} of {len(document['targets'])} target checks met"
    )
    for target in missed:
        print(
            f"  missed: {target['target']} ({target['where']}): {target['measured']} (goal {target['goal']})"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
