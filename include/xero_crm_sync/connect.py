"""Connect a Xero organisation (C1): the authorization-code flow with state and PKCE, from a terminal.

1. Build the authorization URL (state + S256 PKCE challenge, the integration's scopes) and print it.
2. Listen on a local redirect (`http://127.0.0.1:<port>/callback`, registered with the Xero app) for Xero's answer.
3. Trade the code for tokens, ask `/connections` which organisations this consent granted (filtered by the
   token's authentication event), let the user pick one (`--tenant`, or a numbered prompt in a terminal), and
   store the connection with its secrets encrypted. Reconnecting the same organisation in the same role
   reuses its row (watermarks, history and queued exports carry on).
`headless=True` fetches the URL itself instead of waiting for a browser: with the sandbox's auto-consent this
runs the same flow end to end with no human (how `make run` and the tests connect).
"""

from __future__ import annotations

import http.server
import logging
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from oauthlib.oauth2 import OAuth2Error

from xero_crm_sync.connections import ROLES, ConnectionConflict, ConnectionStore
from xero_crm_sync.oauth import (
    SCOPES,
    AppCredentials,
    allow_loopback_http,
    authorization_request,
    exchange_code,
    list_tenants,
    token_claims,
)
from xero_crm_sync.settings import Settings

log = logging.getLogger(__name__)


class ConnectError(RuntimeError):
    """The connect flow cannot finish; the message says why and what to do."""


@dataclass
class ConnectResult:
    connection_id: int
    tenant_id: str
    tenant_name: str
    role: str


class _CallbackServer(http.server.HTTPServer):
    callback_url: str | None = None


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the stdlib names it
        if not self.path.startswith("/callback"):
            self.send_error(404)
            return
        host, port = self.server.server_address[:2]
        self.server.callback_url = f"http://{host}:{port}{self.path}"  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"<h1>Connected to Xero</h1><p>You can close this window.</p>")

    def log_message(self, *args: Any) -> None:  # the callback URL carries the code: never log it
        return


class _HeadlessFollower(threading.Thread):
    """What a browser does with the sandbox's auto-consent: follow the redirects to our callback."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.finished = threading.Event()
        self.outcome = ""

    def run(self) -> None:
        try:
            response = requests.get(self.url, timeout=30, allow_redirects=True)
            self.outcome = f"it answered {response.status_code} at {response.url.split('?')[0]}"
        except requests.RequestException as exc:
            self.outcome = type(exc).__name__
        self.finished.set()


def wait_for_callback(
    server: _CallbackServer, timeout: float, follower: _HeadlessFollower | None = None
) -> str:
    """Serve the redirect URI until Xero's answer arrives, `timeout` passes, or the headless follower ended
    without reaching the callback (the sandbox showed an error page instead of redirecting)."""
    server.timeout = 0.5
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while server.callback_url is None and not deadline.is_set():
            server.handle_request()
            if follower is not None and follower.finished.is_set() and server.callback_url is None:
                server.handle_request()  # the redirect may still wait in the listen queue
                if server.callback_url is None:
                    raise ConnectError(f"Xero's authorisation page did not redirect back: {follower.outcome}")
    finally:
        timer.cancel()
    if server.callback_url is None:
        raise ConnectError(f"no answer from Xero on the redirect URI within {timeout:.0f} s")
    return server.callback_url


def operating_company_id(store: ConnectionStore, name: str, *, create: bool) -> int:
    from sqlalchemy import text

    from xero_crm_sync.company_settings import ensure_defaults

    with store.engine.begin() as conn:
        found = conn.execute(text("SELECT id FROM operating_company WHERE name = :n"), {"n": name}).scalar()
        if found is not None:
            return int(found)
        if not create:
            known = [r[0] for r in conn.execute(text("SELECT name FROM operating_company ORDER BY name"))]
            raise ConnectError(
                f"no operating company named {name!r}; known: {', '.join(known) or 'none'} "
                "(pass --create-operating-company to create it)"
            )
        company_id = int(
            conn.execute(
                text("INSERT INTO operating_company (name) VALUES (:n) RETURNING id"), {"n": name}
            ).scalar_one()
        )
        # Its settings' defaults keep their promise from the first import on: S4's "Unassigned" user exists.
        ensure_defaults(conn, company_id)
        return company_id


def pick_tenant(
    tenants: list[dict[str, Any]],
    wanted: str | None,
    choose: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The organisation to connect: `wanted` (name or tenant id), the only one granted, or `choose`'s pick."""
    orgs = [t for t in tenants if t.get("tenantType", "ORGANISATION") == "ORGANISATION"]
    if wanted:
        for tenant in orgs:
            if wanted in (tenant.get("tenantId"), tenant.get("tenantName")):
                return tenant
        raise ConnectError(
            f"organisation {wanted!r} was not granted; granted: "
            + ", ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in orgs)
        )
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise ConnectError("Xero granted no organisation")
    if choose is not None:
        return choose(orgs)
    raise ConnectError(
        "several organisations were granted; choose one with --tenant: "
        + ", ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in orgs)
    )


