"""The fault campaign: the whole plan (imports, pushes, orders) against a sandbox that fails a seeded share of
its calls the ways Xero and the network fail, compared with a fault-free run of the same scenario.

Faults (sandbox fault mode, each rule with its own seeded fraction, so a campaign reproduces):
- Accounting API: 500, 503, 429 (Retry-After 1), a held call the client gives up on (timeout), a reset
  connection before processing, a reset *after* processing (the write happened, the answer is lost), and a
  slow write the client gives up on while Xero still processes it (delay) -- its retry meets the same
  Idempotency-Key in progress;
- token endpoint: 500 and lost answers, hit on every run because each run starts with an expired access token
  (the plan moves the sandbox clock 31 minutes before each DAG run, in the reference run too).

The client runs with a short read timeout (a held call costs a second) and short backoff; everything else is
the production code path. Every retry the client makes is logged ("retry N of M"), every failed task too.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.chaos import state
from tests.chaos.tasks import TaskPolicy
from tests.chaos.world import PLAN, PlanStats, Scenario, World, build_world, plan_effects, run_plan
from xero_crm_sync.xero_client import RetryPolicy

# Short timeouts so a held call costs a second; attempts as in production.
CLIENT_RETRY = RetryPolicy(backoff_base=0.05, backoff_max=0.5, timeout=(2.0, 1.0))
ORDER_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_max=0.5, timeout=(2.0, 1.0))

# (kind, fraction, options): about 20% of accounting calls fail; the first rule that fires decides.
ACCOUNTING_FAULTS: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("500", 0.04, {}),
    ("503", 0.04, {}),
    ("429", 0.03, {"retry_after": 1}),
    ("timeout", 0.03, {"hold_seconds": 5}),
    ("reset", 0.03, {}),
    ("reset_after", 0.04, {}),
    ("delay", 0.10, {"hold_seconds": 1.5, "methods": ["PUT", "POST"]}),
)
IDENTITY_FAULTS: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("500", 0.15, {}),
    ("reset_after", 0.15, {}),
)
_RETRY_LINE = re.compile(r"retry (\d+) of (\d+)")


@dataclass
class FaultReport:
    seed: int
    calls: int = 0  # Accounting API calls the sandbox received in the faulty run
    faults: dict[str, int] = field(
        default_factory=dict
    )  # injected, per kind (accounting; "token ..." identity)
    client_retries: int = 0  # "retry N of M" lines the client logged
    rate_limit_waits: int = 0
    worst_retry: tuple[int, int] = (0, 0)  # the highest N of M seen
    plan: PlanStats = field(default_factory=PlanStats)
    crm_diff: dict[str, int] = field(default_factory=dict)
    xero_diff: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    effects: list[str] = field(default_factory=list)  # what the plan failed to do under faults
    explanation: str = ""
    seconds: float = 0.0

    @property
    def injected(self) -> int:
        return sum(self.faults.values())

    @property
    def accounting_faults(self) -> int:
        return sum(n for kind, n in self.faults.items() if not kind.startswith("token"))

    @property
    def difference(self) -> int:
        return state.total(self.crm_diff) + state.total(self.xero_diff) + state.total(self.duplicates)


class _RetryLog(logging.Handler):
    """Counts what the client logs about retries and waits (the evidence that each one is logged)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries: list[tuple[int, int]] = []
        self.rate_limit_waits = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        found = _RETRY_LINE.search(message)
        if found and record.name.startswith("xero_crm_sync"):
            self.retries.append((int(found.group(1)), int(found.group(2))))
        elif "rate limit" in message.lower() and "waiting" in message:
            self.rate_limit_waits += 1


def add_faults(world: World, seed: int, scale: float = 1.0) -> None:
    """Each kind once for certain (the first matching calls), then every rule at its seeded fraction."""
    admin = world.sandbox.admin
    for kind, _fraction, options in ACCOUNTING_FAULTS:
        admin.add_fault(kind, count=1, **options)
    for kind, _fraction, options in IDENTITY_FAULTS:
        admin.add_fault(kind, count=1, target="identity", **options)
    for number, (kind, fraction, options) in enumerate(ACCOUNTING_FAULTS):
        admin.add_fault(kind, fraction=min(1.0, fraction * scale), seed=seed * 100 + number, **options)
    for number, (kind, fraction, options) in enumerate(IDENTITY_FAULTS):
        admin.add_fault(
            kind,
            fraction=min(1.0, fraction * scale),
            seed=seed * 100 + 50 + number,
            target="identity",
            **options,
        )


def injected_faults(world: World) -> dict[str, int]:
    """Faults the sandbox injected, per kind, from its journal ("token <kind>" at the token endpoint)."""
    counts = {kind: 0 for kind, _f, _o in ACCOUNTING_FAULTS} | {
        f"token {k}": 0 for k, _f, _o in IDENTITY_FAULTS
    }
    for entry in world.sandbox.admin.journal():
        if entry.get("fault"):
            kind = entry["fault"] if entry["path"].startswith("/api.xro") else f"token {entry['fault']}"
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def run_campaign(
    scenario: Scenario,
    crm_url: str,
    expected: tuple[dict[str, list[str]], dict[str, list[str]]],
    *,
    seed: int,
    scale: float = 1.0,
) -> FaultReport:
    """The plan under faults, then compared with `expected`: the end state (CRM, Xero) of an uninterrupted,
    fault-free run of the same scenario (`crashes.observe_reference(...).end`)."""
    started = time.perf_counter()
    report = FaultReport(seed=seed)
    world = build_world(scenario, crm_url, TaskPolicy(client=CLIENT_RETRY, orders=ORDER_RETRY))
    handler = _RetryLog()
    logger = logging.getLogger("xero_crm_sync")
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever the caller's logging config, the retries must be seen
    logger.addHandler(handler)
    try:
        world.sandbox.admin.reset_counters()
        add_faults(world, seed, scale)
        run_plan(world, report.plan, stages=PLAN)
        world.sandbox.admin.clear_faults()
        report.faults = injected_faults(world)
        counters = world.sandbox.admin.counters(world.env.tenant_id).get(world.env.tenant_id, {})
        report.calls = counters.get("totals", {}).get("calls", 0)
        crm, xero = world.crm_state(), world.xero_state()
        report.crm_diff = state.diff(expected[0], crm)
        report.xero_diff = state.diff(expected[1], xero)
        report.duplicates = {k: v for k, v in state.duplicates(world.org).items() if v}
        report.effects = plan_effects(world)
        report.explanation = state.explain(expected[0], crm) + "\n" + state.explain(expected[1], xero)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        world.close()
    report.client_retries = len(handler.retries)
    report.rate_limit_waits = handler.rate_limit_waits
    report.worst_retry = max(handler.retries, default=(0, 0))
    report.seconds = round(time.perf_counter() - started, 1)
    return report
