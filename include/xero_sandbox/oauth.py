"""Xero's identity rules as plain Python: apps, users, consent, codes, tokens, refresh rotation, connections.

No HTTP here (the routes in `identity.py` translate requests to these calls); every rule reads the sandbox
clock, so tests can jump past expiries. Lifetimes are Xero's documented ones:

- authorization codes: single use, 5 minutes;
- access tokens: 30 minutes;
- refresh tokens: rotate on every use; a used one keeps working for a 30-minute grace period (each use returns a
  fresh pair, in case the response carrying the new pair was lost); an unused one expires after 60 days;
- revoking a refresh token removes the user's connections for that app and ends all its tokens;
- a connection removed from the Xero side (Settings > Connected Apps), or the authorising user removed from the
  organisation, ends the user's refresh tokens for that app (next refresh: invalid_grant).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from xero_sandbox.clock import Clock
from xero_sandbox.scopes import OFFLINE_ACCESS, wants_organisation_access
from xero_sandbox.signing import TokenSigner

ACCESS_TOKEN_SECONDS = 1800
CODE_SECONDS = 300
REFRESH_GRACE_SECONDS = 1800
REFRESH_UNUSED_SECONDS = 60 * 86400
ID_TOKEN_SECONDS = 300


class OAuthError(Exception):
    """An OAuth2 error answer: `{"error": error}` with this HTTP status (Xero sends no description)."""

    def __init__(self, error: str, status: int = 400, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.status = status
        self.description = description


@dataclass
class App:
    client_id: str
    client_secret: str | None  # None: a public PKCE app, which authenticates with client_id alone
    name: str
    redirect_uris: list[str]  # exact URIs; "http://127.0.0.1:*/callback" accepts any loopback port
    allowed_scopes: frozenset[str] | None = None  # None: every scope Xero offers
    granular: bool = False  # created after 2026-03-02: the broad transaction/report scopes are refused
    created_at: datetime | None = None

    def public_view(self, with_secret: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "client_id": self.client_id,
            "name": self.name,
            "redirect_uris": list(self.redirect_uris),
            "granular": self.granular,
            "public": self.client_secret is None,
        }
        if self.allowed_scopes is not None:
            view["allowed_scopes"] = sorted(self.allowed_scopes)
        if with_secret and self.client_secret is not None:
            view["client_secret"] = self.client_secret
        return view


@dataclass
class User:
    user_id: str
    email: str
    given_name: str
    family_name: str
    tenant_ids: set[str] = field(default_factory=set)  # organisations this user may connect
    active: bool = True

    def public_view(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "tenant_ids": sorted(self.tenant_ids),
            "active": self.active,
        }


@dataclass
class Connection:
    id: str
    tenant_id: str
    user_id: str
    client_id: str
    auth_event_id: str
    created_at: datetime
    updated_at: datetime


@dataclass
class AuthCode:
    code: str
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    auth_event_id: str
    expires_at: datetime
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    used: bool = False


@dataclass
class Grant:
    """One consent: the scopes a user gave an app at one authorisation, and the token chain that follows."""

    grant_id: str
    client_id: str
    user_id: str
    scopes: tuple[str, ...]
    auth_event_id: str
    session_id: str
    auth_time: datetime
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    issued_at: datetime
    used_at: datetime | None = None


@dataclass
class AccessToken:
    token: str
    grant_id: str
    client_id: str
    user_id: str
    scopes: frozenset[str]
    auth_event_id: str
    expires_at: datetime


@dataclass(frozen=True)
class AuthResult:
    """Who an access token speaks for, when it is valid."""

    client_id: str
    user_id: str
    scopes: frozenset[str]
    auth_event_id: str


class TokenInvalid(Exception):
    """The bearer token is unknown, revoked or expired; `detail` is what Xero puts in the 401 body."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _new_id() -> str:
    return str(uuid.uuid4())


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def redirect_uri_matches(registered: str, candidate: str) -> bool:
    """Exact match, except a registered loopback URI with port `*` accepts any port (desktop apps, RFC 8252)."""
    if registered == candidate:
        return True
    reg = urlsplit(registered)
    if not reg.netloc.endswith(":*"):
        return False
    cand = urlsplit(candidate)
    reg_host = reg.netloc[: -len(":*")]
    try:
        cand_port = cand.port
    except ValueError:
        return False
    return (
        cand.scheme == reg.scheme
        and cand.hostname == reg_host
        and cand_port is not None
        and cand.path == reg.path
        and cand.query == reg.query
        and reg_host in ("127.0.0.1", "localhost", "[::1]")
    )


