"""OAuth2 as Xero does it: authorization code + PKCE, exact redirect URIs, client authentication, refresh rotation
with a 30-minute grace, 60-day expiry, revocation, disconnection from either side, consent and auto-consent."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from xero_sandbox.state import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    GRANULAR_CLIENT_ID,
    GRANULAR_CLIENT_SECRET,
)

from .conftest import api_headers, get_token

REDIRECT = "http://127.0.0.1:47001/callback"
SCOPE = "openid profile email offline_access accounting.contacts accounting.settings"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(url: str, **overrides: Any) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "state-123",
    }
    params.update({k: v for k, v in overrides.items() if v is not None})
    return httpx.get(f"{url}/identity/connect/authorize", params=params, follow_redirects=False)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def new_code(url: str, verifier: str | None = None, method: str = "S256", **overrides: Any) -> str:
    challenge = None if verifier is None else (s256(verifier) if method == "S256" else verifier)
    extra = {"code_challenge": challenge, "code_challenge_method": method if verifier else None}
    return redirect_params(authorize(url, **extra, **overrides))["code"]


def token_call(url: str, data: dict[str, str], auth: tuple[str, str] | None = None) -> httpx.Response:
    if auth is None and "client_id" not in data:
        auth = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    return httpx.post(f"{url}/connect/token", data=data, auth=auth)


def exchange(
    url: str, code: str, verifier: str | None, redirect_uri: str = REDIRECT, **kw: Any
) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    return token_call(url, data, **kw)


def refresh(url: str, refresh_token: str) -> httpx.Response:
    return token_call(url, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def full_token(url: str, **overrides: Any) -> dict[str, Any]:
    verifier = secrets.token_urlsafe(48)
    response = exchange(url, new_code(url, verifier, **overrides), verifier)
    assert response.status_code == 200, response.text
    return response.json()


def accounting_status(url: str, token: dict[str, Any], tenant_id: str, path: str = "/Contacts") -> int:
    return httpx.get(f"{url}/api.xro/2.0{path}", headers=api_headers(token, tenant_id)).status_code


# ---- the code flow ----------------------------------------------------------------------------------------


def test_code_flow_with_pkce_returns_xero_shaped_tokens(sandbox):
    verifier = secrets.token_urlsafe(48)
    response = authorize(
        sandbox.url, code_challenge=s256(verifier), code_challenge_method="S256", nonce="n-1"
    )
    params = redirect_params(response)
    assert params["state"] == "state-123"
    assert response.headers["location"].startswith(REDIRECT + "?")

    answer = exchange(sandbox.url, params["code"], verifier)

    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 1800
    assert body["token_type"] == "Bearer"
    assert body["scope"].split() == SCOPE.split()
    assert body["refresh_token"] and body["access_token"]
    assert None not in body.values()
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["aud"] == DEMO_CLIENT_ID and claims["nonce"] == "n-1"
    assert claims["email"] == "demo.user@example.com"


def test_id_token_verifies_against_the_published_jwks(sandbox):
    body = full_token(sandbox.url)
    config = httpx.get(f"{sandbox.url}/.well-known/openid-configuration").json()
    jwks = jwt.PyJWKClient(config["jwks_uri"])
    key = jwks.get_signing_key_from_jwt(body["id_token"])
    claims = jwt.decode(
        body["id_token"],
        key.key,
        algorithms=["RS256"],
        audience=DEMO_CLIENT_ID,
        options={"verify_exp": False},
    )
    assert claims["iss"] == sandbox.url
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["client_id"] == DEMO_CLIENT_ID and "authentication_event_id" in access


def test_plain_pkce_works(sandbox):
    verifier = secrets.token_urlsafe(48)
    code = new_code(sandbox.url, verifier, method="plain")
    assert exchange(sandbox.url, code, verifier).status_code == 200


def test_wrong_pkce_verifier_is_invalid_grant(sandbox):
    code = new_code(sandbox.url, secrets.token_urlsafe(48))
    response = exchange(sandbox.url, code, secrets.token_urlsafe(48))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant"}


def test_missing_pkce_verifier_is_invalid_grant(sandbox):
    code = new_code(sandbox.url, secrets.token_urlsafe(48))
    assert exchange(sandbox.url, code, None).json() == {"error": "invalid_grant"}


def test_codes_are_single_use(sandbox):
    verifier = secrets.token_urlsafe(48)
    code = new_code(sandbox.url, verifier)
    assert exchange(sandbox.url, code, verifier).status_code == 200
    again = exchange(sandbox.url, code, verifier)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_codes_expire_after_five_minutes(make_sandbox):
    server = make_sandbox(tenants=1, contacts=2)
    verifier = secrets.token_urlsafe(48)
    code = new_code(server.url, verifier)
    server.admin.advance_clock(301)
    assert exchange(server.url, code, verifier).json() == {"error": "invalid_grant"}


def test_code_is_bound_to_its_redirect_uri(sandbox):
    verifier = secrets.token_urlsafe(48)
    code = new_code(sandbox.url, verifier)
    other = exchange(sandbox.url, code, verifier, redirect_uri="http://127.0.0.1:47002/callback")
    assert other.json() == {"error": "invalid_grant"}


def test_unregistered_redirect_uri_is_refused_without_redirecting(sandbox):
    for uri in (
        "http://evil.example.com/callback",
        "http://127.0.0.1:47001/other",
        "https://127.0.0.1:47001/callback",
    ):
        response = authorize(sandbox.url, redirect_uri=uri)
        assert response.status_code == 400
        assert "location" not in response.headers


def test_any_loopback_port_is_accepted_for_the_demo_app(sandbox):
    for uri in ("http://127.0.0.1:8080/callback", "http://localhost:59999/callback"):
        assert "code" in redirect_params(authorize(sandbox.url, redirect_uri=uri))


def test_unknown_client_is_refused(sandbox):
    response = authorize(sandbox.url, client_id="NOT-A-CLIENT")
    assert response.status_code == 400 and "location" not in response.headers


def test_wrong_secret_is_invalid_client_by_basic_and_by_post(sandbox):
    verifier = secrets.token_urlsafe(48)
    code = new_code(sandbox.url, verifier)
    basic = exchange(sandbox.url, code, verifier, auth=(DEMO_CLIENT_ID, "wrong"))
    assert (basic.status_code, basic.json()) == (401, {"error": "invalid_client"})
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": "wrong",
    }
    post = httpx.post(f"{sandbox.url}/connect/token", data=data)
    assert (post.status_code, post.json()) == (401, {"error": "invalid_client"})
    # The failed attempts did not spend the code: the right secret (client_secret_post) still gets tokens.
    data["client_secret"] = DEMO_CLIENT_SECRET
    assert httpx.post(f"{sandbox.url}/connect/token", data=data).status_code == 200


def test_unsupported_grant_type(sandbox):
    response = token_call(sandbox.url, {"grant_type": "password", "username": "a", "password": "b"})
    assert response.json() == {"error": "unsupported_grant_type"}


def test_error_redirects_carry_state(sandbox):
    params = redirect_params(authorize(sandbox.url, scope="accounting.contacts not.a.scope"))
    assert params == {"error": "invalid_scope", "state": "state-123"}
    params = redirect_params(authorize(sandbox.url, response_type="token"))
    assert params["error"] == "unsupported_response_type"


def test_offline_access_is_needed_for_a_refresh_token(sandbox):
    body = full_token(sandbox.url, scope="openid accounting.contacts")
    assert "refresh_token" not in body
    assert "id_token" in body
    no_openid = full_token(sandbox.url, scope="accounting.contacts offline_access")
    assert "id_token" not in no_openid and "refresh_token" in no_openid


def test_granular_app_refuses_broad_transaction_scopes(sandbox):
    broad = authorize(
        sandbox.url, client_id=GRANULAR_CLIENT_ID, scope="offline_access accounting.transactions"
    )
    assert redirect_params(broad)["error"] == "invalid_scope"
    granular = authorize(
        sandbox.url,
        client_id=GRANULAR_CLIENT_ID,
        scope="offline_access accounting.invoices accounting.payments.read",
    )
    code = redirect_params(granular)["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    response = httpx.post(
        f"{sandbox.url}/connect/token", data=data, auth=(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET)
    )
    assert response.json()["scope"] == "offline_access accounting.invoices accounting.payments.read"


def test_public_pkce_app_needs_no_secret_but_must_use_pkce(sandbox):
    app = sandbox.admin.register_app("Desktop app", [REDIRECT], public=True)
    assert "client_secret" not in app
    assert redirect_params(authorize(sandbox.url, client_id=app["client_id"]))["error"] == "invalid_request"
    token = get_token(sandbox, client_id=app["client_id"], client_secret=None, redirect_uri=REDIRECT)
    assert token["access_token"]


# ---- refresh ------------------------------------------------------------------------------------------------


def test_refresh_rotates_and_old_token_has_a_30_minute_grace(make_sandbox):
    server = make_sandbox(tenants=1, contacts=2)
    first = full_token(server.url)

    second = refresh(server.url, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 1800

    # Within the grace period the old token still works, and each use returns a fresh pair.
    server.admin.advance_clock(29 * 60)
    retry = refresh(server.url, first["refresh_token"])
    assert retry.status_code == 200
    assert retry.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])

    server.admin.advance_clock(61)
    late = refresh(server.url, first["refresh_token"])
    assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    # The newest token (never used) is unaffected.
    assert refresh(server.url, second["refresh_token"]).status_code == 200


def test_refresh_token_expires_after_60_days_unused(make_sandbox):
    server = make_sandbox(tenants=1, contacts=2)
    kept_alive = full_token(server.url)
    idle = full_token(server.url)
    server.admin.advance_clock(59 * 86400)
    kept_alive = refresh(server.url, kept_alive["refresh_token"]).json()
    server.admin.advance_clock(2 * 86400)
    assert refresh(server.url, idle["refresh_token"]).json() == {"error": "invalid_grant"}
    assert refresh(server.url, kept_alive["refresh_token"]).status_code == 200


def test_access_tokens_expire_after_30_minutes(make_sandbox):
    server = make_sandbox(tenants=1, contacts=2)
    token = full_token(server.url)
    tenant_id = server.admin.tenants()[0]["tenantId"]
    assert accounting_status(server.url, token, tenant_id) == 200
    server.admin.advance_clock(1801)
    response = httpx.get(f"{server.url}/api.xro/2.0/Contacts", headers=api_headers(token, tenant_id))
    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired: token expired at ")
    fresh = refresh(server.url, token["refresh_token"]).json()
    assert accounting_status(server.url, fresh, tenant_id) == 200


def test_refresh_with_another_apps_credentials_is_refused(sandbox):
    token = full_token(sandbox.url)
    other = token_call(
        sandbox.url,
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
    )
    assert other.json() == {"error": "invalid_grant"}


# ---- revocation and disconnection ------------------------------------------------------------------------------


def _user_with_access(server, tenant_ids: list[str]) -> str:
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    server.admin.add_user(email, tenant_ids)
    return email


def test_revocation_ends_refresh_and_the_connections(sandbox, tenant_ids):
    email = _user_with_access(sandbox, tenant_ids)
    token = full_token(sandbox.url, login_hint=email)
    assert accounting_status(sandbox.url, token, tenant_ids[0]) == 200

    response = httpx.post(
        f"{sandbox.url}/connect/revocation",
        data={"token": token["refresh_token"]},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )

    assert response.status_code == 200
    assert refresh(sandbox.url, token["refresh_token"]).json() == {"error": "invalid_grant"}
    assert accounting_status(sandbox.url, token, tenant_ids[0]) in (401, 403)
    connections = httpx.get(f"{sandbox.url}/connections", headers=api_headers(token))
    assert connections.status_code == 401 or connections.json() == []


def test_revocation_needs_the_right_client_secret(sandbox):
    response = httpx.post(
        f"{sandbox.url}/connect/revocation", data={"token": "x"}, auth=(DEMO_CLIENT_ID, "nope")
    )
    assert (response.status_code, response.json()) == (401, {"error": "invalid_client"})


def test_connections_list_and_delete(sandbox, tenant_ids):
    email = _user_with_access(sandbox, tenant_ids)
    token = full_token(sandbox.url, login_hint=email)
    headers = api_headers(token)
    connections = httpx.get(f"{sandbox.url}/Connections", headers=headers).json()
    assert sorted(c["tenantId"] for c in connections) == sorted(tenant_ids)
    for conn in connections:
        assert conn["tenantType"] == "ORGANISATION"
        assert set(conn) == {
            "id",
            "authEventId",
            "tenantId",
            "tenantType",
            "tenantName",
            "createdDateUtc",
            "updatedDateUtc",
        }
    access = jwt.decode(token["access_token"], options={"verify_signature": False})
    by_event = httpx.get(
        f"{sandbox.url}/connections",
        params={"authEventId": access["authentication_event_id"]},
        headers=headers,
    )
    assert len(by_event.json()) == 2

    gone = connections[0]
    assert httpx.delete(f"{sandbox.url}/connections/{gone['id']}", headers=headers).status_code == 204
    assert httpx.delete(f"{sandbox.url}/connections/{gone['id']}", headers=headers).status_code == 404
    left = httpx.get(f"{sandbox.url}/connections", headers=headers).json()
    assert [c["tenantId"] for c in left] == [connections[1]["tenantId"]]
    assert accounting_status(sandbox.url, token, gone["tenantId"]) == 403
    assert accounting_status(sandbox.url, token, connections[1]["tenantId"]) == 200
    # Disconnecting one organisation from the app's side leaves the refresh token working.
    assert refresh(sandbox.url, token["refresh_token"]).status_code == 200


def test_disconnect_from_the_xero_side_fails_the_next_refresh(sandbox, tenant_ids):
    email = _user_with_access(sandbox, tenant_ids[:1])
    token = full_token(sandbox.url, login_hint=email)
    conn = httpx.get(f"{sandbox.url}/connections", headers=api_headers(token)).json()[0]
    sandbox.admin.disconnect(conn["id"])
    assert refresh(sandbox.url, token["refresh_token"]).json() == {"error": "invalid_grant"}
    assert accounting_status(sandbox.url, token, tenant_ids[0]) in (401, 403)


def test_removing_the_authorising_user_fails_the_next_refresh(sandbox, tenant_ids):
    email = _user_with_access(sandbox, tenant_ids)
    token = full_token(sandbox.url, login_hint=email)
    user = next(u for u in sandbox.admin.users() if u["email"] == email)
    sandbox.admin.remove_user(user["user_id"])
    assert refresh(sandbox.url, token["refresh_token"]).json() == {"error": "invalid_grant"}
    assert accounting_status(sandbox.url, token, tenant_ids[0]) == 401


def test_reconnecting_keeps_the_connection_and_moves_updated_date(sandbox, tenant_ids):
    email = _user_with_access(sandbox, tenant_ids[:1])
    first = full_token(sandbox.url, login_hint=email)
    before = httpx.get(f"{sandbox.url}/connections", headers=api_headers(first)).json()
    second = full_token(sandbox.url, login_hint=email)
    after = httpx.get(f"{sandbox.url}/connections", headers=api_headers(second)).json()
    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert after[0]["updatedDateUtc"] > before[0]["updatedDateUtc"]
    assert after[0]["createdDateUtc"] == before[0]["createdDateUtc"]


# ---- consent ----------------------------------------------------------------------------------------------------


def test_consent_page_lets_the_user_pick_organisations(make_sandbox):
    server = make_sandbox(tenants=2, contacts=2, auto_consent=False)
    tenants = server.admin.tenants()
    page = authorize(server.url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for tenant in tenants:
        assert tenant["tenantName"] in page.text

    form = dict(authorize(server.url).request.url.params)
    form.update(decision="allow", tenant_id=tenants[1]["tenantId"])
    answer = httpx.post(f"{server.url}/identity/connect/authorize/consent", data=form)
    code = redirect_params(answer)["code"]
    token = exchange(server.url, code, None).json()
    connections = httpx.get(f"{server.url}/connections", headers=api_headers(token)).json()
    assert [c["tenantId"] for c in connections] == [tenants[1]["tenantId"]]

    form["decision"] = "deny"
    denied = httpx.post(f"{server.url}/identity/connect/authorize/consent", data=form)
    assert redirect_params(denied) == {"error": "access_denied", "state": "state-123"}


def test_auto_consent_switch_and_tenant_choice(make_sandbox):
    server = make_sandbox(tenants=2, contacts=2, auto_consent=False)
    assert authorize(server.url).status_code == 200  # the consent page
    second = server.admin.tenants()[1]["tenantId"]
    server.admin.set_auto_consent(True, tenant_ids=[second])
    token = full_token(server.url)
    connections = httpx.get(f"{server.url}/connections", headers=api_headers(token)).json()
    assert [c["tenantId"] for c in connections] == [second]


@pytest.mark.parametrize("login_hint", ["nobody@example.com"])
def test_unknown_login_hint_is_refused(sandbox, login_hint):
    assert authorize(sandbox.url, login_hint=login_hint).status_code == 400
