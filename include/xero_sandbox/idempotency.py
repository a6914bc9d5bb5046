"""Idempotency-Key replay for PUT/POST to the Accounting API, as Xero documents it.

Source: https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/
- "Key re-use is processed per app": a key belongs to the app, across its organisations.
- A repeat of the same request (method, URL with its query, organisation, body) with the same key is not processed:
  the first answer is returned (status, headers, body; errors included: "the error will be cached").
- "If a key has been re-used by the same app on a different request a 400 ... will be returned": any difference
  in method, URL, organisation or body is refused with a ValidationException, never replayed.
- "keys are stored for 6 minutes from the time of the first call, after which they expire. Repeating the same key
  after expiry ... will instead be processed as a new key": `window_seconds` (default 360), measured on the
  sandbox clock, so a test can move the clock past it.
A repeat that arrives while the first is still being processed waits for it rather than racing it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

MAX_KEY_LENGTH = 128
DEFAULT_WINDOW_SECONDS = 360.0  # Xero: "stored for 6 minutes from the time of the first call"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


Key = tuple[str, str]  # (client_id, idempotency key): per app


def fingerprint(tenant_id: str, method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests "the same request" for a key."""
    digest = hashlib.sha256()
    for part in (tenant_id.encode(), method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class KeyReused(Exception):
    """The key was used by this app on a different request within its window."""


@dataclass
class _Entry:
    fingerprint: str
    first_at: float
    response: StoredResponse | None = None  # None while the first call is being processed
    done: asyncio.Event | None = None


class IdempotencyCache:
    """Remembered responses per app and key for `window_seconds` after the first call; oldest evicted past
    `max_entries`."""

    def __init__(self, max_entries: int = 100_000, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        self.max_entries = max_entries
        self.window_seconds = window_seconds
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()

    def __getstate__(self) -> dict:
        kept = OrderedDict(
            (k, _Entry(e.fingerprint, e.first_at, e.response)) for k, e in self._entries.items() if e.response
        )
        return {"max_entries": self.max_entries, "window_seconds": self.window_seconds, "entries": kept}

    def __setstate__(self, state: dict) -> None:
        self.max_entries = state["max_entries"]
        self.window_seconds = state.get("window_seconds", DEFAULT_WINDOW_SECONDS)
        self._entries = state.get("entries") or OrderedDict()

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.response is not None)

    def clear(self) -> None:
        self._entries.clear()

    async def claim(self, key: Key, request_fingerprint: str, now: float) -> StoredResponse | None:
        """The remembered response for `key`, or None when this caller should process the call.

        Raises `KeyReused` when the key is live for a different request. A None answer obliges the caller to
        `store(key, ...)` or `abandon(key)` afterwards. Runs on the event loop only (no lock needed: there is no
        await between the checks and the claim).
        """
        while True:
            entry = self._entries.get(key)
            if (
                entry is not None
                and entry.response is not None
                and now - entry.first_at >= self.window_seconds
            ):
                del self._entries[key]  # expired: the key is new again
                entry = None
            if entry is None:
                self._entries[key] = _Entry(request_fingerprint, now, done=asyncio.Event())
                return None
            if entry.fingerprint != request_fingerprint:
                raise KeyReused
            if entry.response is not None:
                return entry.response
            assert entry.done is not None
            await entry.done.wait()

    def store(self, key: Key, response: StoredResponse) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.response = response
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self._release(entry)

    def abandon(self, key: Key) -> None:
        """The first call produced no response to remember (it failed before the handler answered)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._release(entry)

    @staticmethod
    def _release(entry: _Entry) -> None:
        if entry.done is not None:
            entry.done.set()
            entry.done = None
