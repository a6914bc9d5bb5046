"""The crash campaign: kill a task's process (SIGKILL) at a step boundary or at a point inside extract, load or
push, recover as Airflow does, and compare with an uninterrupted run of the same scenario.

1. `observe_reference`: the plan runs once, uninterrupted, in this process, recording which crash points each
   task passes (`xero_crm_sync.crashpoints.observe`) and the CRM and Xero state after each stage.
2. `choose_cases`: every step boundary (`task.start`, `task.end` of each task of each stage, or a sample of them)
   plus random points inside extract, validate, load, push and orders, drawn with a seeded RNG (the seed is
   printed and kept in each case's name, so a failure reproduces).
3. `run_case`: a fresh world runs the plan up to the stage; the chosen task runs in a subprocess
   (`tests.chaos.step_runner`) with `XERO_CRM_CRASH_AT` naming the point, and must die by SIGKILL there. Then
   recovery, alternating between the two things Airflow does: retry the task (same run id, same XCom), or fail
   the DAG run and start a new one. The stage then completes and the state must equal the reference's after
   that stage: the CRM, Xero, no duplicate in Xero, and no watermark past a change the mirror lacks.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.chaos import state
from tests.chaos.tasks import dag_plan, run_task
from tests.chaos.world import (
    PLAN,
    AbandonRun,
    PlanStats,
    Scenario,
    Snapshot,
    World,
    build_world,
    plan_effects,
    restore,
    run_stage,
    snapshot,
)
from xero_crm_sync import crashpoints, db
from xero_crm_sync.entities import ENTITIES

REPO_ROOT = Path(__file__).resolve().parents[2]
INNER_TASKS = ("extract", "validate", "load", "push_customers", "push_products", "process_outbox")


@dataclass(frozen=True)
class Case:
    stage: str  # the plan stage whose task is killed
    task: str
    point: str  # crash point name (task.start / task.end at the boundaries)
    hit: int  # which hit of the point, counted in the task's process
    recovery: str  # "retry" (Airflow retries the task) or "new run" (a new DAG run)

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.task}@{self.point}#{self.hit} ({self.recovery})"


@dataclass
class Reference:
    """An uninterrupted, fault-free run of the plan: the state after each stage, the crash points each task
    passed, and what the plan failed to do (`world.plan_effects`; must be empty)."""

    states: dict[str, tuple[dict[str, list[str]], dict[str, list[str]]]]
    points: dict[tuple[str, str], list[str]]  # (stage, task) -> crash points passed, in order
    effects: list[str] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)  # the world before each stage (SQLite)

    @property
    def end(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        return self.states[PLAN[-1][0]]


@dataclass
class CaseResult:
    case: Case
    killed: bool = False
    crm_diff: dict[str, int] = field(default_factory=dict)
    xero_diff: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    watermark_gaps: list[str] = field(default_factory=list)
    explanation: str = ""
    seconds: float = 0.0

    @property
    def difference(self) -> int:
        return (
            state.total(self.crm_diff)
            + state.total(self.xero_diff)
            + state.total(self.duplicates)
            + len(self.watermark_gaps)
        )


def _stages_until(stage: str) -> list[tuple[str, str]]:
    labels = [label for label, _ in PLAN]
    return list(PLAN[: labels.index(stage) + 1])


def observe_reference(scenario: Scenario, crm_url: str) -> Reference:
    """The uninterrupted run; on SQLite also a snapshot before each stage, so a case starts where it crashes."""
    world = build_world(scenario, crm_url)
    reference = Reference(states={}, points={})
    keep = Path(db.make_url(crm_url).database).parent if crm_url.startswith("sqlite") else None
    try:

        def observing(stage: str, task: str, run_id: str, xcom: dict[str, Any]) -> dict[str, Any]:
            with crashpoints.observe() as seen:
                result = run_task(task, world.env, run_id, xcom)
            reference.points[(stage, task)] = list(seen)
            return result

        for stage, dag_id in PLAN:
            if keep is not None:
                reference.snapshots[stage] = snapshot(world, keep / f"before-{stage}.db")
            run_stage(world, stage, dag_id, PlanStats(), runner=observing)
            reference.states[stage] = (world.crm_state(), world.xero_state())
        reference.effects = plan_effects(world)
    finally:
        world.close()
    return reference


def choose_cases(
    reference: Reference,
    *,
    seed: int,
    boundaries: int | None,
    inner: int,
    tasks: tuple[str, ...] | None = None,
) -> list[Case]:
    """Step boundaries (all, or `boundaries` of them drawn at random) and `inner` random points inside tasks;
    with `tasks`, one random inner point inside each of those tasks (from any stage) instead."""
    rng = random.Random(seed)
    every_task = [
        (stage, task) for stage, dag_id in PLAN if dag_id != "edits" for task in dag_plan(dag_id).tasks
    ]
    edges = [(stage, task, point) for stage, task in every_task for point in ("task.start", "task.end")]
    if boundaries is not None:
        edges = rng.sample(edges, min(boundaries, len(edges)))
    cases = [Case(stage, task, point, 1, "") for stage, task, point in edges]
    # Inside: a point drawn uniformly among every point any task passes (so long tasks get more crashes).
    inside = [
        (stage, task, index)
        for (stage, task), points in reference.points.items()
        if task in INNER_TASKS
        for index in range(len(points))
    ]
    if tasks is not None:
        picks = [rng.choice([p for p in inside if p[1] == task]) for task in tasks]
    else:
        picks = rng.sample(inside, min(inner, len(inside)))
    for stage, task, index in picks:
        points = reference.points[(stage, task)]
        point = points[index]
        cases.append(Case(stage, task, point, points[: index + 1].count(point), ""))
    return [
        Case(c.stage, c.task, c.point, c.hit, "retry" if number % 2 == 0 else "new run")
        for number, c in enumerate(cases)
    ]


class Killed(Exception):
    """The task's process died (SIGKILL)."""


