"""The many-organisations benchmark's own logic (bench/many_orgs.py), without a cluster: a real run takes minutes
(a 2 x 50-contact trial: about 9 on 2 shared cores), so the figures it derives and the table a reader gets are
checked here on made-up measurements."""

from __future__ import annotations

import json
from pathlib import Path

from bench import many_orgs, report


def _tasks(orgs: int, hosts: tuple[str, ...]) -> list[dict]:
    tasks = [{"task_id": "list_connections", "state": "success", "hostname": hosts[0], "duration": 4.0}]
    for i in range(orgs):
        for step, seconds in (("extract", 6.0), ("validate", 3.0), ("load", 5.0)):
            tasks.append(
                {"task_id": step, "state": "success", "hostname": hosts[i % len(hosts)], "duration": seconds}
            )
    return tasks


def _orgs(n: int, calls: int = 12) -> list[dict]:
    return [
        {"tenant": f"Org {i}", "status": "success", "seconds": 20.0 + i, "calls": calls, "rate_limited": 0}
        for i in range(n)
    ]


def test_busiest_window_counts_the_fullest_rolling_minute():
    assert many_orgs.busiest_window([]) == 0
    assert many_orgs.busiest_window([0, 10, 59.9, 60, 61, 200]) == 4  # 10 .. 61: 0 has left the window at 60
    assert many_orgs.busiest_window([5.0] * 7) == 7


def test_summary_spreads_slot_time_over_the_slots_and_applies_the_pacing_floor():
    result = many_orgs.summarise(
        workers=2,
        concurrency=1,
        mode="incremental",
        wall_seconds=90.0,
        tasks=_tasks(10, ("w1", "w2")),
        organisations=_orgs(10, calls=61),
        app_busiest_minute=610,
    )
    assert result["slot_seconds"] == 4.0 + 10 * 14.0
    assert result["slot_seconds_per_org"] == 14.4
    assert result["model_wall_seconds"] == 72.0  # 144 slot seconds over 2 slots
    assert result["wall_slot_seconds_per_org"] == 18.0  # 90 s x 2 slots / 10 organisations
    assert result["orgs_per_slot_per_cycle"] == round(300 / 18.0, 1)
    assert result["tasks_per_worker"] == {"w1": 16, "w2": 15}
    assert result["floor_seconds_max"] == 60.0  # 61 calls: the 61st waits for the 1st to leave the minute
    assert result["calls"] == 610 and result["rate_limited"] == 0
    assert result["org_seconds_median"] == 24.5 and result["org_seconds_max"] == 29.0
    # 10,000 calls a minute = 50,000 per five-minute cycle, at 61 calls per organisation and cycle.
    assert result["orgs_at_app_limit"] == 819


def test_app_limit_at_ten_calls_per_five_minutes_is_five_thousand_organisations():
    assert many_orgs.app_limit_organisations(10) == 5_000
    assert many_orgs.app_limit_organisations(0) is None


def test_the_table_lands_in_benchmarks_md_on_every_render(tmp_path: Path):
    run = many_orgs.summarise(
        workers=1,
        concurrency=1,
        mode="full",
        wall_seconds=300.0,
        tasks=_tasks(3, ("w1",)),
        organisations=_orgs(3),
        app_busiest_minute=36,
    )
    document = {"contacts": 1000, "updated_at": "2026-12-05", "runs": [run], "note": "Fewer organisations."}
    (tmp_path / "many_orgs.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "NOTES.md").write_text("## Notes\n", encoding="utf-8")
    markdown = tmp_path / "BENCHMARKS.md"
    measured = json.loads((Path(report.__file__).parent / "results.json").read_text(encoding="utf-8"))
    report.write_outputs(
        measured,
        tmp_path / "results.json",
        markdown,
        tmp_path / "NOTES.md",
    )
    text = markdown.read_text(encoding="utf-8")
    assert "## Many organisations on Celery" in text
    assert "| full | 1 x 1 | 3 x 1,000 | 300 |" in text
    assert "Fewer organisations." in text and "## Notes" in text
