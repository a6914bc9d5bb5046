"""The integration status page (O2, P8) as a FastAPI app: one HTML page, its JSON, and the error actions.

Airflow-free on purpose: who may read and who may act is decided by the two dependencies the caller passes
(`plugins/xero_status_plugin.py` passes Airflow's own authentication and authorisation), so the page is the
same wherever it is mounted.

    GET  /                      the page (filters in the query string: connection_id, direction, record_type,
                                error_status, queue_state)
    GET  /api/status            the same data as JSON
    POST /api/errors/{id}/retry     the next run tries the record again      (needs the write permission and
    POST /api/errors/{id}/dismiss   nobody needs to act on it any more        the X-Requested-With header)

The actions require the `X-Requested-With: xero-status` header, which a cross-site form cannot send, so a page
on another site cannot make a signed-in user's browser retry or dismiss errors (the session is a cookie).
"""

# No `from __future__ import annotations`: the routes' dependency types are built inside create_app, and
# FastAPI resolves postponed (string) annotations in module globals only.
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from xero_crm_sync import status
from xero_crm_sync.status_app import charts

HERE = Path(__file__).parent
ACTION_HEADER = "xero-status"


def _filters(
    # A string: the page's form sends "" for "all".
    connection_id: Annotated[str | None, Query()] = None,
    direction: Annotated[str | None, Query()] = None,
    record_type: Annotated[str | None, Query()] = None,
    error_status: Annotated[str, Query()] = "unresolved",
    queue_state: Annotated[str, Query()] = "pending",
) -> status.Filters:
    try:
        return status.Filters(
            connection_id=int(connection_id) if connection_id else None,
            direction=direction or None,
            record_type=record_type or None,
            error_status=error_status,
            queue_state=queue_state,
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def _webhooks(engine: Engine) -> Any:
    """The webhooks' health for the page's one webhooks block (None when none are configured)."""
    from xero_crm_sync.webhooks.health import webhook_status

    with engine.connect() as conn:
        found = webhook_status(conn)
    return None if found.state == "off" else found


def create_app(
    engine: Callable[[], Engine],
    *,
    reader: Callable[..., Any],
    writer: Callable[..., Any],
    login_url: Callable[[Request], str] | None = None,
) -> FastAPI:
    """The status app. `reader`/`writer`: FastAPI dependencies that return the user's display name or raise
    HTTPException (401: not signed in, 403: not allowed). `login_url`: where a browser that is not signed in is
    sent instead of a bare 401."""
    app = FastAPI(title="Xero integration status", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine  # where the CRM database comes from (the deployment checks which)
    templates = Jinja2Templates(directory=HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    Reader = Annotated[str, Depends(reader)]
    Writer = Annotated[str, Depends(writer)]
    Filtered = Annotated[status.Filters, Depends(_filters)]

    @app.exception_handler(HTTPException)
    async def _refused(request: Request, exc: HTTPException) -> Any:
        wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and wants_page and login_url is not None:
            return RedirectResponse(login_url(request), status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, user: Reader, filters: Filtered) -> HTMLResponse:
        data = status.report(engine(), filters)
        context = {"user": user, "report": data, "filters": filters, "status": status, "charts": charts}
        context["webhooks"] = _webhooks(engine())  # one block: xero_crm_sync.webhooks (docs/WEBHOOKS.md)
        return templates.TemplateResponse(request, "status.html", context)

    @app.get("/api/status")
    def status_json(user: Reader, filters: Filtered) -> dict[str, Any]:
        return status.report(engine(), filters).as_dict()

    def _act(
        action: Callable[[Engine, int, str], dict[str, Any]], error_id: int, user: str
    ) -> dict[str, Any]:
        try:
            return action(engine(), error_id, user)
        except status.ActionRefused as exc:
            raise HTTPException(409, str(exc)) from None

    def _same_site(x_requested_with: Annotated[str | None, Header()] = None) -> None:
        if x_requested_with != ACTION_HEADER:
            raise HTTPException(403, "actions must come from the status page (X-Requested-With header)")

    @app.post("/api/errors/{error_id}/retry", dependencies=[Depends(_same_site)])
    def retry(error_id: int, user: Writer) -> dict[str, Any]:
        return _act(status.retry_error, error_id, user)

    @app.post("/api/errors/{error_id}/dismiss", dependencies=[Depends(_same_site)])
    def dismiss(error_id: int, user: Writer) -> dict[str, Any]:
        return _act(status.dismiss_error, error_id, user)

    return app
