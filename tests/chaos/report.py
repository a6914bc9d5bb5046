"""`make chaos`: the fault, crash and bad-input campaigns at full size, with a table of what each did and the
difference from the fault-free state (which must be zero), written to docs/CHAOS.md and printed.

    python -m tests.chaos.report                 # full size: several fault seeds, every step boundary, ...
    python -m tests.chaos.report --quick         # the sizes `make test` uses (a minute or two)
    python -m tests.chaos.report --seed 7        # other random points, other hypothesis examples
    python -m tests.chaos.report --seeds 20      # seeds 7, 8, ... 26: faults and random kill points for each

Every campaign runs with the sandbox's rate limits on (a one-second window, the pipeline's shared limiter set to
the same) and Xero's Idempotency-Key window: every task retry and every new DAG run comes after the sandbox's
clock moved past it, so a retry can never lean on a remembered key.

Exit status 1 when any campaign ends with a difference, a crash, or a plan that silently did nothing. Every seed
is printed, so a failure reproduces (`tests/chaos/test_*.py` show how to run one case).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos import bad_input, crashes, faults, state
from tests.chaos.conftest import SCENARIO as QUICK_SCENARIO
from tests.chaos.tasks import CAMPAIGN_DAGS, dag_plan
from tests.chaos.world import Scenario, sqlite_url
from tests.conftest import PG_AVAILABLE, REPO_ROOT, create_pg_database, drop_pg_database

FULL_SCENARIO = Scenario(seed=11, xero_contacts=60, customers=10, products=6, orders=5)
OUTPUT = REPO_ROOT / "docs" / "CHAOS.md"


@dataclass
class Row:
    campaign: str
    database: str
    seed: int
    tried: str  # what was thrown at the pipeline
    outcome: str  # what it did about it
    difference: int  # rows that differ from the fault-free state, duplicates in Xero, gaps, crashes
    seconds: float

    def cells(self) -> list[str]:
        return [
            self.campaign,
            self.database,
            str(self.seed),
            self.tried,
            self.outcome,
            f"**{self.difference}**",
            f"{self.seconds:.0f}",
        ]


HEADER = ["campaign", "database", "seed", "tried", "outcome", "difference", "seconds"]


def _databases(wanted: list[str]) -> list[str]:
    return [d for d in wanted if d == "sqlite" or PG_AVAILABLE]


class _Database:
    """A fresh CRM database for one campaign run: a SQLite file, or a PostgreSQL database dropped afterwards."""

    def __init__(self, kind: str, directory: Path, name: str) -> None:
        self.kind, self.url = kind, sqlite_url(directory, name) if kind == "sqlite" else create_pg_database()

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        if self.kind == "postgresql":
            drop_pg_database(self.url)


def fault_rows(
    scenario: Scenario, reference: crashes.Reference, seeds: list[int], databases: list[str], work: Path
) -> list[Row]:
    rows = []
    for database in databases:
        for seed in seeds if database == "sqlite" else seeds[:1]:
            with _Database(database, work, f"faults-{seed}") as url:
                report = faults.run_campaign(scenario, url, reference.end, seed=seed)
            kinds = ", ".join(f"{kind} {n}" for kind, n in report.faults.items() if n)
            share = report.accounting_faults / max(report.calls, 1)
            attempt, of = report.worst_retry
            rows.append(
                Row(
                    "faults",
                    database,
                    seed,
                    f"{report.injected} faults in {report.calls} API calls ({share:.0%} of calls; {kinds})",
                    f"{report.client_retries} client retries (worst {attempt} of {of}), "
                    f"{report.rate_limit_waits} rate-limit waits, {len(report.plan.failures)} task retries",
                    report.difference + len(report.effects),
                    report.seconds,
                )
            )
            _explain(rows[-1], report.explanation if report.difference else "", report.effects)
    return rows


def crash_rows(
    scenario: Scenario,
    reference: crashes.Reference,
    seed: int,
    inner: int,
    boundaries: int | None,
    databases: list[str],
    work: Path,
) -> list[Row]:
    rows = []
    for database in databases:
        # Every boundary on SQLite (where each case starts from a snapshot); a sample on PostgreSQL, which
        # replays the plan from the start for each case.
        cases = crashes.choose_cases(
            reference,
            seed=seed,
            boundaries=boundaries if database == "sqlite" else 2,
            inner=inner if database == "sqlite" else 2,
        )
        started = time.perf_counter()
        killed = difference = 0
        for number, case in enumerate(cases):
            with _Database(database, work, f"crash-{number}") as url:
                result = crashes.run_case(case, scenario, url, reference)
            killed += result.killed
            wrong = (
                state.total(result.crm_diff)
                + state.total(result.xero_diff)
                + state.total(result.duplicates)
                + len(result.watermark_gaps)
                + (0 if result.killed else 1)
            )
            difference += wrong
            status = "ok" if not wrong else f"DIFFERENCE {wrong}\n{result.explanation}"
            print(f"  crash {case.name} [seed {seed}, {database}]: {status}", flush=True)
        boundary = sum(1 for c in cases if c.point in ("task.start", "task.end"))
        rows.append(
            Row(
                "crashes (SIGKILL)",
                database,
                seed,
                f"{len(cases)} kills: {boundary} at step boundaries, {len(cases) - boundary} inside tasks",
                f"{killed} processes killed; recovered by task retry or by a new DAG run (alternating)",
                difference,
                time.perf_counter() - started,
            )
        )
    return rows


def bad_input_rows(seed: int, examples: int, databases: list[str], work: Path) -> list[Row]:
    rows = []
    for database in databases:
        with _Database(database, work, "bad-input") as url:
            engine, connection_id = bad_input.prepare_crm(url)
            report = bad_input.campaign(engine, connection_id, examples, seed=seed)
            engine.dispose()
        rows.append(
            Row(
                "bad input (hypothesis)",
                database,
                seed,
                f"{report.examples} pages, {report.records} records, {report.bad} of them tampered with",
                f"{report.quarantined} quarantined with a reason, {report.valid} loaded",
                len(report.crashes) + len(report.problems),
                report.seconds,
            )
        )
        for line in (report.crashes + report.problems)[:20]:
            print(f"  bad input [seed {seed}, {database}]: {line}", flush=True)
    return rows


def _explain(row: Row, explanation: str, effects: list[str]) -> None:
    if explanation.strip() or effects:
        print(
            f"  {row.campaign} [seed {row.seed}, {row.database}]: {explanation.strip()} {effects}", flush=True
        )


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(rows: list[Row], args: argparse.Namespace, scenario: Scenario, seconds: float) -> str:
    total = sum(r.difference for r in rows)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# Chaos report

Written by `make chaos` (`python -m tests.chaos.report{" --quick" if args.quick else ""}`). Do not edit by hand.

Run {when} on {os.cpu_count()} CPUs ({platform.platform()}, Python {platform.python_version()}), seeds
{args.seed} to {args.seed + (args.seeds or 1) - 1},
{seconds / 60:.0f} minutes. Scenario: a generated Xero organisation of {scenario.xero_contacts} contacts (with
items, invoices, credit notes, purchase orders and payments), {scenario.customers} new CRM customers,
{scenario.products} products and {scenario.orders} confirmed orders; the plan runs two imports, two pushes and the
order outbox, with the accounts team's edits in Xero between them. The sandbox's rate limits are on (a one-second
window; the pipeline's shared limiter keeps the same), and every task retry or new DAG run comes after Xero's
6-minute Idempotency-Key window has passed. Each campaign compares its end state with an
uninterrupted, fault-free run of the same plan (the *reference*): every CRM table, every Xero entity, duplicates
in Xero, watermarks past unread data.

**Total difference from the fault-free state: {total}.**

{table(rows)}

- *faults*: the sandbox's fault mode fails a seeded share of calls with 500, 503, 429, a held call the client
  gives up on (timeout), a reset connection before or after processing, and slow writes; 15% of token refreshes
  fail too. `tests/chaos/faults.py`.
- *crashes*: the task's process is SIGKILLed at a step boundary (`task.start`, `task.end`) or at a random crash
  point inside extract, validate, load, push and the order outbox, then recovered as Airflow would (a retry of
  the task, or a new DAG run). `tests/chaos/crashes.py`.
- *bad input*: hypothesis pages of contacts, items and invoices with missing fields, wrong types, huge strings,
  odd unicode, out-of-range dates, repeated IDs, unknown fields and SQL/HTML strings; every bad record must be
  quarantined with its reason, every good one loaded, every string stored verbatim. `tests/chaos/bad_input.py`.
- *difference* counts rows that differ from the reference, duplicates in Xero, watermark gaps, kills that did
  not happen, crashed runs and broken rules.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the sizes make test uses")
    parser.add_argument("--seed", type=int, default=None, help="the first seed (default: drawn and printed)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="how many seeds from --seed on (default: 1 with --quick, else 3)",
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="markdown report ('-' : print only)")
    args = parser.parse_args(argv)
    # Parse the DAGs first: loading them configures Airflow's logging, which the next lines then quiet.
    for dag_id in CAMPAIGN_DAGS:
        dag_plan(dag_id)
    # The campaigns provoke thousands of warnings on purpose (retries, quarantines): the table is the output.
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.root.handlers:
        handler.setLevel(logging.ERROR)
    args.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 100_000)
    databases = _databases(args.databases.split(","))
    scenario = QUICK_SCENARIO if args.quick else FULL_SCENARIO
    count = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if count < 1:
        parser.error("--seeds must be at least 1")
    seeds = [args.seed + n for n in range(count)]
    fault_seeds = seeds
    started = time.perf_counter()
    print(f"chaos campaigns, seed {args.seed}, databases {', '.join(databases)}", flush=True)

    with tempfile.TemporaryDirectory(prefix="xcs-chaos-") as tmp:
        work = Path(tmp)
        print("reference: the plan, uninterrupted and fault-free", flush=True)
        reference = crashes.observe_reference(scenario, sqlite_url(work, "reference"))
        if reference.effects:
            print(f"the reference run did not do what the plan is for: {reference.effects}")
            return 1
        rows = fault_rows(scenario, reference, fault_seeds, databases, work)
        for number, seed in enumerate(seeds):
            # Every step boundary once (first seed); random points inside tasks for every seed.
            rows += crash_rows(
                scenario,
                reference,
                seed,
                inner=4 if args.quick else (24 if number == 0 else 6),
                boundaries=4 if args.quick else (None if number == 0 else 0),
                databases=databases if number == 0 else ["sqlite"],
                work=work,
            )
        rows += bad_input_rows(args.seed, 20 if args.quick else 200, databases, work)

    seconds = time.perf_counter() - started
    print()
    print(table(rows))
    total = sum(r.difference for r in rows)
    print(f"\ntotal difference from the fault-free state: {total} ({seconds / 60:.1f} min, seeds {seeds})")
    for row in rows:
        if row.difference:
            print(
                f"  DIFFERENCE {row.difference} in {row.campaign} on {row.database}: reproduce with --seed {row.seed}"
            )
    if str(args.output) != "-":
        args.output.write_text(write_markdown(rows, args, scenario, seconds))
        shown = args.output.resolve()
        print(f"wrote {shown.relative_to(REPO_ROOT) if shown.is_relative_to(REPO_ROOT) else shown}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
