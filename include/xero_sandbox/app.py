"""The sandbox as one ASGI app: Xero's login, identity and API hosts on a single origin, plus /sandbox admin."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from xero_sandbox import admin, identity, webhook_admin
from xero_sandbox.middleware import API_PREFIX, EndpointResolver, PathNormaliser, PlatformMiddleware
from xero_sandbox.state import SandboxState

NOT_FOUND_TEXT = "The resource you're looking for cannot be found"


def create_app(
    state: SandboxState,
    *,
    accounting_router: APIRouter | None = None,
    route_segments: Iterable[str] | None = None,
    state_file: str | Path | None = None,
) -> FastAPI:
    """Build the app serving `state`.

    The Accounting API is `xero_sandbox.accounting.router` unless another router is given (tests of the platform
    alone pass a small one). `state_file` is where POST /sandbox/save writes.
    """
    if accounting_router is None or route_segments is None:
        from xero_sandbox import accounting

        accounting_router = accounting_router or accounting.router
        route_segments = route_segments if route_segments is not None else accounting.ROUTE_SEGMENTS
    app = FastAPI(
        title="Xero sandbox",
        description="A local, wire-compatible Xero: identity, connections and the Accounting API.",
        docs_url="/sandbox/docs",
        openapi_url="/sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.state.state_file = Path(state_file) if state_file else None
    app.include_router(identity.router)
    app.include_router(admin.router)
    app.include_router(webhook_admin.router)
    app.include_router(accounting_router, prefix=API_PREFIX)

    @app.exception_handler(StarletteHTTPException)
    async def xero_not_found(request: Request, exc: StarletteHTTPException) -> Response:
        # A path no route serves, under the API: Xero's bare-sentence 404, not FastAPI's JSON.
        if exc.status_code == 404 and request.url.path.startswith(API_PREFIX + "/"):
            return Response(NOT_FOUND_TEXT, status_code=404, media_type="text/html; charset=utf-8")
        return await http_exception_handler(request, exc)

    @cache
    def endpoints() -> EndpointResolver:
        # Built on first use: by then every route (ours and the accounting router's) is registered.
        return EndpointResolver(
            [r for r in app.routes if getattr(r, "path", "").startswith(API_PREFIX + "/")]
        )

    app.add_middleware(
        PlatformMiddleware,
        state=state,
        normalise=PathNormaliser(route_segments),
        endpoints=endpoints,
    )
    return app
