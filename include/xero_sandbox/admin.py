"""Admin paths under /sandbox/... (no OAuth): what tests, benchmarks and chaos runs use to steer and observe.

Refused (403) unless the sandbox runs with admin enabled (the default for local use). Everything here is also
reachable in-process through `SandboxState`; `admin_client.SandboxAdmin` wraps these paths for other processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from xero_sandbox.faults import FaultRule
from xero_sandbox.state import SandboxState, save_state


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _admin_enabled(request: Request) -> None:
    if not _state(request).config.admin_enabled:
        raise HTTPException(403, "the sandbox admin paths are disabled (start with admin enabled)")


router = APIRouter(prefix="/sandbox", dependencies=[Depends(_admin_enabled)], tags=["sandbox admin"])


class FaultIn(BaseModel):
    kind: str = Field(description="500, 503, 429, timeout, reset, reset_after or delay")
    count: int | None = Field(None, description="apply to the next N matching calls")
    fraction: float | None = Field(None, description="apply to this fraction of matching calls")
    seed: int = 0
    target: str = "accounting"
    methods: list[str] | None = None
    path_pattern: str | None = None
    tenant_id: str | None = None
    hold_seconds: float | None = None
    retry_after: int = 1
    problem: str = "minute"


class TenantIn(BaseModel):
    name: str
    seed: int = 1
    contacts: int = 50
    tenant_id: str | None = None
    base_currency: str = "NZD"
    users: list[str] | None = Field(
        None, description="emails of users who may connect it (default: demo user)"
    )
    sizes: dict[str, int] = Field(
        default_factory=dict, description="other generator sizes (invoices=..., ...)"
    )


class AppIn(BaseModel):
    name: str
    redirect_uris: list[str]
    client_id: str | None = None
    client_secret: str | None = None
    public: bool = False
    scopes: list[str] | None = Field(None, description="allowed scopes (default: all)")
    granular: bool = False


class UserIn(BaseModel):
    email: str
    given_name: str = "Sandbox"
    family_name: str = "User"
    tenant_ids: list[str] = Field(default_factory=list)


class AutoConsentIn(BaseModel):
    enabled: bool
    tenant_ids: list[str] | None = None


class LimitsIn(BaseModel):
    enabled: bool | None = None
    minute: int | None = None
    day: int | None = None
    concurrent: int | None = None
    app_minute: int | None = None
    window_seconds: float | None = None
    day_seconds: float | None = None


class AdvanceIn(BaseModel):
    seconds: float


class IdempotencyIn(BaseModel):
    window_seconds: float = Field(gt=0)


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"ok": True, "now": state.clock.now().isoformat(), "tenants": len(state.tenants)}


@router.get("/counters")
async def counters(request: Request, tenant_id: str | None = None) -> dict[str, Any]:
    return _state(request).counters.snapshot(tenant_id)


@router.delete("/counters")
async def reset_counters(request: Request, tenant_id: str | None = None) -> dict[str, Any]:
    _state(request).counters.reset(tenant_id)
    return {"reset": True}


@router.get("/records")
def records(
    request: Request, tenant_id: str | None = None, modified_since: str | None = None
) -> dict[str, Any]:
    """What each organisation holds, per collection, counted by the sandbox (``accounting.holdings``)."""
    from xero_sandbox.accounting.holdings import holdings

    state = _state(request)
    tenants = [t for t in state.tenants.values() if tenant_id is None or t.tenant_id == tenant_id]
    if tenant_id is not None and not tenants:
        raise HTTPException(404, f"unknown tenant {tenant_id}")
    return {t.tenant_id: holdings(t.store, modified_since) for t in tenants}


@router.get("/journal")
async def journal(
    request: Request,
    tenant_id: str | None = None,
    method: str | None = None,
    path_contains: str | None = None,
    since_seq: int | None = None,
    limit: int | None = Query(None, ge=1),
) -> list[dict[str, Any]]:
    entries = _state(request).journal.entries(
        tenant_id=tenant_id, method=method, path_contains=path_contains, since_seq=since_seq, limit=limit
    )
    return [e.to_dict() for e in entries]


@router.delete("/journal")
async def clear_journal(request: Request) -> dict[str, Any]:
    _state(request).journal.clear()
    return {"cleared": True}


@router.get("/faults")
async def list_faults(request: Request) -> list[dict[str, Any]]:
    return _state(request).faults.public_view()


@router.post("/faults", status_code=201)
async def add_fault(request: Request, body: FaultIn) -> dict[str, Any]:
    try:
        rule = FaultRule(**body.model_dump())
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from exc
    return _state(request).faults.add(rule).public_view()


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, Any]:
    _state(request).faults.clear()
    return {"cleared": True}


@router.post("/faults/release")
async def release_held(request: Request) -> dict[str, Any]:
    """End every held call (timeout and delay faults) now: timeouts answer 504, delays proceed."""
    _state(request).faults.release_held()
    return {"released": True}


@router.delete("/faults/{rule_id}")
async def remove_fault(request: Request, rule_id: int) -> dict[str, Any]:
    if not _state(request).faults.remove(rule_id):
        raise HTTPException(404, "no such fault rule")
    return {"removed": rule_id}


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {"now": state.clock.now().isoformat(), "offset_seconds": state.clock.offset_seconds}


@router.post("/clock/advance")
async def advance_clock(request: Request, body: AdvanceIn) -> dict[str, Any]:
    state = _state(request)
    try:
        now = state.clock.advance(body.seconds)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return {"now": now.isoformat(), "offset_seconds": state.clock.offset_seconds}


@router.get("/tenants")
async def list_tenants(request: Request) -> list[dict[str, Any]]:
    return [t.public_view() for t in _state(request).tenants.values()]


@router.post("/tenants", status_code=201)
def create_tenant(request: Request, body: TenantIn) -> dict[str, Any]:
    # A plain def: generating an organisation is CPU work, so it runs in the threadpool, not on the loop.
    state = _state(request)
    try:
        tenant = state.add_tenant(
            body.name,
            seed=body.seed,
            contacts=body.contacts,
            tenant_id=body.tenant_id,
            base_currency=body.base_currency,
            grant_users=body.users,
            **body.sizes,
        )
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    return tenant.public_view()


@router.get("/apps")
async def list_apps(request: Request) -> list[dict[str, Any]]:
    return [a.public_view() for a in _state(request).identity.apps.values()]


@router.post("/apps", status_code=201)
async def register_app(request: Request, body: AppIn) -> dict[str, Any]:
    try:
        app = _state(request).identity.register_app(
            body.name,
            body.redirect_uris,
            client_id=body.client_id,
            client_secret=body.client_secret,
            public=body.public,
            allowed_scopes=frozenset(body.scopes) if body.scopes is not None else None,
            granular=body.granular,
        )
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    return app.public_view(with_secret=True)


@router.get("/users")
async def list_users(request: Request) -> list[dict[str, Any]]:
    return [u.public_view() for u in _state(request).identity.users.values()]


@router.post("/users", status_code=201)
async def add_user(request: Request, body: UserIn) -> dict[str, Any]:
    state = _state(request)
    unknown = [t for t in body.tenant_ids if t not in state.tenants]
    if unknown:
        raise HTTPException(404, f"unknown tenants: {', '.join(unknown)}")
    try:
        user = state.identity.add_user(
            body.email,
            given_name=body.given_name,
            family_name=body.family_name,
            tenant_ids=set(body.tenant_ids),
        )
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    for tenant_id in body.tenant_ids:
        state.show_user(tenant_id, user)
    return user.public_view()


@router.delete("/users/{user_id}")
async def remove_user(request: Request, user_id: str, tenant_id: str | None = None) -> dict[str, Any]:
    """Remove the user from one organisation (tenant_id) or from all: their connections end."""
    user = _state(request).identity.remove_user(user_id, tenant_id)
    if user is None:
        raise HTTPException(404, "no such user")
    return user.public_view()


@router.get("/auto-consent")
async def get_auto_consent(request: Request) -> dict[str, Any]:
    cfg = _state(request).config
    view: dict[str, Any] = {"enabled": cfg.auto_consent}
    if cfg.auto_consent_tenant_ids is not None:
        view["tenant_ids"] = cfg.auto_consent_tenant_ids
    return view


@router.put("/auto-consent")
async def set_auto_consent(request: Request, body: AutoConsentIn) -> dict[str, Any]:
    cfg = _state(request).config
    cfg.auto_consent = body.enabled
    cfg.auto_consent_tenant_ids = body.tenant_ids
    return await get_auto_consent(request)


@router.get("/connections")
async def list_connections(request: Request) -> list[dict[str, Any]]:
    state = _state(request)
    return [
        {
            "id": c.id,
            "tenantId": c.tenant_id,
            "userId": c.user_id,
            "clientId": c.client_id,
            "authEventId": c.auth_event_id,
            "createdDateUtc": c.created_at.isoformat(),
            "updatedDateUtc": c.updated_at.isoformat(),
        }
        for c in state.identity.connections.values()
    ]


@router.delete("/connections/{connection_id}")
async def disconnect(request: Request, connection_id: str) -> dict[str, Any]:
    """Disconnect as a Xero user would under Settings > Connected Apps."""
    conn = _state(request).identity.disconnect_from_xero(connection_id)
    if conn is None:
        raise HTTPException(404, "no such connection")
    return {"disconnected": connection_id, "tenantId": conn.tenant_id}


@router.get("/limits")
async def get_limits(request: Request) -> dict[str, Any]:
    limiter = _state(request).limits
    return {**limiter.config.to_dict(), "in_flight": limiter.in_flight()}


@router.put("/limits")
async def set_limits(request: Request, body: LimitsIn) -> dict[str, Any]:
    limiter = _state(request).limits
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(limiter.config, key, value)
    limiter.reset()
    return await get_limits(request)


@router.get("/idempotency")
async def get_idempotency(request: Request) -> dict[str, Any]:
    cache = _state(request).idempotency
    return {"window_seconds": cache.window_seconds, "keys": len(cache)}


@router.put("/idempotency")
async def set_idempotency(request: Request, body: IdempotencyIn) -> dict[str, Any]:
    """How long a key is remembered after its first call (Xero: 6 minutes); keys already stored keep theirs."""
    _state(request).idempotency.window_seconds = body.window_seconds
    return await get_idempotency(request)


@router.post("/save")
async def save(request: Request) -> dict[str, Any]:
    path: Path | None = request.app.state.state_file
    if path is None:
        raise HTTPException(409, "the sandbox was started without --state-file")
    save_state(_state(request), path)
    return {"saved": str(path)}
