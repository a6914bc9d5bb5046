"""A webhook run stays while events keep coming (webhooks/drain.py): edits that arrive while it lingers are loaded
by the same run, pass after pass; it ends after `linger` quiet seconds or `max_seconds`, and at once when it finds
nothing. Time is a fake clock that the run's own waits move, so nothing here depends on the machine's speed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.webhooks.conftest import WebhookWorld
from xero_crm_sync.settings import get_settings
from xero_crm_sync.webhooks.drain import drain_events


class FakeTime:
    """A clock moved only by the run's sleeps; `on_sleep[n]` runs during the n-th sleep (an edit in Xero)."""

    def __init__(self, on_sleep: dict[int, Callable[[], None]] | None = None) -> None:
        self.now = 1_000.0
        self.sleeps = 0
        self.on_sleep = on_sleep or {}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.sleeps in self.on_sleep:
            self.on_sleep[self.sleeps]()


def _customer(world: WebhookWorld, n: int) -> dict[str, Any]:
    code = world.pipeline.scalar(
        "SELECT accounting_code FROM sales_ledger WHERE accounting_code IS NOT NULL ORDER BY id LIMIT 1 OFFSET :n",
        n=n,
    )
    return world.org.contacts.get(code)


def _rename(world: WebhookWorld, contact: dict[str, Any], name: str) -> Callable[[], None]:
    def edit() -> None:
        world.org.upsert_contacts([{"ContactID": contact["ContactID"], "Name": name}])
        assert world.hub.flush(15)  # Xero's webhook reaches the receiver, which stores the event

    return edit


def _name(world: WebhookWorld, contact: dict[str, Any]) -> str:
    return world.pipeline.scalar(
        "SELECT name FROM sales_ledger WHERE accounting_code = :c", c=contact["ContactID"]
    )


def _drain(world: WebhookWorld, run_id: str, fake: FakeTime, **options: Any) -> Any:
    p = world.pipeline
    return drain_events(
        p.engine, p.store, get_settings(), run_id, clock=fake.clock, sleep=fake.sleep, poll=0.25, **options
    )


def test_edits_arriving_while_the_run_lingers_are_loaded_by_the_same_run(world: WebhookWorld) -> None:
    first, second, third = (_customer(world, n) for n in range(3))
    _rename(world, first, "Drain First Ltd")()
    # While the run waits after its first pass, Xero changes the second customer (1 s later), then the third.
    fake = FakeTime(
        {4: _rename(world, second, "Drain Second Ltd"), 12: _rename(world, third, "Drain Third Ltd")}
    )
    world.pipeline.sandbox.admin.clear_journal()
    result = _drain(world, "drain-run", fake, linger=5, max_seconds=120)

    assert [_name(world, c) for c in (first, second, third)] == [
        "Drain First Ltd", "Drain Second Ltd", "Drain Third Ltd"
    ]  # fmt: skip
    assert result.passes == 3 and result.events == 3
    # Each pass is a run of its own: the events say which pass loaded them, sync_run has all three.
    assert (
        world.pipeline.scalar("SELECT run_id FROM webhook_event WHERE resource_id = :c", c=third["ContactID"])
        == "drain-run.3"
    )
    runs = world.pipeline.rows("SELECT run_id FROM sync_run WHERE run_id LIKE 'drain-run%' ORDER BY run_id")
    assert [r["run_id"] for r in runs] == ["drain-run", "drain-run.2", "drain-run.3"]
    # One read of contacts by id a pass, counted by the sandbox.
    assert len(world.api_calls("/Contacts")) == 3
    # After the third pass nothing came for `linger` seconds: the run ended then, not before and not later.
    assert fake.sleeps == 12 + 5 * 4


def test_a_run_that_finds_nothing_ends_at_once(world: WebhookWorld) -> None:
    fake = FakeTime()
    result = _drain(world, "drain-nothing", fake, linger=60, max_seconds=240)
    assert (result.passes, result.events, fake.sleeps) == (1, 0, 0)


@pytest.mark.parametrize("linger, max_seconds, waited", [(0, 240, 0.0), (60, 3, 3.0)])
def test_a_run_waits_no_longer_than_its_linger_or_its_longest_run(
    world: WebhookWorld, linger: float, max_seconds: float, waited: float
) -> None:
    contact = _customer(world, 3)
    _rename(world, contact, f"Drain Bounded {linger} Ltd")()
    fake = FakeTime()
    result = _drain(world, f"drain-bounded-{linger}", fake, linger=linger, max_seconds=max_seconds)
    assert result.passes == 1 and result.events == 1
    assert _name(world, contact) == f"Drain Bounded {linger} Ltd"
    assert fake.now - 1_000.0 == waited
