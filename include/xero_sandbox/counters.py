"""Per-organisation, per-endpoint call counters: what a benchmark compares with the theoretical minimum."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EndpointCount:
    calls: int = 0
    rate_limited: int = 0  # 429s given (limits and injected ones)
    records_returned: int = 0
    by_status: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "rate_limited": self.rate_limited,
            "records_returned": self.records_returned,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


class Counters:
    """Counts keyed by tenant and endpoint template ("GET /Contacts/{ContactID}")."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, EndpointCount]] = defaultdict(lambda: defaultdict(EndpointCount))
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def record(self, tenant_id: str, endpoint: str, status: int, records_returned: int) -> None:
        with self._lock:
            count = self._counts[tenant_id][endpoint]
            count.calls += 1
            count.by_status[status] += 1
            if status == 429:
                count.rate_limited += 1
            count.records_returned += records_returned

    def reset(self, tenant_id: str | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._counts.clear()
            else:
                self._counts.pop(tenant_id, None)

    def snapshot(self, tenant_id: str | None = None) -> dict[str, Any]:
        """{tenant: {"totals": {...}, "endpoints": {endpoint: {...}}}} for one tenant or all."""
        with self._lock:
            tenants = [tenant_id] if tenant_id else sorted(self._counts)
            result: dict[str, Any] = {}
            for tid in tenants:
                endpoints = self._counts.get(tid, {})
                totals = {
                    "calls": sum(c.calls for c in endpoints.values()),
                    "rate_limited": sum(c.rate_limited for c in endpoints.values()),
                    "records_returned": sum(c.records_returned for c in endpoints.values()),
                }
                result[tid] = {
                    "totals": totals,
                    "endpoints": {name: c.to_dict() for name, c in sorted(endpoints.items())},
                }
            return result