def run_in_subprocess(
    world: World, task: str, run_id: str, xcom: dict[str, Any], crash_at: str
) -> dict[str, Any]:
    """The task in its own process with a crash point set; its XCom result, or Killed."""
    with tempfile.TemporaryDirectory(prefix="xcs-crash-") as tmp:
        xcom_in, xcom_out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        xcom_in.write_text(json.dumps(xcom, default=str))
        env = {
            **os.environ,
            **world.sandbox.env(),
            "CRM_DATABASE_URL": world.crm_url,
            crashpoints.ENV_VAR: crash_at,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        command = [
            sys.executable, "-m", "tests.chaos.step_runner", "--task", task, "--run-id", run_id,
            "--connection-id", str(world.env.connection_id), "--tenant-id", world.env.tenant_id,
            "--xcom-in", str(xcom_in), "--xcom-out", str(xcom_out),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        if done.returncode == -9:
            raise Killed(f"{task} killed at {crash_at}: {done.stderr.strip().splitlines()[-1:]}")
        if done.returncode != 0:
            raise RuntimeError(
                f"{task} failed in its subprocess (exit {done.returncode}): {done.stderr[-2000:]}"
            )
        return json.loads(xcom_out.read_text())


def run_case(case: Case, scenario: Scenario, crm_url: str, reference: Reference) -> CaseResult:
    started = time.perf_counter()
    result = CaseResult(case)
    saved = reference.snapshots.get(case.stage) if crm_url.startswith("sqlite") else None
    if saved is not None:  # start where the uninterrupted run was before this stage
        world, stages = restore(saved, crm_url), [s for s in PLAN if s[0] == case.stage]
    else:
        world, stages = build_world(scenario, crm_url), _stages_until(case.stage)
    crashed = False

    def runner(stage: str, task: str, run_id: str, xcom: dict[str, Any]) -> dict[str, Any]:
        nonlocal crashed
        if crashed or (stage, task) != (case.stage, case.task):
            return run_task(task, world.env, run_id, xcom)
        crashed = True
        try:
            output = run_in_subprocess(world, task, run_id, xcom, f"{case.point}@{case.hit}")
        except Killed as exc:
            result.killed = True
            if case.recovery == "new run":
                raise AbandonRun(str(exc)) from None
            raise  # a failed try: Airflow retries the task
        return output  # the point was not reached (the case says so: killed stays False)

    try:
        for stage, dag_id in stages:
            run_stage(world, stage, dag_id, PlanStats(), runner=runner)
        expected_crm, expected_xero = reference.states[case.stage]
        crm, xero = world.crm_state(), world.xero_state()
        result.crm_diff = state.diff(expected_crm, crm)
        result.xero_diff = state.diff(expected_xero, xero)
        result.duplicates = {k: v for k, v in state.duplicates(world.org).items() if v}
        result.watermark_gaps = watermark_gaps(world)
        result.explanation = state.explain(expected_crm, crm) + "\n" + state.explain(expected_xero, xero)
    finally:
        world.close()
    result.seconds = round(time.perf_counter() - started, 1)
    return result


def watermark_gaps(world: World) -> list[str]:
    """Xero records changed at or before their entity's watermark that the mirror (val_*) does not hold in that
    version: what the next incremental read would skip for ever. Quarantined versions count as held."""
    gaps: list[str] = []
    with world.engine.connect() as conn:
        marks = dict(
            conn.execute(
                text("SELECT entity, watermark_at FROM sync_watermark WHERE connection_id = :c"),
                {"c": world.env.connection_id},
            ).all()
        )
        for entity in ENTITIES:
            mark = marks.get(entity.name)
            if not entity.modified_since or mark is None:
                continue
            mark = mark if isinstance(mark, datetime) else datetime.fromisoformat(str(mark))
            mirrored = {
                str(x).lower(): u if isinstance(u, datetime) or u is None else datetime.fromisoformat(str(u))
                for x, u in conn.execute(
                    text(
                        f"SELECT xero_id, updated_date_utc FROM {entity.validated_table} WHERE connection_id = :c"
                    ),
                    {"c": world.env.connection_id},
                )
            }
            held = {
                str(x).lower()
                for (x,) in conn.execute(
                    text("SELECT xero_id FROM quarantined_record WHERE connection_id = :c AND entity = :e"),
                    {"c": world.env.connection_id, "e": entity.name},
                )
                if x
            }
            key = entity.key
            for record in world.org.collection(entity.collection).values():
                updated = record.get("UpdatedDateUTC")
                if not isinstance(updated, datetime):
                    continue
                updated = updated.astimezone(UTC).replace(tzinfo=None)
                if updated > mark:
                    continue  # after the watermark: the next run reads it
                xero_id = str(record[key]).lower()
                have = mirrored.get(xero_id)
                if xero_id in held:
                    continue
                if have is None or abs((have - updated).total_seconds()) >= 1:
                    gaps.append(
                        f"{entity.name} {xero_id} changed {updated} <= watermark {mark}, mirror has {have}"
                    )
    return gaps
