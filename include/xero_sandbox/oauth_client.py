"""Get tokens from a sandbox the way a real client does: authorization code + PKCE, with requests-oauthlib.

With auto-consent on, the authorize endpoint redirects at once, so no browser is needed:

    token = authorize_headless(sandbox.url, scopes=["openid", "offline_access", "accounting.contacts"])
    token["access_token"], token["refresh_token"]
"""

from __future__ import annotations

import os
import secrets
from typing import Any
from urllib.parse import urlsplit

import requests
from requests_oauthlib import OAuth2Session

from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

DEFAULT_SCOPES = (
    "openid",
    "profile",
    "email",
    "offline_access",
    "accounting.transactions",
    "accounting.contacts",
    "accounting.settings",
    "accounting.reports.read",
    "accounting.attachments",
)


class AuthorizationFailed(RuntimeError):
    """The authorize step did not redirect back with a code (consent page shown, or an error redirect)."""


def _allow_plain_http(url: str) -> None:
    # oauthlib refuses http:// unless told otherwise; the sandbox only ever listens on loopback.
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def authorize_headless(
    base_url: str,
    *,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str | None = DEMO_CLIENT_SECRET,
    scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES,
    redirect_uri: str = "http://127.0.0.1:53682/callback",
    login_hint: str | None = None,
    pkce: str = "S256",
) -> dict[str, Any]:
    """Run the authorization-code flow against an auto-consenting sandbox; returns the token response.

    The redirect is never followed (nothing needs to listen on redirect_uri): its Location carries the code.
    The token's `state` round trip is checked by requests-oauthlib, as a real client's would be.
    """
    base = base_url.rstrip("/")
    _allow_plain_http(base)
    session = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=list(scopes), pkce=pkce)
    extra = {"login_hint": login_hint} if login_hint else {}
    url, state = session.authorization_url(
        f"{base}/identity/connect/authorize", state=secrets.token_urlsafe(16), **extra
    )
    response = requests.get(url, allow_redirects=False, timeout=30)
    location = response.headers.get("Location", "")
    if response.status_code != 302 or "code=" not in location:
        raise AuthorizationFailed(
            f"authorize answered {response.status_code} {location or response.text[:200]}"
        )
    token = session.fetch_token(
        f"{base}/connect/token",
        authorization_response=location,
        client_secret=client_secret,
        include_client_id=client_secret is None,
    )
    return dict(token)
