"""Measuring our own work apart from everyone else's: wall and CPU time per stage, peak RSS, other processes' CPU.

CPU comes from `time.process_time()` (this process, every thread), so the sandbox (its own process) and
PostgreSQL (its own server processes) never count as ours; their CPU is read from their processes with psutil
and reported next to ours. Peak memory is sampled from this process's RSS by a background thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass
class Span:
    """Accumulated time of one stage: it may be entered many times (once per page)."""

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0

    def add(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu
        self.calls += 1


@dataclass
class StageClock:
    """Wall and CPU time per named stage. Stages must not nest (each moment belongs to one stage)."""

    spans: dict[str, Span] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, amount: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.spans.setdefault(name, Span()).add(time.perf_counter() - wall0, time.process_time() - cpu0)

    def get(self, name: str) -> Span:
        return self.spans.get(name, Span())


class RssSampler:
    """Peak resident memory of this process, sampled every `interval` seconds on a daemon thread.

    `peak()` is the largest sample since the last `reset()`, so each stage can report its own peak."""

    def __init__(self, interval: float = 0.02) -> None:
        self._proc = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> int:
        rss = self._proc.memory_info().rss
        if rss > self._peak:
            self._peak = rss
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def reset(self) -> None:
        self._peak = 0
        self._sample()

    def peak(self) -> int:
        self._sample()
        return self._peak


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the given processes (and their children); processes that are gone count zero."""
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class ProcessCpu:
    """CPU used by a changing set of processes between two readings (e.g. PostgreSQL backends of one database).

    Backends that appear between readings count from zero; ones that exit lose what they used since the last
    reading, which is why the set is re-read at every stage boundary."""

    def __init__(self, pids: Any) -> None:
        self._pids = pids  # a callable returning the current pids
        self._last: dict[int, float] = {}

    def _read(self) -> dict[int, float]:
        return {pid: cpu_seconds([pid]) for pid in self._pids()}

    def mark(self) -> None:
        self._last = self._read()

    def since_mark(self) -> float:
        now = self._read()
        used = sum(max(0.0, cpu - self._last.get(pid, 0.0)) for pid, cpu in now.items())
        self._last = now
        return used


MIB = 1024 * 1024
