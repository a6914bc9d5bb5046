"""Read ahead: fetch the next pages from Xero while this thread stages the current one.

Extract alternates between waiting for Xero (network, JSON parsing: mostly outside the GIL or in C) and staging a
page (conversion, COPY into the database: the database works on its own core). Done one after the other, each waits
for the other; with a reader thread `depth` pages ahead they overlap, and at Xero's real pacing (60 calls a minute)
our work hides inside the waits between calls.

Nothing about the guarantees changes: pages are handed over in the order Xero sent them, this thread still writes
them (`staging.PageWriter`: SQLite commits pages together only while the next one is already here, `ready()`),
and the watermark is still computed from what was staged. An error raised by the
reader (daily limit, reconnect needed, 403) is raised here, at the page it would have been raised at without
read-ahead; a page the reader fetched but this thread never staged is simply read again by the next run. Closing
the iterator early (an exception in the consumer, a crash point) stops the reader before its next call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


@dataclass
class _Failed:
    error: BaseException


class ReadAhead(Generic[T]):
    """Iterate `source` on a daemon thread, at most `depth` items ahead of the consumer.

    `waited` is the time the consumer spent blocked on the reader: the part of the reads our work did not hide."""

    def __init__(self, source: Iterable[T], depth: int = 2, name: str = "xero-read-ahead") -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self.waited = 0.0

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self._source:
                if not self._put(item) or self._stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))
            return
        self._put(_DONE)

    def start(self) -> ReadAhead[T]:
        """Start reading now (before the consumer asks for the first item); idempotent."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def ready(self) -> bool:
        """Whether the next item (or the end) is already here: taking it will not wait for the reader."""
        return not self._queue.empty()

    def __iter__(self) -> Iterator[T]:
        self.start()
        try:
            while True:
                started = time.perf_counter()
                item = self._queue.get()
                self.waited += time.perf_counter() - started
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the reader (it finishes the call in flight, if any, and makes no other)."""
        self._stop.set()
        self._thread.join(timeout=5)
