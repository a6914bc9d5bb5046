"""Fault injection: make chosen calls fail the ways Xero (or the network to it) fails.

A rule applies to the next `count` matching calls, or to a `fraction` of them drawn from an RNG seeded per rule
(so a campaign is reproducible). Kinds:

- "500", "503": Xero's error answers; the call is not processed.
- "429": a rate-limit refusal with `X-Rate-Limit-Problem: <problem>` and `Retry-After`; not processed.
- "timeout": hold the request `hold_seconds` (longer than the client waits), then answer 504; not processed.
- "reset": abort the TCP connection (RST) before processing.
- "reset_after": process the call (it is committed, and remembered under its Idempotency-Key), then abort the
  connection so the client never sees the answer: the lost-response case retries must survive.
- "delay": hold the request `hold_seconds`, then process it normally: Xero being slow (its Idempotency-Key is
  already taken while it waits, so a retry meanwhile waits for its answer; it also keeps calls in flight).

A hold ends early when the client disconnects, or when an admin releases every held call (`release_held`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = ("500", "503", "429", "timeout", "reset", "reset_after", "delay")
TARGETS = ("accounting", "identity", "connections", "any")
RATE_LIMIT_PROBLEMS = ("minute", "day", "concurrent", "appminute")


@dataclass
class FaultRule:
    kind: str
    count: int | None = None  # the next N matching calls; None with fraction: indefinitely
    fraction: float | None = None  # probability per matching call
    seed: int = 0
    target: str = "accounting"  # which part of the sandbox: accounting, identity, connections or any
    methods: list[str] | None = None
    path_pattern: str | None = None  # a regex searched in the normalised path
    tenant_id: str | None = None
    hold_seconds: float | None = None  # timeout/delay; default 30 s for timeout, 1 s for delay
    retry_after: int = 1  # 429 only
    problem: str = "minute"  # 429 only
    id: int = 0
    applied: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")
        if self.target not in TARGETS:
            raise ValueError(f"fault target must be one of {', '.join(TARGETS)}")
        if self.problem not in RATE_LIMIT_PROBLEMS:
            raise ValueError(f"429 problem must be one of {', '.join(RATE_LIMIT_PROBLEMS)}")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if self.count is None and self.fraction is None:
            self.count = 1
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        self.methods = [m.upper() for m in self.methods] if self.methods else None
        self._rng = random.Random(self.seed)
        self._regex = re.compile(self.path_pattern) if self.path_pattern else None
        if self.hold_seconds is None:
            self.hold_seconds = 30.0 if self.kind == "timeout" else 1.0

    def matches(self, target: str, method: str, path: str, tenant_id: str | None) -> bool:
        if self.target != "any" and self.target != target:
            return False
        if self.methods and method.upper() not in self.methods:
            return False
        if self.tenant_id and self.tenant_id != tenant_id:
            return False
        return not (self._regex and not self._regex.search(path))

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.count <= 0

    def public_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "seed": self.seed,
            "applied": self.applied,
            "hold_seconds": self.hold_seconds,
        }
        for key in ("count", "fraction", "methods", "path_pattern", "tenant_id"):
            value = getattr(self, key)
            if value is not None:
                view[key] = value
        if self.kind == "429":
            view.update(retry_after=self.retry_after, problem=self.problem)
        return view


class FaultPlan:
    """The active rules, consulted once per call; the first matching rule that fires decides."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._release: asyncio.Event | None = None  # created on the server's loop by the first hold

    def release_signal(self) -> asyncio.Event:
        """What held calls (timeout, delay) also wait for: `release_held()` ends every current hold at once."""
        if self._release is None:
            self._release = asyncio.Event()
        return self._release

    def release_held(self) -> None:
        """End every hold in progress now (call on the server's event loop); later holds wait afresh."""
        if self._release is not None:
            self._release.set()
            self._release = None

    def __getstate__(self) -> dict:
        return {}  # faults are a test-time instrument: a restarted sandbox starts clean

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = next(self._ids)
            self.rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self.rules)
            self.rules = [r for r in self.rules if r.id != rule_id]
            return len(self.rules) != before

    def draw(self, target: str, method: str, path: str, tenant_id: str | None) -> FaultRule | None:
        """The fault to inject into this call, if any (consuming one use of a counted rule)."""
        if not self.rules:
            return None
        with self._lock:
            for rule in self.rules:
                if not rule.matches(target, method, path, tenant_id):
                    continue
                if rule.fraction is not None and rule._rng.random() >= rule.fraction:
                    continue
                if rule.count is not None:
                    if rule.count <= 0:
                        continue
                    rule.count -= 1
                rule.applied += 1
                self.rules = [r for r in self.rules if not r.exhausted]
                return rule
            return None

    def public_view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public_view() for r in self.rules]