def connect(
    store: ConnectionStore,
    settings: Settings,
    credentials: AppCredentials,
    *,
    operating_company: str,
    role: str = "primary",
    tenant: str | None = None,
    scopes: str = "granular",
    port: int = 0,
    redirect_host: str = "127.0.0.1",
    headless: bool = False,
    open_browser: bool = False,
    create_operating_company: bool = False,
    timeout: float = 300.0,
    announce: Callable[[str], Any] = print,
    choose: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
) -> ConnectResult:
    """Run the authorization-code flow and store the connection; see the module docstring."""
    if role not in ROLES:
        raise ConnectError("role is primary or secondary")
    if scopes not in SCOPES:
        raise ConnectError(f"scopes is one of {', '.join(SCOPES)}")
    if redirect_host not in ("127.0.0.1", "localhost"):
        raise ConnectError("the redirect listener is local: --redirect-host is 127.0.0.1 or localhost")
    allow_loopback_http(settings.xero_login_url, settings.xero_identity_url, settings.xero_api_url)
    company_id = operating_company_id(store, operating_company, create=create_operating_company)
    server = _CallbackServer(("127.0.0.1", port), _CallbackHandler)
    try:
        # Must match a redirect URI registered with the Xero app exactly (host, port and path).
        redirect_uri = f"http://{redirect_host}:{server.server_address[1]}/callback"
        request = authorization_request(
            settings.authorize_url, credentials.client_id, redirect_uri, SCOPES[scopes]
        )
        announce(f"Open this URL to authorise xero-crm-sync (redirect URI {redirect_uri}):\n{request.url}")
        follower = _HeadlessFollower(request.url) if headless else None
        if follower is not None:
            follower.start()  # our listener receives the callback it is redirected to
        elif open_browser:
            webbrowser.open(request.url)
        callback = wait_for_callback(server, timeout, follower)
    finally:
        server.server_close()
    try:
        token = exchange_code(request, callback, settings.token_url, credentials)
    except (RuntimeError, OAuth2Error) as exc:  # refused consent, state mismatch, code refused
        raise ConnectError(str(exc)) from None
    granted = list_tenants(settings.connections_url, token)
    # Xero lists every organisation the user ever connected to this app; the ones of this consent carry the
    # token's authentication event.
    event = token_claims(token["access_token"]).get("authentication_event_id")
    this_consent = [t for t in granted if event and t.get("authEventId") == event] or granted
    chosen = pick_tenant(granted if tenant else this_consent, tenant, choose)
    try:
        connection_id = store.save_new(
            operating_company_id=company_id,
            role=role,
            tenant_id=chosen["tenantId"],
            tenant_name=chosen.get("tenantName"),
            credentials=credentials,
            token=token,
            scopes=" ".join(SCOPES[scopes]),
        )
    except ConnectionConflict as exc:
        raise ConnectError(str(exc)) from None
    announce(
        f"Connected {chosen.get('tenantName')} ({chosen['tenantId']}) as the {role} organisation of "
        f"{operating_company} (connection {connection_id})."
    )
    return ConnectResult(connection_id, chosen["tenantId"], chosen.get("tenantName") or "", role)