class Identity:
    """The identity service's state and rules. Thread-safe: every mutation holds one lock."""

    def __init__(self, clock: Clock, signer: TokenSigner | None = None) -> None:
        self.clock = clock
        self.signer = signer or TokenSigner()
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self.connections: dict[str, Connection] = {}
        self.codes: dict[str, AuthCode] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self._lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        # Codes live five minutes: not worth persisting.
        state["codes"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # ---- registration -------------------------------------------------------------------------------

    def register_app(
        self,
        name: str,
        redirect_uris: list[str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        public: bool = False,
        allowed_scopes: frozenset[str] | None = None,
        granular: bool = False,
    ) -> App:
        with self._lock:
            client_id = client_id or secrets.token_hex(16).upper()
            if client_id in self.apps:
                raise ValueError(f"an app with client_id {client_id!r} is already registered")
            if public:
                client_secret = None
            elif client_secret is None:
                client_secret = secrets.token_urlsafe(36)
            app = App(
                client_id=client_id,
                client_secret=client_secret,
                name=name,
                redirect_uris=list(redirect_uris),
                allowed_scopes=allowed_scopes,
                granular=granular,
                created_at=self.clock.now(),
            )
            self.apps[client_id] = app
            return app

    def add_user(
        self,
        email: str,
        *,
        given_name: str = "Demo",
        family_name: str = "User",
        tenant_ids: set[str] | None = None,
        user_id: str | None = None,
    ) -> User:
        with self._lock:
            if self.user_by_email(email) is not None:
                raise ValueError(f"a user with email {email!r} already exists")
            user = User(
                user_id=user_id or _new_id(),
                email=email,
                given_name=given_name,
                family_name=family_name,
                tenant_ids=set(tenant_ids or ()),
            )
            self.users[user.user_id] = user
            return user

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    # ---- clients ------------------------------------------------------------------------------------

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> App:
        """The app these credentials name, or invalid_client (401) as Xero answers a wrong or missing secret."""
        app = self.apps.get(client_id or "")
        if app is None:
            raise OAuthError("invalid_client", 401, "unknown client_id")
        if app.client_secret is None:
            return app
        if client_secret is None or not hmac.compare_digest(app.client_secret, client_secret):
            raise OAuthError("invalid_client", 401, "wrong client secret")
        return app

    # ---- authorization ------------------------------------------------------------------------------

    def consent(
        self,
        app: App,
        user: User,
        *,
        redirect_uri: str,
        scopes: list[str],
        tenant_ids: list[str],
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        nonce: str | None = None,
    ) -> AuthCode:
        """The user allowed access: connect the chosen organisations (one auth event) and mint a code."""
        now = self.clock.now()
        with self._lock:
            auth_event_id = _new_id()
            if wants_organisation_access(scopes):
                for tenant_id in tenant_ids:
                    if tenant_id not in user.tenant_ids:
                        raise OAuthError("access_denied", 400, f"user cannot access tenant {tenant_id}")
                    self._connect(app.client_id, user.user_id, tenant_id, auth_event_id, now)
            code = AuthCode(
                code=secrets.token_urlsafe(32),
                client_id=app.client_id,
                user_id=user.user_id,
                redirect_uri=redirect_uri,
                scopes=tuple(scopes),
                auth_event_id=auth_event_id,
                expires_at=now + timedelta(seconds=CODE_SECONDS),
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                nonce=nonce,
            )
            self.codes[code.code] = code
            return code

    def _connect(
        self, client_id: str, user_id: str, tenant_id: str, auth_event_id: str, now: datetime
    ) -> None:
        # Reconnecting the same organisation updates the existing connection (updatedDateUtc moves on).
        for conn in self.connections.values():
            if conn.client_id == client_id and conn.user_id == user_id and conn.tenant_id == tenant_id:
                conn.auth_event_id = auth_event_id
                conn.updated_at = now
                return
        conn = Connection(_new_id(), tenant_id, user_id, client_id, auth_event_id, now, now)
        self.connections[conn.id] = conn

    # ---- token endpoint -----------------------------------------------------------------------------

    def exchange_code(
        self, app: App, code: str, redirect_uri: str | None, code_verifier: str | None, issuer: str
    ) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            record = self.codes.get(code or "")
            if record is None or record.client_id != app.client_id:
                raise OAuthError("invalid_grant", description="unknown authorization code")
            if record.used:
                raise OAuthError("invalid_grant", description="authorization code already used")
            if now >= record.expires_at:
                raise OAuthError("invalid_grant", description="authorization code expired")
            if redirect_uri != record.redirect_uri:
                raise OAuthError(
                    "invalid_grant", description="redirect_uri does not match the authorize request"
                )
            if record.code_challenge is not None:
                if not code_verifier:
                    raise OAuthError("invalid_grant", description="code_verifier missing")
                expected = _s256(code_verifier) if record.code_challenge_method == "S256" else code_verifier
                if not hmac.compare_digest(expected, record.code_challenge):
                    raise OAuthError("invalid_grant", description="code_verifier does not match")
            elif app.client_secret is None:
                raise OAuthError("invalid_grant", description="public apps must use PKCE")
            record.used = True
            user = self.users.get(record.user_id)
            if user is None or not user.active:
                raise OAuthError("invalid_grant", description="user no longer exists")
            grant = Grant(
                grant_id=_new_id(),
                client_id=app.client_id,
                user_id=record.user_id,
                scopes=record.scopes,
                auth_event_id=record.auth_event_id,
                session_id=secrets.token_hex(16),
                auth_time=now,
            )
            self.grants[grant.grant_id] = grant
            return self._token_response(grant, issuer, nonce=record.nonce)

    def refresh(self, app: App, refresh_token: str, scope: str | None, issuer: str) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            record = self.refresh_tokens.get(refresh_token or "")
            if record is None:
                raise OAuthError("invalid_grant", description="unknown refresh token")
            grant = self.grants[record.grant_id]
            if grant.client_id != app.client_id:
                raise OAuthError("invalid_grant", description="refresh token belongs to another app")
            if grant.revoked:
                raise OAuthError("invalid_grant", description="refresh token revoked")
            user = self.users.get(grant.user_id)
            if user is None or not user.active:
                raise OAuthError("invalid_grant", description="the authorising user was removed")
            if record.used_at is None:
                if now >= record.issued_at + timedelta(seconds=REFRESH_UNUSED_SECONDS):
                    raise OAuthError("invalid_grant", description="refresh token expired (unused 60 days)")
                record.used_at = now
            elif now >= record.used_at + timedelta(seconds=REFRESH_GRACE_SECONDS):
                raise OAuthError(
                    "invalid_grant", description="refresh token already used (grace period over)"
                )
            if scope:
                extra = set(scope.split()) - set(grant.scopes)
                if extra:
                    raise OAuthError("invalid_scope", description=f"not granted: {' '.join(sorted(extra))}")
            return self._token_response(grant, issuer, nonce=None)

    def _token_response(self, grant: Grant, issuer: str, nonce: str | None) -> dict[str, Any]:
        now = self.clock.now()
        user = self.users[grant.user_id]
        access = AccessToken(
            token="",
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            user_id=grant.user_id,
            scopes=frozenset(grant.scopes),
            auth_event_id=grant.auth_event_id,
            expires_at=now + timedelta(seconds=ACCESS_TOKEN_SECONDS),
        )
        iat = int(now.timestamp())
        access.token = self.signer.sign(
            {
                "nbf": iat,
                "exp": iat + ACCESS_TOKEN_SECONDS,
                "iss": issuer,
                "aud": f"{issuer}/resources",
                "client_id": grant.client_id,
                "sub": user.user_id.replace("-", ""),
                "auth_time": int(grant.auth_time.timestamp()),
                "xero_userid": user.user_id,
                "global_session_id": grant.session_id,
                "sid": grant.session_id,
                "jti": secrets.token_hex(16).upper(),
                "authentication_event_id": grant.auth_event_id,
                "scope": list(grant.scopes),
            }
        )
        self.access_tokens[access.token] = access
        body: dict[str, Any] = {}
        if "openid" in grant.scopes:
            claims: dict[str, Any] = {
                "nbf": iat,
                "exp": iat + ID_TOKEN_SECONDS,
                "iss": issuer,
                "aud": grant.client_id,
                "iat": iat,
                "auth_time": int(grant.auth_time.timestamp()),
                "sub": user.user_id.replace("-", ""),
                "sid": grant.session_id,
                "global_session_id": grant.session_id,
                "xero_userid": user.user_id,
                "at_hash": base64.urlsafe_b64encode(hashlib.sha256(access.token.encode()).digest()[:16])
                .rstrip(b"=")
                .decode(),
            }
            if "email" in grant.scopes:
                claims["email"] = user.email
                claims["preferred_username"] = user.email
            if "profile" in grant.scopes:
                claims.update(
                    given_name=user.given_name,
                    family_name=user.family_name,
                    name=f"{user.given_name} {user.family_name}",
                )
            if nonce:
                claims["nonce"] = nonce
            body["id_token"] = self.signer.sign(claims)
        body.update(
            access_token=access.token,
            expires_in=ACCESS_TOKEN_SECONDS,
            token_type="Bearer",
        )
        if OFFLINE_ACCESS in grant.scopes:
            refresh = RefreshToken(token=secrets.token_urlsafe(32), grant_id=grant.grant_id, issued_at=now)
            self.refresh_tokens[refresh.token] = refresh
            body["refresh_token"] = refresh.token
        body["scope"] = " ".join(grant.scopes)
        return body

    def revoke(self, app: App, token: str) -> None:
        """RFC 7009 revocation as Xero does it: the user's connections to this app go, and all their tokens."""
        with self._lock:
            record = self.refresh_tokens.get(token or "")
            access = self.access_tokens.get(token or "")
            grant_id = record.grant_id if record else access.grant_id if access else None
            if grant_id is None:
                return  # unknown tokens are not an error (RFC 7009 2.2)
            grant = self.grants[grant_id]
            if grant.client_id != app.client_id:
                return
            self._end_user_app(grant.user_id, grant.client_id, tenant_id=None)

    def _end_user_app(self, user_id: str, client_id: str, tenant_id: str | None) -> None:
        """Remove the user's connections to the app (one tenant or all); when none remain, end the grants."""
        for conn_id in [
            c.id
            for c in self.connections.values()
            if c.user_id == user_id
            and c.client_id == client_id
            and (tenant_id is None or c.tenant_id == tenant_id)
        ]:
            del self.connections[conn_id]
        remaining = any(c.user_id == user_id and c.client_id == client_id for c in self.connections.values())
        if tenant_id is None or not remaining:
            for grant in self.grants.values():
                if grant.user_id == user_id and grant.client_id == client_id:
                    grant.revoked = True

    # ---- resource side ------------------------------------------------------------------------------

    def authenticate(self, token: str) -> AuthResult:
        """Check a bearer access token; raises TokenInvalid with Xero's 401 detail."""
        record = self.access_tokens.get(token)
        if record is None:
            raise TokenInvalid("AuthenticationUnsuccessful")
        grant = self.grants.get(record.grant_id)
        user = self.users.get(record.user_id)
        if grant is None or grant.revoked or user is None or not user.active:
            raise TokenInvalid("AuthenticationUnsuccessful")
        if self.clock.now() >= record.expires_at:
            raise TokenInvalid(f"TokenExpired: token expired at {record.expires_at:%m/%d/%Y %H:%M:%S}")
        return AuthResult(record.client_id, record.user_id, record.scopes, record.auth_event_id)

    def connections_for(
        self, client_id: str, user_id: str, auth_event_id: str | None = None
    ) -> list[Connection]:
        conns = [c for c in self.connections.values() if c.client_id == client_id and c.user_id == user_id]
        if auth_event_id:
            conns = [c for c in conns if c.auth_event_id == auth_event_id]
        return sorted(conns, key=lambda c: (c.created_at, c.id))

    def can_reach(self, auth: AuthResult, tenant_id: str) -> bool:
        return any(
            c.tenant_id == tenant_id and c.client_id == auth.client_id and c.user_id == auth.user_id
            for c in self.connections.values()
        )

    def delete_connection(self, auth: AuthResult, connection_id: str) -> bool:
        """DELETE /connections/{id} by the app itself: only that connection goes; tokens stay valid."""
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None or conn.client_id != auth.client_id or conn.user_id != auth.user_id:
                return False
            del self.connections[connection_id]
            return True

    # ---- the Xero side ------------------------------------------------------------------------------

    def disconnect_from_xero(self, connection_id: str) -> Connection | None:
        """A user disconnects the app under Settings > Connected Apps: the connection goes; when it was the
        user's last connection to the app, the refresh token stops working (the app sees invalid_grant)."""
        with self._lock:
            conn = self.connections.get(connection_id)
            if conn is None:
                return None
            self._end_user_app(conn.user_id, conn.client_id, tenant_id=conn.tenant_id)
            return conn

    def remove_user(self, user_id: str, tenant_id: str | None = None) -> User | None:
        """The authorising user is removed from an organisation (or from every one, tenant_id None): their
        connections to it end; with no organisation left the user is gone and every token fails."""
        with self._lock:
            user = self.users.get(user_id)
            if user is None:
                return None
            targets = {tenant_id} if tenant_id else set(user.tenant_ids)
            user.tenant_ids -= targets
            for client_id in {c.client_id for c in self.connections.values() if c.user_id == user_id}:
                for tid in targets:
                    self._end_user_app(user_id, client_id, tenant_id=tid)
            if not user.tenant_ids:
                user.active = False
                for grant in self.grants.values():
                    if grant.user_id == user_id:
                        grant.revoked = True
            return user
