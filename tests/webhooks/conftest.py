"""Fixtures for the webhook tests: a migrated CRM with a stored webhook key, the receiver served over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, text

from xero_crm_sync import db, migrate
from xero_crm_sync.webhooks import keys
from xero_crm_sync.webhooks.receiver import create_app
from xero_sandbox.server import bind_socket, uvicorn_config
from xero_sandbox.state import DEMO_CLIENT_ID

KEY = "test-webhook-key"


@pytest.fixture(scope="module")
def crm_module(crm_url_module: str) -> Engine:
    migrate.migrate(crm_url_module)
    engine = db.get_engine(crm_url_module)
    with engine.begin() as conn:
        keys.set_key(conn, DEMO_CLIENT_ID, KEY)
    return engine


@pytest.fixture
def crm(crm_module: Engine) -> Engine:
    """A migrated CRM with the demo app's webhook key and no events or deliveries yet."""
    with crm_module.begin() as conn:
        conn.execute(text("DELETE FROM webhook_event"))
        conn.execute(
            text("UPDATE webhook_key SET deliveries = 0, last_delivery_at = NULL, last_event_at = NULL")
        )
    return crm_module


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def serve(engine: Engine) -> Served:
    """The receiver app on a free loopback port (real HTTP, as Xero reaches it)."""
    sock = bind_socket()
    server = uvicorn.Server(uvicorn_config(create_app(lambda: engine)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return Served(f"http://127.0.0.1:{sock.getsockname()[1]}/", server, thread)


@pytest.fixture
def receiver(crm: Engine) -> Iterator[Served]:
    served = serve(crm)
    yield served
    served.server.should_exit = True
    served.thread.join(timeout=10)


def contact_update_delivery(resource_id: str, tenant_id: str, event_date: str, entropy: str) -> bytes:
    """The raw body of a Xero delivery holding one contact UPDATE event, in the payload shape of Xero's spec."""
    event = {
        "resourceUrl": "x", "resourceId": resource_id, "tenantId": tenant_id, "tenantType": "ORGANISATION",
        "eventCategory": "CONTACT", "eventType": "UPDATE", "eventDateUtc": event_date,
    }  # fmt: skip
    return json.dumps(
        {"events": [event], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": entropy}
    ).encode()


def event_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT event_category, event_type, resource_id, state FROM webhook_event ORDER BY id")
            ).all()
        ]


@dataclass
class WebhookWorld:
    """A connected pipeline (CRM + sandbox), the receiver on HTTP, the sandbox subscribed to it."""

    pipeline: Any
    receiver: Served
    subscription: Any

    @property
    def org(self) -> Any:
        return self.pipeline.org()

    @property
    def hub(self) -> Any:
        return self.pipeline.sandbox.state.webhooks

    def initial_import(self) -> None:
        from xero_crm_sync import import_run

        p = self.pipeline
        info = p.store.get(p.connections["primary"])
        extracted = import_run.extract(p.engine, p.store, info, "initial", full=True).as_dict()
        import_run.validate(p.engine, extracted)
        import_run.load(p.engine, extracted, full=True)

    def process(self, run_id: str = "webhook-test") -> Any:
        from xero_crm_sync.settings import get_settings
        from xero_crm_sync.webhooks.importer import process_events

        assert self.hub.flush(15)
        p = self.pipeline
        return process_events(p.engine, p.store, get_settings(), run_id)

    def api_calls(self, path_contains: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.pipeline.sandbox.admin.journal(path_contains=path_contains)
            if e["method"] == "GET"
        ]


@pytest.fixture(scope="module")
def world(crm_url_module: str) -> Iterator[WebhookWorld]:
    """One per module and database (setting up costs a full import): tests use different records."""
    from tests.e2e.conftest import NO_LIMITS, build_pipeline
    from xero_sandbox.server import SandboxServer
    from xero_sandbox.state import GRANULAR_CLIENT_ID
    from xero_sandbox.webhooks import WebhookConfig

    sandbox = SandboxServer(contacts=20, limits=NO_LIMITS).start()
    try:
        pipeline = build_pipeline(crm_url_module, sandbox)
        engine = pipeline.engine
        with engine.begin() as conn:
            keys.set_key(conn, GRANULAR_CLIENT_ID, KEY)
        served = serve(engine)
        hub = sandbox.state.webhooks
        hub.config = WebhookConfig(batch_seconds=0.1, retry_base_seconds=0.05, retry_max_seconds=0.2)
        sub = hub.subscribe(GRANULAR_CLIENT_ID, served.url, key=KEY)
        assert hub.validate(sub.id).status == "OK", sub.status_detail
        world = WebhookWorld(pipeline, served, sub)
        world.initial_import()
        yield world
        served.server.should_exit = True
        served.thread.join(timeout=10)
    finally:
        sandbox.stop()
