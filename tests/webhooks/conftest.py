"""Fixtures for the webhook tests: a migrated CRM with a stored webhook key, the receiver served over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from sqlalchemy import Engine, text

from xero_crm_sync import db, migrate
from xero_crm_sync.webhooks import keys
from xero_crm_sync.webhooks.receiver import create_app
from xero_sandbox.server import bind_socket, uvicorn_config
from xero_sandbox.state import DEMO_CLIENT_ID

KEY = "test-webhook-key"


@pytest.fixture
def crm(crm_url: str) -> Engine:
    migrate.migrate(crm_url)
    engine = db.get_engine(crm_url)
    with engine.begin() as conn:
        keys.set_key(conn, DEMO_CLIENT_ID, KEY)
    return engine


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


def event_rows(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT event_category, event_type, resource_id, state FROM webhook_event ORDER BY id")
            ).all()
        ]
