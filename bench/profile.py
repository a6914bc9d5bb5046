"""Profile one import the way the figures in bench/NOTES.md were found: pyinstrument over our process, and every SQL
statement slower than a threshold with its time (on PostgreSQL most of an import is the database's work).

    python -m bench.profile --contacts 10000 --database postgresql [--incremental] [--slow 0.3]

Runs a subprocess sandbox (limits off), a fresh CRM database, a full import (and, with --incremental, 1% of
changes and an incremental run, which is what gets profiled then); prints pyinstrument's tree and the slow
statements. Nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def slow_statements(threshold: float) -> Iterator[list[tuple[float, str]]]:
    """Collect (seconds, statement) for every statement slower than `threshold`, on every engine."""
    found: list[tuple[float, str]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        if seconds >= threshold:
            found.append((seconds, " ".join(statement.split())))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    from bench import changes
    from bench.databases import fresh_database
    from bench.scenario import UNPACED, Scenario
    from xero_crm_sync import import_run
    from xero_crm_sync.xero_client import Limits
    from xero_sandbox.limits import LimitConfig
    from xero_sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--database", default="postgresql", choices=("sqlite", "postgresql"))
    parser.add_argument("--incremental", action="store_true", help="profile a 1%% incremental run instead")
    parser.add_argument("--slow", type=float, default=0.3, help="report statements slower than this (s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="xcs-profile-") as scratch:
        scenario = Scenario(args.contacts, args.database, scratch=Path(scratch))
        with (
            SandboxServer(
                mode="subprocess", contacts=args.contacts, limits=LimitConfig(enabled=False)
            ) as sandbox,
            fresh_database(args.database, Path(scratch)) as url,
        ):
            scenario._prepare(sandbox, url)
            engine, limits = scenario.engine, Limits(**UNPACED)

            def one_import(run_id: str, full: bool) -> None:
                extracted = import_run.extract(
                    engine, scenario.store, scenario.info, run_id, full=full, limits=limits
                ).as_dict()
                import_run.validate(engine, extracted)
                import_run.load(engine, extracted, full=full)

            Scenario._gx_startup()  # paid once per process: not what we profile
            if args.incremental:
                one_import("profile-full", True)
                with changes.AccountsTeam(sandbox.url, scenario.info.tenant_id) as team:
                    changes.change_xero(engine, scenario.info.id, team, "profile")
            profiler = Profiler(interval=0.005)
            with slow_statements(args.slow) as slow:
                profiler.start()
                one_import("profile-run", not args.incremental)
                profiler.stop()
    print(profiler.output_text(unicode=False, color=False))
    print(f"Statements slower than {args.slow} s (database time, by duration):")
    for seconds, statement in sorted(slow, reverse=True)[:40]:
        print(f"  {seconds:7.2f} s  {statement[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
