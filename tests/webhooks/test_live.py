"""With the real api-server, scheduler, dag-processor and triggerer: Xero's signed webhook reaches the CRM through
the api-server's /xero-webhooks/ route (no Airflow login) and the xero_webhook_import DAG; an unsigned, badly
signed or replayed post changes nothing there; duplicated and reordered deliveries end in Xero's last edit; a CRM
edit reaches Xero through the xero_crm_changes DAG without the routine push, and Xero's webhook about that write
is recognised as our own and not re-read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.webhook_latency import KEY, LiveAirflow, _codes, crm_to_xero, xero_to_crm
from tests.e2e.conftest import NO_LIMITS, build_pipeline
from tests.webhooks.conftest import WebhookWorld, contact_update_delivery
from xero_crm_sync.webhooks import keys
from xero_sandbox.server import SandboxServer

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAirflow]:
    sandbox = SandboxServer(seed=9, contacts=15, limits=NO_LIMITS).start()
    try:
        pipeline = build_pipeline(f"sqlite:///{tmp_path_factory.mktemp('live')}/crm.db", sandbox)
        WebhookWorld(pipeline, None, None).initial_import()
        with LiveAirflow(pipeline, sandbox) as started:
            yield started
    finally:
        sandbox.stop()


def test_xero_edit_reaches_the_crm_and_crm_edit_reaches_xero(live: LiveAirflow) -> None:
    assert live.subscription["status"] == "OK"  # intent to receive passed against the real api-server
    codes = _codes(live.pipeline, 3)
    # The first event waits for the triggerer to have started the watchers.
    assert xero_to_crm(live, codes[:1], "Live", timeout=180), live.logs()
    # Only xero_webhook_import and xero_crm_changes are unpaused: the routine xero_push never runs here.
    assert crm_to_xero(live, codes[1:2], "live", timeout=120), live.logs()


def test_the_route_needs_no_airflow_login_and_refuses_what_is_not_signed(live: LiveAirflow) -> None:
    assert live.sandbox.admin.flush_webhooks(15)  # Xero's deliveries about earlier tests' edits have landed
    before = live.pipeline.scalar("SELECT COUNT(*) FROM webhook_event")
    assert httpx.post(live.webhook_url, content=b'{"events": []}').status_code == 401
    assert httpx.post(live.webhook_url, content=b'{"events": []}',
                      headers={"x-xero-signature": "bm9wZQ=="}).status_code == 401  # fmt: skip
    assert live.pipeline.scalar("SELECT COUNT(*) FROM webhook_event") == before


def test_a_replayed_delivery_stores_nothing_new(live: LiveAirflow) -> None:
    code = _codes(live.pipeline, 3)[2]
    body = contact_update_delivery(code, live.pipeline.tenants["primary"], "2021-01-01T00:00:00.000", "R")
    signed = {"x-xero-signature": keys.signature(KEY, body)}
    # This contact's events only: Xero's webhook about the earlier tests' push may land meanwhile (it did, 20 ms
    # before the replay, on a slow machine).
    count = "SELECT COUNT(*) FROM webhook_event WHERE resource_id = LOWER(:c)"
    before = live.pipeline.scalar(count, c=code)
    assert [httpx.post(live.webhook_url, content=body, headers=signed).status_code for _ in range(2)] == [
        200,
        200,
    ]
    assert live.pipeline.scalar(count, c=code) == before + 1


def _name(live: LiveAirflow, code: str) -> Any:
    return live.pipeline.scalar("SELECT name FROM sales_ledger WHERE accounting_code = :c", c=code)


def test_duplicated_and_reordered_deliveries_end_in_xeros_last_edit(live: LiveAirflow) -> None:
    admin, subscription = live.sandbox.admin, live.subscription["id"]
    code = _codes(live.pipeline, 4)[3]
    admin.webhook_faults(subscription, duplicate=1.0, reorder=0.5, seed=3)
    try:
        for n in range(4):
            live.pipeline.org().upsert_contacts([{"ContactID": code, "Name": f"Ordered {n} Ltd"}])
            assert admin.flush_webhooks(15)  # each edit its own delivery, some held back behind the next
    finally:
        admin.webhook_faults(subscription)
    stats = next(s for s in admin.webhooks() if s["id"] == subscription)["stats"]
    assert stats["duplicated"] >= 4
    assert live.wait(lambda: _name(live, code) == "Ordered 3 Ltd", 120) is not None, live.logs()


def test_xeros_webhook_about_our_own_push_is_not_re_read(live: LiveAirflow) -> None:
    code = _codes(live.pipeline, 5)[4]
    assert crm_to_xero(live, [code], "echo", timeout=120), live.logs()

    def detail() -> Any:
        return live.pipeline.scalar(
            "SELECT detail FROM webhook_event WHERE resource_id = LOWER(:c) AND state = 'done' ORDER BY id DESC",
            c=code,
        )

    assert live.wait(lambda: (detail() or "").startswith("our own push"), 120) is not None, live.logs()
