"""Xero's API rate limits: per app+organisation 60 calls a minute, 5,000 a day, 5 at once; 10,000 a minute per app.

Windows are rolling (a call counts for exactly one window length after it was admitted), measured on the sandbox
clock, and their lengths are configurable so tests can use a one-second "minute". A refused call (429) does not
count against any window. `X-*-Remaining` headers report what is left after the call.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, replace
from typing import Any

from xero_sandbox.clock import Clock


@dataclass
class LimitConfig:
    enabled: bool = True
    minute: int = 60
    day: int = 5000
    concurrent: int = 5
    app_minute: int = 10_000
    window_seconds: float = 60.0  # the length of a "minute"
    day_seconds: float = 86_400.0  # the length of a "day"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """The outcome of admitting one call: `problem` is None when admitted, else the X-Rate-Limit-Problem."""

    problem: str | None
    retry_after: int
    headers: dict[str, str]


class RateLimiter:
    """Rolling-window counters per (app, tenant) and per app, plus in-flight counts for the concurrent limit."""

    def __init__(self, clock: Clock, config: LimitConfig | None = None) -> None:
        self.clock = clock
        # A copy: the admin API changes limits in place, and must never change the caller's (often shared) config.
        self.config = replace(config) if config else LimitConfig()
        self._minute: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._day: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._app_minute: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"config": self.config, "clock": self.clock}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["clock"], state["config"])  # windows are not worth persisting

    def reset(self) -> None:
        with self._lock:
            self._minute.clear()
            self._day.clear()
            self._app_minute.clear()

    @staticmethod
    def _trim(window: deque[float], now: float, length: float) -> None:
        while window and window[0] <= now - length:
            window.popleft()

    @staticmethod
    def _retry_after(window: deque[float], now: float, length: float) -> int:
        # Seconds until the oldest call leaves the window, rounded up (Retry-After is whole seconds).
        return max(1, math.ceil(window[0] + length - now)) if window else 1

    def acquire(self, client_id: str, tenant_id: str) -> Decision:
        """Admit one call (counting it and marking it in flight) or refuse it with the limit it broke.

        An admitted call must be followed by `release(client_id, tenant_id)` when its response is done.
        """
        cfg = self.config
        key = (client_id, tenant_id)
        with self._lock:
            if not cfg.enabled:
                self._in_flight[key] += 1
                return Decision(None, 0, {})
            now = self.clock.timestamp()
            minute, day, app_minute = self._minute[key], self._day[key], self._app_minute[client_id]
            self._trim(minute, now, cfg.window_seconds)
            self._trim(day, now, cfg.day_seconds)
            self._trim(app_minute, now, cfg.window_seconds)
            problem, retry = None, 0
            if self._in_flight[key] >= cfg.concurrent:
                problem, retry = "concurrent", 1
            elif len(app_minute) >= cfg.app_minute:
                problem, retry = "appminute", self._retry_after(app_minute, now, cfg.window_seconds)
            elif len(minute) >= cfg.minute:
                problem, retry = "minute", self._retry_after(minute, now, cfg.window_seconds)
            elif len(day) >= cfg.day:
                problem, retry = "day", self._retry_after(day, now, cfg.day_seconds)
            else:
                minute.append(now)
                day.append(now)
                app_minute.append(now)
                self._in_flight[key] += 1
            headers = {
                "X-DayLimit-Remaining": str(max(0, cfg.day - len(day))),
                "X-MinLimit-Remaining": str(max(0, cfg.minute - len(minute))),
                "X-AppMinLimit-Remaining": str(max(0, cfg.app_minute - len(app_minute))),
            }
            return Decision(problem, retry, headers)

    def release(self, client_id: str, tenant_id: str) -> None:
        with self._lock:
            key = (client_id, tenant_id)
            self._in_flight[key] = max(0, self._in_flight[key] - 1)

    def remaining_headers(self, client_id: str, tenant_id: str) -> dict[str, str]:
        """Current remaining counts without admitting a call (for replayed responses)."""
        cfg = self.config
        if not cfg.enabled:
            return {}
        key = (client_id, tenant_id)
        with self._lock:
            now = self.clock.timestamp()
            minute, day, app_minute = self._minute[key], self._day[key], self._app_minute[client_id]
            self._trim(minute, now, cfg.window_seconds)
            self._trim(day, now, cfg.day_seconds)
            self._trim(app_minute, now, cfg.window_seconds)
            return {
                "X-DayLimit-Remaining": str(max(0, cfg.day - len(day))),
                "X-MinLimit-Remaining": str(max(0, cfg.minute - len(minute))),
                "X-AppMinLimit-Remaining": str(max(0, cfg.app_minute - len(app_minute))),
            }

    def in_flight(self) -> dict[str, int]:
        """Calls in progress per tenant (summed over apps), for admins and tests waiting on concurrency."""
        totals: dict[str, int] = defaultdict(int)
        with self._lock:
            for (_client, tenant), count in self._in_flight.items():
                totals[tenant] += count
        return dict(totals)
