"""The benchmark harness's own logic (no timing here: speed targets live in bench/): medians over repeats, the
targets checked against what was measured, the report a reader gets, the stage split, the 1% pick."""

from __future__ import annotations

import copy
import time

from bench import changes, report
from bench.instrument import instrumented
from bench.measure import StageClock


def _stage(wall: float, rows_per_second: int | None = None) -> dict:
    return {
        "wall": wall,
        "cpu": wall / 2,
        "records": 100,
        "records_per_second": 100,
        "rows": 500,
        "rows_per_second": rows_per_second,
        "peak_rss_mb": 300.0,
    }


def scenario(contacts: int, database: str, *, own: float = 30.0, calls: int = 12, rss: float = 400.0) -> dict:
    def run(kind: str, stages: tuple[str, ...], calls_used: int, fewest: int, changed: int = 0) -> dict:
        seconds = own if kind == "full" else own / 20
        return {
            "kind": kind,
            "stages": {s: _stage(0.5, 30_000) for s in stages},
            "wall": seconds,
            "cpu": seconds / 2,
            "own_wall": seconds,
            "xero_wait": 0.5,
            "calls": calls_used,
            "fewest": fewest,
            "records": 100,
            "rows": 500,
            "changed": changed,
            "sandbox_cpu": 1.0,
            "db_cpu": None,
            "peak_rss_mb": rss,
            "detail": {
                "entities": {f"e{i}": {} for i in range(10)},
                "gx_used": kind != "incremental_unchanged",
            },
        }

    imports = ("extract", "stage", "validate", "load")
    return {
        "contacts": contacts,
        "database": database,
        "organisation": {"line_rows": 400},
        "gx_startup_seconds": 9.0,
        "process_peak_rss_mb": rss,
        "runs": {
            "full": run("full", imports, calls, 12),
            "incremental_unchanged": run("incremental_unchanged", imports, 10, 10),
            "incremental_1pct": run("incremental_1pct", imports, 10, 10, changed=30),
            "push_unchanged": run("push_unchanged", ("push_diff", "push"), 0, 0),
            "push_1pct": run("push_1pct", ("push_diff", "push"), 2, 2, changed=8),
        },
    }


def test_repeats_are_reported_as_medians():
    runs = [scenario(1000, "sqlite", own=x) for x in (10.0, 30.0, 11.0)]
    (merged,) = report.aggregate(runs)
    assert merged["repeats"] == 3
    assert merged["runs"]["full"]["own_wall"] == 11.0
    assert merged["runs"]["full"]["calls"] == 12


def test_targets_pass_when_met_and_fail_when_missed():
    good = report.aggregate([scenario(100_000, "postgresql", own=30.0)])
    assert all(c["met"] for c in report.check_targets(good))

    slow = scenario(100_000, "postgresql", own=75.0, calls=13, rss=1500.0)
    slow["runs"]["full"]["stages"]["stage"]["rows_per_second"] = 5_000
    missed = {c["target"] for c in report.check_targets(report.aggregate([slow])) if c["met"] is False}
    assert "API calls of the full import = fewest possible" in missed
    assert "full import: our own processing" in missed
    assert "peak RSS" in missed
    assert "stage sustains 20,000 records a second (full import, PostgreSQL)" in missed


def test_a_run_that_needed_great_expectations_pays_its_start_up():
    needed = scenario(100_000, "sqlite")
    needed["runs"]["incremental_unchanged"]["detail"]["gx_used"] = True
    checks = {c["target"]: c for c in report.check_targets(report.aggregate([needed]))}
    unchanged = checks["incremental with nothing changed: our own processing, GX start-up included"]
    assert unchanged["met"] is False and "GX start-up 9.0 s" in unchanged["measured"]


