"""Idempotency-Key replay for PUT/POST to the Accounting API, keyed per organisation and app.

The first call with a key is processed and its response (status, headers, body) remembered; any repeat with the
same key gets that response again and writes nothing, even when its body differs (Xero matches on the key
alone). A repeat that arrives while the first is still being processed waits for it rather than racing it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


Key = tuple[str, str, str]  # (tenant_id, client_id, idempotency key)


class IdempotencyCache:
    """Remembered responses, oldest evicted past `max_entries`."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._responses: OrderedDict[Key, StoredResponse] = OrderedDict()
        self._pending: dict[Key, asyncio.Event] = {}

    def __getstate__(self) -> dict:
        return {"max_entries": self.max_entries, "responses": self._responses}

    def __setstate__(self, state: dict) -> None:
        self.max_entries = state["max_entries"]
        self._responses = state["responses"]
        self._pending = {}

    def __len__(self) -> int:
        return len(self._responses)

    def clear(self) -> None:
        self._responses.clear()

    async def claim(self, key: Key) -> StoredResponse | None:
        """The remembered response for `key`, or None when this caller should process the call.

        A None answer obliges the caller to `store(key, ...)` or `abandon(key)` afterwards. Runs on the event
        loop only (no lock needed: there is no await between the checks and the claim).
        """
        while True:
            stored = self._responses.get(key)
            if stored is not None:
                return stored
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = asyncio.Event()
                return None
            await pending.wait()

    def store(self, key: Key, response: StoredResponse) -> None:
        self._responses[key] = response
        while len(self._responses) > self.max_entries:
            self._responses.popitem(last=False)
        self._release(key)

    def abandon(self, key: Key) -> None:
        """The first call produced no response to remember (it failed before the handler answered)."""
        self._release(key)

    def _release(self, key: Key) -> None:
        event = self._pending.pop(key, None)
        if event is not None:
            event.set()
