"""HTTP face of Xero's login and identity hosts and the connections endpoint (rules live in `oauth.py`).

- GET  /identity/connect/authorize          login.xero.com: consent page, or an immediate redirect (auto-consent)
- POST /identity/connect/authorize/consent  the consent form's answer
- POST /connect/token                       identity.xero.com: authorization_code and refresh_token grants
- POST /connect/revocation                  identity.xero.com: RFC 7009 revocation
- GET  /connections, DELETE /connections/{id}   api.xero.com (also /Connections: paths are case-insensitive)
- GET  /.well-known/openid-configuration(/jwks) discovery, so OIDC clients can verify id_tokens
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from xero_sandbox import problems
from xero_sandbox.oauth import App, AuthResult, OAuthError, TokenInvalid, User, redirect_uri_matches
from xero_sandbox.scopes import parse_scope, refused_scopes, wants_organisation_access
from xero_sandbox.state import SandboxState

router = APIRouter()

_SCOPE_LABELS = {
    "openid": "Your identity",
    "profile": "Your name",
    "email": "Your email address",
    "offline_access": "Access while you are offline",
}


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _answer(answer: problems.Answer) -> Response:
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v]
    return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), status_code=302)


def _error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


class AuthorizeRequest:
    """A validated authorize request, or the answer to give instead (`error_response`)."""

    def __init__(self, state: SandboxState, params: dict[str, str]) -> None:
        self.params = params
        self.app: App | None = None
        self.user: User | None = None
        self.scopes: list[str] = []
        self.error_response: Response | None = None
        self._validate(state)

    def _fail_redirect(self, error: str) -> None:
        self.error_response = _redirect(
            self.params["redirect_uri"], {"error": error, "state": self.params.get("state", "")}
        )

    def _validate(self, state: SandboxState) -> None:
        p = self.params
        app = state.identity.apps.get(p.get("client_id", ""))
        if app is None:
            self.error_response = _error_page("unauthorized_client", "Unknown client_id.")
            return
        redirect_uri = p.get("redirect_uri", "")
        if not redirect_uri or not any(redirect_uri_matches(r, redirect_uri) for r in app.redirect_uris):
            # Never redirect to an unregistered URI: show the error here, as Xero does.
            self.error_response = _error_page("invalid_request", "Invalid redirect_uri for this app.")
            return
        self.app = app
        if p.get("response_type") != "code":
            self._fail_redirect("unsupported_response_type")
            return
        self.scopes = parse_scope(p.get("scope"))
        if not self.scopes or refused_scopes(self.scopes, app.allowed_scopes, app.granular):
            self._fail_redirect("invalid_scope")
            return
        challenge = p.get("code_challenge")
        method = p.get("code_challenge_method") or ("plain" if challenge else "")
        if challenge and method not in ("S256", "plain"):
            self._fail_redirect("invalid_request")
            return
        if app.client_secret is None and not challenge:
            self._fail_redirect("invalid_request")  # public apps must use PKCE
            return
        hint = p.get("login_hint") or state.config.default_user_email
        user = state.identity.user_by_email(hint)
        if user is None or not user.active:
            self.error_response = _error_page("login failed", f"No active sandbox user {hint}.", 400)
            return
        self.user = user

    def grant(self, state: SandboxState, tenant_ids: list[str]) -> Response:
        assert self.app is not None and self.user is not None
        p = self.params
        challenge = p.get("code_challenge") or None
        try:
            code = state.identity.consent(
                self.app,
                self.user,
                redirect_uri=p["redirect_uri"],
                scopes=self.scopes,
                tenant_ids=tenant_ids,
                code_challenge=challenge,
                code_challenge_method=(p.get("code_challenge_method") or "plain") if challenge else None,
                nonce=p.get("nonce") or None,
            )
        except OAuthError as exc:
            self._fail_redirect(exc.error)
            assert self.error_response is not None
            return self.error_response
        return _redirect(
            p["redirect_uri"],
            {
                "code": code.code,
                "scope": " ".join(self.scopes),
                "state": p.get("state", ""),
                "session_state": code.auth_event_id,
            },
        )


def _tenants_for_auto_consent(state: SandboxState, user: User) -> list[str]:
    wanted = state.config.auto_consent_tenant_ids
    candidates = sorted(user.tenant_ids, key=lambda t: state.tenants[t].name if t in state.tenants else t)
    if wanted is None:
        return candidates
    return [t for t in wanted if t in user.tenant_ids]


def _consent_page(state: SandboxState, req: AuthorizeRequest) -> HTMLResponse:
    assert req.app is not None and req.user is not None
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in req.params.items()
    )
    scopes = "".join(f"<li>{html.escape(_SCOPE_LABELS.get(s, s))}</li>" for s in req.scopes)
    orgs = ""
    if wants_organisation_access(req.scopes):
        rows = []
        for i, tid in enumerate(sorted(req.user.tenant_ids, key=lambda t: state.tenants[t].name)):
            checked = " checked" if i == 0 else ""
            name = html.escape(state.tenants[tid].name)
            rows.append(
                f'<li><label><input type="checkbox" name="tenant_id" value="{html.escape(tid)}"{checked}> '
                f"{name}</label></li>"
            )
        orgs = f"<h2>Select organisations</h2><ul>{''.join(rows)}</ul>"
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Xero sandbox: connect {html.escape(req.app.name)}</title></head>
<body>
<p>Signed in as {html.escape(req.user.email)} (Xero sandbox)</p>
<h1>{html.escape(req.app.name)} wants access to your Xero data</h1>
<form method="post" action="/identity/connect/authorize/consent">
{hidden}
<h2>This app will be able to</h2><ul>{scopes}</ul>
{orgs}
<button type="submit" name="decision" value="allow" id="allow">Allow access</button>
<button type="submit" name="decision" value="deny" id="deny">Cancel</button>
</form></body></html>"""
    return HTMLResponse(body)


