"""The platform layer in front of every handler, as Xero's API gateway behaves (an ASGI middleware).

For the Accounting API, in this order: path normalisation (Xero's paths are case-insensitive), body size limit
(413), bearer token (401), xero-tenant-id (403), scope (403), Idempotency-Key length (400), rate limits (429),
fault injection, Idempotency-Key replay; then the handler runs with `request.state.org` set to the tenant's
store, and afterwards its `request.state.records_returned` feeds the counters. Identity and connections calls
get normalisation, faults and the journal. Every non-admin call is journaled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import struct
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.routing import BaseRoute, Match

from xero_sandbox import problems
from xero_sandbox.faults import FaultRule
from xero_sandbox.idempotency import MAX_KEY_LENGTH, KeyReused, StoredResponse, fingerprint
from xero_sandbox.journal import JournalEntry
from xero_sandbox.oauth import TokenInvalid
from xero_sandbox.scopes import is_allowed
from xero_sandbox.state import SandboxState

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/api.xro/2.0"
_IDENTITY_PATHS = {
    p.lower(): p
    for p in ("/identity/connect/authorize", "/identity/connect/authorize/consent", "/connect/token")
} | {"/connect/revocation": "/connect/revocation"}
_SECRET_FIELDS = {"client_secret", "code", "code_verifier", "refresh_token", "token", "access_token"}
_PER_CALL_HEADERS = {
    b"content-length",
    b"xero-correlation-id",
    b"x-minlimit-remaining",
    b"x-daylimit-remaining",
    b"x-appminlimit-remaining",
}
_GUIDISH = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d+)$")


class PathNormaliser:
    """Maps each path segment to its canonical casing (Contacts, not contacts) so routes match as Xero's do."""

    def __init__(self, route_segments: Iterable[str]) -> None:
        self._canonical = {s.lower(): s for s in route_segments}

    def __call__(self, path: str) -> str:
        lower = path.lower()
        if lower.startswith("/api.xro/2.0/") or lower == "/api.xro/2.0":
            rest = path[len(API_PREFIX) :]
            parts = [self._canonical.get(p.lower(), p) for p in rest.split("/")]
            return API_PREFIX + "/".join(parts)
        if lower == "/connections" or lower.startswith("/connections/"):
            return "/connections" + path[len("/connections") :]
        return _IDENTITY_PATHS.get(lower.rstrip("/"), path)


class EndpointResolver:
    """The route template a path matches ("GET /Contacts/{ContactID}"), for counters."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes

    def __call__(self, method: str, path: str) -> str:
        probe = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
        partial = None
        for route in self.routes:
            match, _ = route.matches(probe)
            if match == Match.FULL:
                return f"{method} {getattr(route, 'path', path)[len(API_PREFIX) :]}"
            if match == Match.PARTIAL and partial is None:
                partial = route
        if partial is not None:
            return f"{method} {getattr(partial, 'path', path)[len(API_PREFIX) :]}"
        # Unrouted (a 404): collapse ids so junk paths do not explode the counter keys.
        rest = path[len(API_PREFIX) :]
        return f"{method} " + "/".join("{id}" if _GUIDISH.match(p) else p for p in rest.split("/"))


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying_receive(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the already-read body once, then defers to the server (for disconnects)."""
    sent = False

    async def _receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return _receive


