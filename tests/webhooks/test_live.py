"""With the real api-server, scheduler, dag-processor and triggerer: Xero's signed webhook reaches the CRM through
the api-server's /xero-webhooks/ route (no Airflow login) and the xero_webhook_import DAG; an unsigned post is
refused there; a CRM edit reaches Xero through the xero_crm_changes DAG without the routine push."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench.webhook_latency import LiveAirflow, _codes, crm_to_xero, xero_to_crm
from tests.e2e.conftest import NO_LIMITS, build_pipeline
from tests.webhooks.conftest import WebhookWorld
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
    before = live.pipeline.scalar("SELECT COUNT(*) FROM webhook_event")
    assert httpx.post(live.webhook_url, content=b'{"events": []}').status_code == 401
    assert httpx.post(live.webhook_url, content=b'{"events": []}',
                      headers={"x-xero-signature": "bm9wZQ=="}).status_code == 401  # fmt: skip
    assert live.pipeline.scalar("SELECT COUNT(*) FROM webhook_event") == before
