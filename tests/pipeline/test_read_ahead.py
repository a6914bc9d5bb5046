"""Extract reads pages ahead on a thread (prefetch.ReadAhead): same order, errors raised where they happened,
the reader stopped when the consumer stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from xero_crm_sync.prefetch import ReadAhead


class Boom(Exception):
    pass


def test_items_come_in_order_and_the_reader_runs_ahead():
    read: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(1, 6):
            read.append(n)
            yield n

    got = []
    for page in ReadAhead(pages(), depth=2):
        time.sleep(0.05)  # staging the page: meanwhile the reader has fetched the next ones
        if page == 1:
            assert len(read) >= 2
        got.append(page)
    assert got == [1, 2, 3, 4, 5]


def test_an_error_of_the_reader_is_raised_after_the_pages_before_it():
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise Boom("daily limit")

    got = []
    with pytest.raises(Boom, match="daily limit"):
        for page in ReadAhead(pages()):
            got.append(page)
    assert got == [1, 2]


def test_stopping_early_stops_the_reader_before_its_next_call():
    calls = []

    def pages() -> Iterator[int]:
        for n in range(1, 100):
            calls.append(n)
            yield n

    ahead = ReadAhead(pages(), depth=1)
    for page in ahead:
        if page == 2:
            break
    time.sleep(0.3)
    assert len(calls) <= 4  # the two consumed, at most one queued and one in flight
    assert not any(t.name == "xero-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_time_blocked_on_the_reader_is_measured():
    def slow() -> Iterator[int]:
        for n in range(3):
            time.sleep(0.05)
            yield n

    ahead = ReadAhead(slow())
    assert list(ahead) == [0, 1, 2]
    assert ahead.waited >= 0.1


def test_ready_says_whether_the_next_page_is_already_here():
    # Extract commits SQLite's staged pages together only while the next page is here (staging.PageWriter).
    fetched = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        fetched.wait(5)  # the call for page 2 is still in flight
        yield 2

    ahead = ReadAhead(pages(), depth=2)
    items = iter(ahead)
    assert next(items) == 1
    assert not ahead.ready()
    fetched.set()
    deadline = time.monotonic() + 5
    while not ahead.ready() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ahead.ready()
    assert next(items) == 2
    ahead.close()
