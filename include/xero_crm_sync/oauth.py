"""Xero's OAuth2 for the pipeline: the authorization-code flow (state + PKCE) and sessions that refresh safely.

Token rules (C3), and how they hold here:
- Each refresh returns a new refresh token; the old one stays valid 30 minutes. `XeroSession.refresh_token`
  takes the connection's lock (a row lock on PostgreSQL, the write lock on SQLite), re-reads the stored token and
  only refreshes if no one else did meanwhile, so two workers never spend the same refresh token and the newest one
  is never lost. The new token is committed before the access token is used.
- A refresh whose response was lost (timeout, reset) is retried with the same refresh token: Xero still accepts it
  within its 30-minute grace period.
- `invalid_grant` means the grant is gone (revoked in Xero, user removed, 60 days unused): the connection is marked
  `needs_reconnect` and `ReconnectRequired` is raised; DAGs skip such connections with that message.
- A 401 from the API (token refused before our clock says it expired) triggers one refresh and one retry.
Tokens and the client secret never reach logs or exceptions: errors carry Xero's error code only, and every
plaintext secret is registered with `redaction` (which also feeds Airflow's secrets masker in tasks).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import requests
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from xero_crm_sync import redaction

log = logging.getLogger(__name__)

# What the integration uses, and nothing more (C1). Granular scopes are the default for apps created after
# 2026-03-02; `broad` is for older apps that still hold accounting.transactions.
SCOPES: dict[str, tuple[str, ...]] = {
    "granular": (
        "offline_access",
        "accounting.contacts",
        "accounting.settings.read",
        "accounting.invoices",
        "accounting.payments.read",
    ),
    "broad": (
        "offline_access",
        "accounting.contacts",
        "accounting.settings.read",
        "accounting.transactions",
    ),
}
# Refresh a little before expiry so a long page read never starts with a dying token.
REFRESH_MARGIN_SECONDS = 120
# A lost refresh response is retried after 1, 2, 4 s (4 attempts). The lock is held meanwhile (on SQLite that is
# the database write lock, whose waiters give up after 60 s), so the worst case stays well under a minute;
# past that the task fails and its retry, or the next health check, tries again within Xero's grace period.
REFRESH_ATTEMPTS = 4
REFRESH_BACKOFF_SECONDS = 1.0
REFRESH_TIMEOUT_SECONDS = 10.0


class ReconnectRequired(RuntimeError):
    """The connection's grant is gone; a user must run `connect` again. Carries no secret."""


class RefreshFailed(RuntimeError):
    """A refresh failed for a reason that may pass (network, Xero unavailable); the stored token is unchanged
    and still valid for Xero's 30-minute grace period, so a later attempt (task retry, next health check) can
    recover. Carries no secret."""


# Xero's token endpoint answers these when the grant itself is gone: retrying cannot help, a user must reconnect.
_GRANT_GONE = ("invalid_grant", "unauthorized_client", "invalid_client")
RECONNECT_HINT = (
    "the connection was revoked in Xero, its authorising user was removed from the organisation, or it went "
    "unused for 60 days. Reconnect it with `python -m xero_crm_sync connect`"
)


class TokenStore(Protocol):
    """Where a connection's token lives (the CRM database, encrypted); see `connections.ConnectionStore`."""

    def locked_token(self, connection_id: int) -> Any: ...  # context manager yielding a LockedToken


