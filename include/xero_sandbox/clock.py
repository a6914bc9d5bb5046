"""The sandbox's notion of "now": real UTC time plus an offset that tests and admins can move forward.

Everything that expires in Xero (authorization codes, access and refresh tokens, the refresh grace period,
rate-limit windows) reads this clock, so `advance(seconds)` lets a test jump 31 minutes or 61 days ahead
without sleeping. Time keeps flowing between calls, as it does for the real Xero.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Aware-UTC clock: `now()` is wall time plus every `advance()` so far.

    `start`, when given, pins the first reading (useful for reproducible generated data); time then flows
    from there at the real rate.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = 0.0
        if start is not None:
            if start.tzinfo is None:
                raise ValueError("Clock start must be timezone-aware")
            self._offset = (start - datetime.now(UTC)).total_seconds()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def timestamp(self) -> float:
        """Seconds since the epoch on the sandbox clock (for windows and expiry arithmetic)."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (never back: tokens and windows assume monotonic time); returns the new now."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    @property
    def offset_seconds(self) -> float:
        return self._offset

    def __getstate__(self) -> dict:
        return {"offset": self._offset}

    def __setstate__(self, state: dict) -> None:
        self._offset = state["offset"]
        self._lock = threading.Lock()
