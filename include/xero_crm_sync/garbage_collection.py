"""Python's cyclic garbage collector, paused while an import turns Xero's pages into rows.

A first sync parses, converts and writes millions of dicts, lists and tuples. Each allocation counts towards the
collector's next pass, so it ran over and over, and each older-generation pass walked every object alive (the
pages in flight, pandas, Great Expectations, SQLAlchemy): at 100,000 contacts on SQLite the import's CPU was
236-239 s with the collector and 206-208 s without it (issue 13, fix 27 in bench/NOTES.md). None of those objects
holds a cycle (parsed JSON, staged rows, frames are trees), so reference counting frees them as before; the little
cyclic garbage the libraries make (an exception's traceback, a pooled connection's record) waits for the first
pass after the pause, which `paused` leaves to the collector's own schedule. Reference counting is unaffected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block and back as it was after it (nested pauses keep it off until the outermost
    ends; a caller that had it off already keeps it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