@dataclass
class AppCredentials:
    client_id: str
    client_secret: str
    # Where the secret came from when it is not the one stored with the connection (the Airflow connection
    # xero_default or XERO_CLIENT_SECRET): Xero refusing it then means that setting is wrong, not that the
    # organisation's grant is gone, so it must not send every organisation to reconnect.
    configured_in: str | None = None

    def __post_init__(self) -> None:
        redaction.remember(self.client_secret)

    def __repr__(self) -> str:  # never print the secret, even in a debugger or a traceback's locals
        return f"AppCredentials(client_id={self.client_id!r}, client_secret=<hidden>)"


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def allow_loopback_http(*urls: str) -> None:
    """oauthlib refuses plain http. Allow it only when every Xero URL is a loopback address (the local sandbox);
    real Xero is https and stays checked."""
    if urls and all(urlparse(u).hostname in _LOOPBACK_HOSTS for u in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def with_margin(token: dict[str, Any]) -> dict[str, Any]:
    """requests-oauthlib refreshes when `expires_at` has passed; pull it forward by the margin."""
    token = dict(token)
    if "expires_at" in token:
        token["expires_at"] = float(token["expires_at"]) - REFRESH_MARGIN_SECONDS
    return token


def stamp_expiry(token: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Xero sends `expires_in`; store an absolute `expires_at` so any process can tell when it runs out."""
    token = dict(token)
    token["expires_at"] = (now or time.time()) + float(token.get("expires_in", 1800))
    return token


def token_claims(access_token: str) -> dict[str, Any]:
    """The non-secret claims of Xero's JWT access token (`xero_userid`, `authentication_event_id`, ...).

    Read without verifying the signature: they only label the connection (who authorised it); Xero checks
    the token itself on every call. An opaque (non-JWT) token yields {}.
    """
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    keep = ("xero_userid", "authentication_event_id", "client_id", "scope", "exp")
    return {k: claims[k] for k in keep if k in claims} if isinstance(claims, dict) else {}


class _TransientTokenAnswer(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _refuse_transient(response: requests.Response) -> requests.Response:
    """Token-endpoint compliance hook: a 5xx or 429 is Xero being unavailable, not an OAuth answer."""
    if response.status_code >= 500 or response.status_code == 429:
        raise _TransientTokenAnswer(response.status_code)
    return response


class XeroSession(OAuth2Session):
    """An OAuth2Session whose automatic refresh is serialised per connection through the token store.

    Besides the refresh before expiry that requests-oauthlib does, a 401 from Xero (the access token expired
    early, e.g. clock skew) triggers one refresh and one retry of the request.
    """

    def __init__(
        self,
        connection_id: int,
        credentials: AppCredentials,
        token: dict[str, Any],
        token_url: str,
        store: TokenStore,
        *,
        refresh_attempts: int = REFRESH_ATTEMPTS,
        refresh_timeout: float = REFRESH_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            client_id=credentials.client_id,
            token=with_margin(token),
            auto_refresh_url=token_url,
            # The store already saved the token inside the lock; this only keeps requests-oauthlib content.
            token_updater=lambda _token: None,
        )
        redaction.remember_token(token)
        self.register_compliance_hook("refresh_token_response", _refuse_transient)
        self.connection_id = connection_id
        self._credentials = credentials
        self._store = store
        self._refresh_attempts = refresh_attempts
        self._refresh_timeout = refresh_timeout
        self._sleep = sleep
        self.refreshes = 0  # refreshes this session sent to Xero (not counting ones adopted from others)

    def expires_in(self) -> float:
        """Seconds until the current access token expires (by our clock)."""
        return float(self.token.get("expires_at", 0)) + REFRESH_MARGIN_SECONDS - time.time()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if response.status_code != 401 or kwargs.get("withhold_token"):
            return response  # withhold_token: the token endpoint itself, never retried through here
        used = self.token.get("access_token")
        log.info("Xero refused the access token of connection %s (401): refreshing once", self.connection_id)
        self.refresh_token(self.auto_refresh_url, stale_access_token=used)
        return super().request(method, url, *args, **kwargs)

    def refresh_token(
        self,
        token_url: str,
        refresh_token: str | None = None,
        *,
        stale_access_token: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Refresh under the connection's lock, unless another worker already did (then adopt its token).

        `stale_access_token`: Xero refused this one, so a stored token equal to it is refreshed even if it
        looks unexpired by our clock.
        """
        failure: Exception | None = None
        with self._store.locked_token(self.connection_id) as locked:
            stored = locked.token
            refused = stale_access_token is not None and stored.get("access_token") == stale_access_token
            if (
                stored.get("access_token") != self.token.get("access_token")
                and not _expired(stored)
                and not refused
            ):
                # Another worker refreshed while we waited for the lock: use its token, spend nothing.
                redaction.remember_token(stored)
                self.token = with_margin(stored)
                return self.token
            try:
                new = stamp_expiry(self._refresh_with_retry(token_url, stored["refresh_token"]))
            except ReconnectRequired as exc:
                # Recorded in the same transaction as the lock, committed on exit: a second connection
                # writing the row now would wait on our own lock.
                locked.mark_needs_reconnect(str(exc))
                failure = exc
            else:
                locked.save(new)  # committed when the lock is released, before the access token is used
        if failure is not None:
            raise failure
        self.refreshes += 1
        self.token = with_margin(new)
        return self.token

    def _refresh_with_retry(self, token_url: str, refresh_token: str) -> dict[str, Any]:
        auth = HTTPBasicAuth(self._credentials.client_id, self._credentials.client_secret)

        def once() -> dict[str, Any]:
            try:
                token = dict(
                    OAuth2Session.refresh_token(
                        self, token_url, refresh_token=refresh_token, auth=auth, timeout=self._refresh_timeout
                    )
                )
            except OAuth2Error as exc:
                if exc.error == "invalid_client" and self._credentials.configured_in:
                    raise RefreshFailed(
                        f"Xero refused the client secret of app {self._credentials.client_id} set in "
                        f"{self._credentials.configured_in}: correct it there; the connection's token is unchanged"
                    ) from None
                if exc.error in _GRANT_GONE:
                    raise ReconnectRequired(
                        f"Xero refused the token refresh ({exc.error}): {RECONNECT_HINT}"
                    ) from None
                raise _RefreshNotDone(f"Xero answered {exc.error}") from None
            except _TransientTokenAnswer as exc:
                raise _RefreshNotDone(f"Xero's token endpoint answered {exc.status}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                # The response may have been lost after Xero rotated the token: the old refresh token still
                # works for 30 minutes (each use returns a fresh pair), so retrying with it is safe.
                raise _RefreshNotDone(type(exc).__name__) from None
            redaction.remember_token(token)
            return token

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "token refresh: %s; retry %d of %d in %.1f s",
                error, state.attempt_number, self._refresh_attempts - 1, delay,
            )  # fmt: skip

        retrying = Retrying(
            retry=retry_if_exception_type(_RefreshNotDone),
            stop=stop_after_attempt(self._refresh_attempts),
            wait=wait_exponential(multiplier=REFRESH_BACKOFF_SECONDS),  # 1, 2, 4 s
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(once)
        except _RefreshNotDone as exc:
            raise RefreshFailed(
                f"token refresh failed after {self._refresh_attempts} attempts ({exc}); the stored refresh token "
                "stays valid for Xero's 30-minute grace period and the next attempt retries it"
            ) from None


class _RefreshNotDone(Exception):
    """A refresh attempt that may be retried (a transient answer or a lost response)."""


def _expired(token: dict[str, Any]) -> bool:
    return float(token.get("expires_at", 0)) - REFRESH_MARGIN_SECONDS <= time.time()


# --- the authorization-code flow -------------------------------------------------------------------------


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    redirect_uri: str


def authorization_request(
    authorize_url: str, client_id: str, redirect_uri: str, scopes: tuple[str, ...]
) -> AuthorizationRequest:
    verifier, challenge = pkce_pair()
    session = OAuth2Session(client_id, redirect_uri=redirect_uri, scope=list(scopes))
    url, state = session.authorization_url(
        authorize_url, code_challenge=challenge, code_challenge_method="S256"
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier, redirect_uri=redirect_uri)


def exchange_code(
    request: AuthorizationRequest, callback_url: str, token_url: str, credentials: AppCredentials
) -> dict[str, Any]:
    """Check `state`, then trade the code (with the PKCE verifier) for tokens."""
    query = parse_qs(urlparse(callback_url).query)
    if query.get("error"):
        raise RuntimeError(f"Xero refused the authorisation: {query['error'][0]}")
    if query.get("state", [None])[0] != request.state:
        raise RuntimeError("OAuth state mismatch: the callback did not come from our authorisation request")
    session = OAuth2Session(credentials.client_id, redirect_uri=request.redirect_uri, state=request.state)
    token = session.fetch_token(
        token_url,
        authorization_response=callback_url,
        code_verifier=request.code_verifier,
        auth=HTTPBasicAuth(credentials.client_id, credentials.client_secret),
        include_client_id=False,
        timeout=30,
    )
    redaction.remember_token(dict(token))
    return stamp_expiry(dict(token))


def list_tenants(connections_url: str, token: dict[str, Any]) -> list[dict[str, Any]]:
    """GET /connections with a bare token (right after the code exchange, before anything is stored)."""
    response = requests.get(
        connections_url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30
    )
    if response.status_code != 200:
        raise RuntimeError(f"GET /connections answered {response.status_code}")
    return response.json()


def revoke(revocation_url: str, credentials: AppCredentials, refresh_token: str) -> None:
    """RFC 7009 revocation: Xero ends the grant and removes every connection its user made with this app."""
    response = requests.post(
        revocation_url,
        data={"token": refresh_token},
        auth=HTTPBasicAuth(credentials.client_id, credentials.client_secret),
        timeout=30,
    )
    if response.status_code not in (200, 204):
        raise RuntimeError(f"Xero revocation answered {response.status_code}")