async def hold(receive: Receive, seconds: float, release: asyncio.Event) -> bool:
    """Wait up to `seconds` or until released; True when the client went away meanwhile (no point answering)."""
    disconnect = asyncio.ensure_future(receive())
    released = asyncio.ensure_future(release.wait())
    try:
        await asyncio.wait({disconnect, released}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (disconnect, released):
            task.cancel()
    if disconnect.done() and not disconnect.cancelled():
        return disconnect.result().get("type") == "http.disconnect"
    return False


async def abort_connection(receive: Receive) -> None:
    """Reset the client's TCP connection (RST, not FIN), as a dropped connection to Xero looks.

    uvicorn's receive is a bound method of its request cycle, which holds the transport; SO_LINGER 0 makes the
    close an abortive one. Under a server without a transport (in-process test clients) a reset cannot be
    expressed, so this raises instead.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("fault injection: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server notice the connection is gone, so it does not try to answer on it.
    await asyncio.sleep(0.01)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _journal_body(body: bytes, content_type: str | None) -> Any:
    if not body:
        return None
    ctype = (content_type or "").lower()
    if "application/x-www-form-urlencoded" in ctype:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return {k: ("***" if k in _SECRET_FIELDS else v) for k, v in form.items()}
    if "json" in ctype or body[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return body.decode("utf-8", "replace")


class PlatformMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        state: SandboxState,
        normalise: PathNormaliser,
        endpoints: Callable[[], EndpointResolver],
    ) -> None:
        self.app = app
        self.state = state
        self.normalise = normalise
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = self.normalise(scope["path"])
        if path != scope["path"]:
            scope["path"] = path
            scope["raw_path"] = path.encode()
        if path.startswith(API_PREFIX + "/"):
            target = "accounting"
        elif path == "/connections" or path.startswith("/connections/"):
            target = "connections"
        elif path in _IDENTITY_PATHS.values():
            target = "identity"
        else:
            await self.app(scope, receive, send)  # admin, discovery, docs: no platform rules
            return
        await Call(self, scope, receive, send, target).run()


class Call:
    """One request through the platform layer (holds what the journal and counters need)."""

    def __init__(
        self, mw: PlatformMiddleware, scope: Scope, receive: Receive, send: Send, target: str
    ) -> None:
        self.mw = mw
        self.state = mw.state
        self.scope = scope
        self.receive = receive
        self.send = send
        self.target = target
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.status = 0
        self.body = b""
        self.tenant_id: str | None = None
        self.client_id: str | None = None
        self.idempotency_key: str | None = _header(scope, b"idempotency-key")
        self.fault: FaultRule | None = None
        self.replayed = False
        self.limit_headers: dict[str, str] = {}
        self.correlation_id = str(uuid.uuid4())

    async def answer(self, answer: problems.Answer) -> None:
        self.status = answer.status
        answer.headers.setdefault("Xero-Correlation-Id", self.correlation_id)
        await answer.send(self.send)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self._count()
            self._journal()

    async def _run(self) -> None:
        limit = self.state.config.max_body_bytes
        length = _header(self.scope, b"content-length")
        try:
            if length is not None and length.isdigit() and int(length) > limit:
                raise BodyTooLarge
            self.body = await read_body(self.receive, limit)
        except BodyTooLarge:
            await self.answer(problems.too_large(limit))
            return
        except ConnectionResetError:
            return
        if self.target == "accounting":
            await self._accounting()
        else:
            await self._plain()

    async def _plain(self) -> None:
        """Identity and connections calls: faults apply, then the route answers."""
        self.client_id = self._caller()
        self.fault = self.state.faults.draw(self.target, self.method, self.path, None)
        if self.fault is not None and await self._inject_before():
            return
        await self._dispatch(store=None)

    def _caller(self) -> str | None:
        """Which app is calling (for the journal only: the routes do the real authentication)."""
        scheme, _, value = (_header(self.scope, b"authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            try:
                return self.state.identity.authenticate(value.strip()).client_id
            except TokenInvalid:
                return None
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                return unquote(base64.b64decode(value.strip()).decode().partition(":")[0])
            return None
        form = dict(parse_qsl(self.body.decode("utf-8", "replace"))) if self.body else {}
        return form.get("client_id")

    async def _accounting(self) -> None:
        state = self.state
        auth_header = _header(self.scope, b"authorization") or ""
        scheme, _, token = auth_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await self.answer(problems.unauthorized(correlation_id=self.correlation_id))
            return
        try:
            auth = state.identity.authenticate(token.strip())
        except TokenInvalid as exc:
            await self.answer(problems.unauthorized(exc.detail, self.correlation_id))
            return
        self.client_id = auth.client_id
        tenant_id = (_header(self.scope, b"xero-tenant-id") or "").strip()
        if not tenant_id:
            # Xero answers a missing tenant header with 403 (not 400).
            await self.answer(problems.forbidden("AuthenticationUnsuccessful", self.correlation_id))
            return
        self.tenant_id = tenant_id
        tenant = state.tenant(tenant_id)
        if tenant is None or not state.identity.can_reach(auth, tenant_id):
            await self.answer(problems.forbidden(correlation_id=self.correlation_id))
            return
        api_path = self.path[len(API_PREFIX) :]
        if not is_allowed(auth.scopes, self.method, api_path):
            await self.answer(problems.forbidden(correlation_id=self.correlation_id, insufficient_scope=True))
            return
        key = self.idempotency_key
        writes = self.method in ("PUT", "POST")
        if key is not None and writes and len(key) > MAX_KEY_LENGTH:
            await self.answer(
                problems.validation_error(f"Idempotency-Key must be {MAX_KEY_LENGTH} characters or fewer")
            )
            return
        decision = state.limits.acquire(auth.client_id, tenant_id)
        if decision.problem is not None:
            await self.answer(problems.rate_limited(decision.problem, decision.retry_after, decision.headers))
            return
        try:
            self.limit_headers = decision.headers
            self.fault = state.faults.draw("accounting", self.method, self.path, tenant_id)
            if self.fault is not None and await self._inject_before():
                return
            if key is None or not writes:
                await self._dispatch(store=tenant.store)
                return
            idem_key = (auth.client_id, key)
            request_print = fingerprint(
                tenant_id, self.method, self.path, self.scope.get("query_string", b""), self.body
            )
            try:
                stored = await state.idempotency.claim(idem_key, request_print, state.clock.timestamp())
            except KeyReused:
                await self.answer(
                    problems.validation_error(f"Idempotency Key: {key} is used with a different request.")
                )
                return
            if stored is not None:
                self.replayed = True
                await self._replay(stored)
                return
            try:
                captured = await self._dispatch(store=tenant.store, capture=True)
            except BaseException:
                state.idempotency.abandon(idem_key)
                raise
            if captured is None:
                state.idempotency.abandon(idem_key)
            else:
                state.idempotency.store(idem_key, captured)
        finally:
            state.limits.release(auth.client_id, tenant_id)

    async def _inject_before(self) -> bool:
        """Act on a fault that fires before processing; True when the call is finished."""
        fault = self.fault
        assert fault is not None
        kind = fault.kind
        if kind == "500":
            await self.answer(problems.server_error(self.correlation_id))
        elif kind == "503":
            await self.answer(problems.unavailable())
        elif kind == "429":
            await self.answer(problems.rate_limited(fault.problem, fault.retry_after, self.limit_headers))
        elif kind == "reset":
            await abort_connection(self.receive)
        elif kind == "timeout":
            if not await hold(
                self.receive, float(fault.hold_seconds or 30.0), self.state.faults.release_signal()
            ):
                await self.answer(problems.gateway_timeout())
        else:  # delay and reset_after act around processing: see _dispatch
            return False
        return True

    async def _dispatch(self, store: Any, capture: bool = False) -> StoredResponse | None:
        """Run the route; add the platform headers; capture the answer when it must be remembered."""
        if self.fault is not None and self.fault.kind == "delay":
            # Xero being slow to process: the call (and its Idempotency-Key) is already taken when it waits,
            # so a retry arriving meanwhile waits for this answer. A client that gives up is not processed for.
            release = self.state.faults.release_signal()
            if await hold(self.receive, float(self.fault.hold_seconds or 1.0), release):
                return None
        if store is not None:
            request_state = self.scope.setdefault("state", {})
            request_state["org"] = store
            app = self.state.identity.apps.get(self.client_id or "")
            if app is not None:
                request_state["provider_name"] = app.name  # the envelope's ProviderName, as Xero fills it
        drop = self.fault is not None and self.fault.kind == "reset_after"
        extra = [(b"xero-correlation-id", self.correlation_id.encode())]
        extra += [(k.lower().encode(), v.encode()) for k, v in self.limit_headers.items()]
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def _send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                self.status = status
                if self.target == "accounting":
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                headers = list(message["headers"])
            elif message["type"] == "http.response.body" and capture:
                chunks.append(message.get("body", b""))
            if not drop:
                await self.send(message)

        try:
            await self.mw.app(self.scope, replaying_receive(self.body, self.receive), _send)
        except Exception:
            self.status = self.status or 500
            raise
        if drop:
            await abort_connection(self.receive)
        if not capture or status == 0:
            return None
        # Rate-limit headers and the correlation id are per call: a replay gets fresh ones.
        kept = [(k, v) for k, v in headers if k.lower() not in _PER_CALL_HEADERS]
        return StoredResponse(status, kept, b"".join(chunks))

    async def _replay(self, stored: StoredResponse) -> None:
        self.status = stored.status
        headers = list(stored.headers)
        headers.append((b"content-length", str(len(stored.body)).encode()))
        headers.append((b"xero-correlation-id", self.correlation_id.encode()))
        headers += [(k.lower().encode(), v.encode()) for k, v in self.limit_headers.items()]
        await self.send({"type": "http.response.start", "status": stored.status, "headers": headers})
        await self.send({"type": "http.response.body", "body": stored.body})

    def _count(self) -> None:
        """One count per Accounting API call addressed to a tenant this sandbox serves, whatever its answer."""
        if self.target != "accounting" or self.tenant_id not in self.state.tenants:
            return
        records = 0 if self.replayed else self.scope.get("state", {}).get("records_returned", 0)
        # The router leaves the route it matched in the scope: free, where matching again costs ~0.1 ms.
        route_path = getattr(self.scope.get("route"), "path", "")
        if route_path.startswith(API_PREFIX + "/"):
            endpoint = f"{self.method} {route_path[len(API_PREFIX) :]}"
        else:
            endpoint = self.mw._endpoints()(self.method, self.path)
        self.state.counters.record(self.tenant_id, endpoint, self.status, int(records or 0))

    def _journal(self) -> None:
        state = self.state
        query = self.scope.get("query_string", b"").decode("latin-1")
        state.journal.add(
            JournalEntry(
                seq=state.journal.next_seq(),
                at=state.clock.now().isoformat(),
                method=self.method,
                path=self.path,
                query=query,
                status=self.status,
                tenant_id=self.tenant_id,
                client_id=self.client_id,
                idempotency_key=self.idempotency_key,
                body=_journal_body(self.body, _header(self.scope, b"content-type")),
                fault=self.fault.kind if self.fault else None,
                replayed=self.replayed,
            )
        )