@router.get("/identity/connect/authorize", include_in_schema=False)
async def authorize(request: Request) -> Response:
    state = _state(request)
    req = AuthorizeRequest(state, dict(request.query_params))
    if req.error_response is not None:
        return req.error_response
    assert req.user is not None
    if state.config.auto_consent:
        return req.grant(state, _tenants_for_auto_consent(state, req.user))
    return _consent_page(state, req)


@router.post("/identity/connect/authorize/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    params = {k: str(v) for k, v in form.items() if k not in ("tenant_id", "decision")}
    req = AuthorizeRequest(state, params)
    if req.error_response is not None:
        return req.error_response
    if form.get("decision") != "allow":
        req._fail_redirect("access_denied")
        assert req.error_response is not None
        return req.error_response
    return req.grant(state, [str(t) for t in form.getlist("tenant_id")])


def _client_credentials(request: Request, form: Any) -> tuple[str | None, str | None]:
    """client_secret_basic (Authorization: Basic) or client_secret_post (form fields), as Xero accepts both."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", 401) from None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    client_id = form.get("client_id")
    secret = form.get("client_secret")
    return (str(client_id) if client_id is not None else None, str(secret) if secret is not None else None)


@router.post("/connect/token", include_in_schema=False)
async def token(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    try:
        client_id, secret = _client_credentials(request, form)
        app = state.identity.authenticate_client(client_id, secret)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            body = state.identity.exchange_code(
                app,
                str(form.get("code") or ""),
                str(form["redirect_uri"]) if "redirect_uri" in form else None,
                str(form.get("code_verifier") or "") or None,
                _issuer(request),
            )
        elif grant_type == "refresh_token":
            body = state.identity.refresh(
                app,
                str(form.get("refresh_token") or ""),
                str(form.get("scope") or "") or None,
                _issuer(request),
            )
        elif not grant_type:
            raise OAuthError("invalid_request")
        else:
            raise OAuthError("unsupported_grant_type")
    except OAuthError as exc:
        return _answer(problems.oauth_error(exc.error, exc.status))
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/connect/revocation", include_in_schema=False)
async def revocation(request: Request) -> Response:
    state = _state(request)
    form = await request.form()
    try:
        client_id, secret = _client_credentials(request, form)
        app = state.identity.authenticate_client(client_id, secret)
        token_value = form.get("token")
        if not token_value:
            raise OAuthError("invalid_request")
    except OAuthError as exc:
        return _answer(problems.oauth_error(exc.error, exc.status))
    state.identity.revoke(app, str(token_value))
    return Response(status_code=200)


def _bearer(request: Request, state: SandboxState) -> AuthResult | Response:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _answer(problems.unauthorized())
    try:
        return state.identity.authenticate(value.strip())
    except TokenInvalid as exc:
        return _answer(problems.unauthorized(exc.detail))


def _xero_datetime(value: Any) -> str:
    # Xero's connections carry 7 fractional digits and no offset: "2019-12-07T18:46:19.5165400".
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


@router.get("/connections", include_in_schema=False)
async def get_connections(request: Request) -> Response:
    state = _state(request)
    auth = _bearer(request, state)
    if isinstance(auth, Response):
        return auth
    event = request.query_params.get("authEventId")
    body = []
    for conn in state.identity.connections_for(auth.client_id, auth.user_id, event):
        tenant = state.tenants.get(conn.tenant_id)
        body.append(
            {
                "id": conn.id,
                "authEventId": conn.auth_event_id,
                "tenantId": conn.tenant_id,
                "tenantType": "ORGANISATION",
                "tenantName": tenant.name if tenant else "",
                "createdDateUtc": _xero_datetime(conn.created_at),
                "updatedDateUtc": _xero_datetime(conn.updated_at),
            }
        )
    return JSONResponse(body)


@router.delete("/connections/{connection_id}", include_in_schema=False)
async def delete_connection(request: Request, connection_id: str) -> Response:
    state = _state(request)
    auth = _bearer(request, state)
    if isinstance(auth, Response):
        return auth
    if not state.identity.delete_connection(auth, connection_id):
        return Response(status_code=404)
    return Response(status_code=204)


@router.get("/.well-known/openid-configuration", include_in_schema=False)
async def openid_configuration(request: Request) -> Response:
    issuer = _issuer(request)
    return JSONResponse(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{issuer}/identity/connect/authorize",
            "token_endpoint": f"{issuer}/connect/token",
            "revocation_endpoint": f"{issuer}/connect/revocation",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }
    )


@router.get("/.well-known/openid-configuration/jwks", include_in_schema=False)
async def jwks(request: Request) -> Response:
    return JSONResponse(_state(request).identity.signer.jwks())
