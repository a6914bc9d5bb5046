"""A bare FastAPI app serving only the Accounting router, on a real uvicorn server (127.0.0.1, port 0).

The platform's full app (auth, limits, idempotency) is not needed to test the Accounting API itself: a tiny
middleware sets ``request.state.org`` to the organisation the current test uses, exactly as the platform's does.
One server runs per test session; each test gets a fresh organisation and a clock it can move.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from xero_sandbox.accounting import OrgStore, router

TENANT_ID = "3f1c8a2e-5d4b-4c1a-9e7f-2b6d8c0a4e11"


class ManualClock:
    """Aware-UTC time that only moves when a test says so (so UpdatedDateUTC values are predictable)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class _Holder:
    org: OrgStore | None = None
    provider_name: str | None = None


def build_app(holder: _Holder) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def attach_org(request: Request, call_next):  # the platform's middleware does this after auth
        request.state.org = holder.org
        if holder.provider_name:
            request.state.provider_name = holder.provider_name
        response = await call_next(request)
        response.headers["x-records-returned"] = str(getattr(request.state, "records_returned", "unset"))
        return response

    app.include_router(router, prefix="/api.xro/2.0")
    return app


class LocalServer:
    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def accounting_server() -> Iterator[tuple[str, _Holder]]:
    holder = _Holder()
    server = LocalServer(build_app(holder))
    base = server.start()
    try:
        yield base, holder
    finally:
        server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def org(accounting_server: tuple[str, _Holder], clock: ManualClock) -> Iterator[OrgStore]:
    """A fresh, empty organisation served by the session's server for this test."""
    _, holder = accounting_server
    store = OrgStore(TENANT_ID, "Sandbox Test Ltd", clock=clock.now)
    holder.org, holder.provider_name = store, None
    yield store
    holder.org = None


@pytest.fixture
def serve(accounting_server: tuple[str, _Holder]):
    """Serve a given organisation (e.g. a generated one) instead of the empty default."""
    _, holder = accounting_server

    def use(store: OrgStore) -> OrgStore:
        holder.org = store
        return store

    yield use
    holder.org = None


@pytest.fixture
def api(accounting_server: tuple[str, _Holder]) -> Iterator[httpx.Client]:
    base, _ = accounting_server
    with httpx.Client(base_url=f"{base}/api.xro/2.0", timeout=30) as client:
        yield client
