"""Crash points: named places where a test can make this process die on the spot, as a killed worker does.

`crash_point("extract.page")` does nothing unless the environment variable `XERO_CRM_CRASH_AT` names that point
when the process starts; then the process SIGKILLs itself there: no `finally`, no rollback by Python, no flushed
buffers, exactly what the OOM killer or a lost node does to an Airflow task. The crash tests (`tests/chaos/`) run
one DAG step in a subprocess with a crash point set, rerun the step, and compare the result with an
uninterrupted run.

    XERO_CRM_CRASH_AT=load.step          die at the first time the point is reached
    XERO_CRM_CRASH_AT=extract.page@3     die at the third time (one process counts its own hits)
    XERO_CRM_CRASH_AT=a@2,b              either

Unset (production), a call costs one global lookup and a comparison. `observe()` lets a test list the points a
run passes (in-process, nothing dies), to choose where to crash, or act at one (revoke a token mid-extract).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ENV_VAR = "XERO_CRM_CRASH_AT"


def parse(spec: str) -> dict[str, int]:
    """`"a@2,b"` -> {"a": 2, "b": 1}: which hit of which point kills the process."""
    targets: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, hit = part.partition("@")
        targets[name.strip()] = int(hit) if hit else 1
    return targets


_TARGETS: dict[str, int] | None = parse(os.environ.get(ENV_VAR, "")) or None
_HITS: dict[str, int] = {}
_observer: Callable[[str], None] | None = None


def crash_point(name: str) -> None:
    """Die here (SIGKILL) when `XERO_CRM_CRASH_AT` names this point and hit; otherwise nothing."""
    if _TARGETS is None and _observer is None:
        return
    if _observer is not None:
        _observer(name)
    if _TARGETS is not None and name in _TARGETS:
        hits = _HITS[name] = _HITS.get(name, 0) + 1
        if hits == _TARGETS[name]:
            # Say where, unbuffered (stderr's buffer would die with us), then die without cleanup.
            os.write(2, f"crash point {name}@{hits}: SIGKILL\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def observe(callback: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """Record, in order, every crash point this process passes inside the block (nothing is killed); with
    `callback`, also call it with each point's name (a test making something happen at an exact point)."""
    global _observer
    seen: list[str] = []

    def note(name: str) -> None:
        seen.append(name)
        if callback is not None:
            callback(name)

    previous, _observer = _observer, note
    try:
        yield seen
    finally:
        _observer = previous