def test_the_report_has_a_table_per_database_and_says_what_was_missed():
    slow = scenario(100_000, "postgresql", own=75.0)
    results = report.aggregate([scenario(1000, "sqlite"), slow])
    document = {
        "generated_at": "now",
        "machine": {"cpus": 2, "platform": "linux", "python": "3.11", "load_before": "1", "load_after": "2"},
        "results": results,
        "targets": report.check_targets(results),
    }
    text = report.render_markdown(document, "## Notes\n\nhand-written")
    assert "## sqlite" in text and "## postgresql" in text
    assert "| 100,000 |" in text and "| 1,000 |" in text
    assert "full import: our own processing | 100,000 contacts, postgresql | 75.0 s" in text
    assert "**no**" in text
    assert text.rstrip().endswith("hand-written")


def test_a_merged_report_names_the_runs_its_rows_come_from():
    results = report.aggregate([scenario(1000, "sqlite")])
    document = {
        "generated_at": "now",
        "machine": {"cpus": 2, "platform": "linux", "python": "3.11", "load_before": "1", "load_after": "2"},
        "results": results,
        "targets": report.check_targets(results),
    }
    assert "Merged from" not in report.render_markdown(document)
    merged = {
        **document,
        "merged_from": ["python -m bench.run --sizes 1000", "python -m bench.run --sizes 100000"],
    }
    text = report.render_markdown(merged)
    assert "Merged from 2 runs" in text
    assert "- `python -m bench.run --sizes 100000`" in text


def test_stages_are_split_by_wrapping_and_the_originals_come_back():
    from xero_crm_sync import staging

    original = staging.stage_page
    clock = StageClock()
    with instrumented(clock):
        assert staging.stage_page is not original
        staging.stage_page(staging.ENTITIES[0], [], staging.RunContext("r", 1, staging.now_utc_naive()))
    assert staging.stage_page is original
    assert clock.get("stage").calls == 1


def test_stage_clock_accumulates_wall_and_cpu():
    clock = StageClock()
    for _ in range(2):
        with clock.stage("busy"):
            deadline = time.process_time() + 0.02
            while time.process_time() < deadline:
                pass
    busy = clock.get("busy")
    assert busy.calls == 2 and busy.cpu >= 0.04 and busy.wall >= busy.cpu * 0.5


def test_one_percent_is_spread_over_the_ids_and_deterministic():
    ids = list(range(1000))
    picked = changes.pick_every(ids, changes.one_percent(len(ids)))
    assert len(picked) == 10 and picked == changes.pick_every(copy.copy(ids), 10)
    assert picked[0] == 0 and picked[-1] >= 900
    assert changes.one_percent(50) == 1 and changes.pick_every([], 3) == []


def test_the_pacing_floor_and_the_peers_table():
    from bench import peers

    assert [peers.pacing_floor(n) for n in (0, 12, 60, 61, 423)] == [0.0, 0.0, 0.0, 60.0, 420.0]
    run = {"who": "tap", "contacts": 2500, "database": "-", "calls": 119, "rate_limited": 0, "seconds": 122.0}
    text = report.render_peers({"runs": [{**run, "floor_seconds": 60.0, "ends_with": "JSON lines"}]})
    assert "| tap | 2,500 | - | 119 | 0 | 122.0 | 60 | 2.03 | JSON lines |" in text


def test_the_full_import_reports_its_cpu_floor_on_the_machines_cores():
    # 60 s of our CPU and 80 s of the database's cannot finish in less than 70 s on 2 cores, whatever overlaps.
    run = scenario(100_000, "postgresql", own=110.0)
    run["runs"]["full"].update(cpu=60.0, db_cpu=80.0)
    results = report.aggregate([run])
    checks = {c["target"]: c for c in report.check_targets(results, cpus=2)}
    full = checks["full import: our own processing"]
    assert full["measured"] == "110.0 s (CPU 60.0 s, database 80.0 s; CPU floor on 2 cores 70.0 s)"
    assert full["met"] is False
    document = {
        "generated_at": "now",
        "machine": {"cpus": 2, "platform": "linux", "python": "3.11", "load_before": "1", "load_after": "2"},
        "results": results,
        "targets": list(checks.values()),
    }
    assert "- CPU floor: every CPU second of the import" in report.render_markdown(document, "")
    # Without the core count (an older results file) the figure is left out, not guessed.
    unknown_cores = {c["target"]: c for c in report.check_targets(results)}
    assert "floor" not in unknown_cores["full import: our own processing"]["measured"]
