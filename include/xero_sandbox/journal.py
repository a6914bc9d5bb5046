"""What the sandbox received: the last N requests, so tests can assert exactly what "Xero" was sent."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class JournalEntry:
    seq: int
    at: str  # ISO time on the sandbox clock
    method: str
    path: str  # normalised (canonical casing)
    query: str
    status: int
    tenant_id: str | None = None
    client_id: str | None = None
    idempotency_key: str | None = None
    body: Any = None  # parsed JSON, a form dict (secrets masked) or text; None when empty
    fault: str | None = None  # the injected fault kind, when one was
    replayed: bool = False  # answered from the Idempotency-Key store

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class RequestJournal:
    """A bounded, thread-safe log of requests (oldest dropped first)."""

    def __init__(self, max_entries: int = 1000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._seq = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"max_entries": self._entries.maxlen}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_entries"])

    @property
    def max_entries(self) -> int:
        return self._entries.maxlen or 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def add(self, entry: JournalEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(
        self,
        *,
        tenant_id: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        since_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Matching entries, oldest first; `limit` keeps the most recent ones."""
        with self._lock:
            items: Iterable[JournalEntry] = list(self._entries)
        result = [
            e
            for e in items
            if (tenant_id is None or e.tenant_id == tenant_id)
            and (method is None or e.method == method.upper())
            and (path_contains is None or path_contains.lower() in e.path.lower())
            and (since_seq is None or e.seq > since_seq)
        ]
        return result[-limit:] if limit else result
