"""Admin paths for the sandbox's webhooks (what Xero's developer portal does): /sandbox/webhooks/...

POST   /sandbox/webhooks                   subscribe an app: {client_id, url, key?, categories?}; runs intent to
                                           receive at once and answers the subscription with its key and status
GET    /sandbox/webhooks                   subscriptions (no keys)
POST   /sandbox/webhooks/{id}/validate     run intent to receive again (after fixing the receiver, or re-enabling)
PUT    /sandbox/webhooks/{id}/faults       drop / delay / duplicate / reorder / wrong_signature
POST   /sandbox/webhooks/flush             wait until every queued delivery has been attempted
DELETE /sandbox/webhooks/{id}              unsubscribe
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from xero_sandbox.admin import _admin_enabled, _state
from xero_sandbox.state import DEMO_CLIENT_ID
from xero_sandbox.webhooks import WebhookFaults

router = APIRouter(
    prefix="/sandbox/webhooks", dependencies=[Depends(_admin_enabled)], tags=["sandbox webhooks"]
)


class SubscriptionIn(BaseModel):
    url: str = Field(description="the delivery URL (Xero requires HTTPS; the sandbox accepts loopback HTTP)")
    client_id: str = DEMO_CLIENT_ID
    key: str | None = Field(None, description="the webhook key (default: a new random one, returned once)")
    categories: list[str] | None = Field(None, description="CONTACT, INVOICE, CREDITNOTE (default: all)")
    validate_now: bool = Field(True, description="run intent to receive at once")


class FaultsIn(BaseModel):
    drop: float = 0.0
    drop_count: int = 0
    delay_seconds: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    wrong_signature: int = 0
    seed: int = 0


def _resource_base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("", status_code=201)
def subscribe(request: Request, body: SubscriptionIn) -> dict[str, Any]:
    state = _state(request)
    if body.client_id not in state.identity.apps:
        raise HTTPException(404, f"no app {body.client_id}")
    try:
        sub = state.webhooks.subscribe(
            body.client_id,
            body.url,
            key=body.key,
            categories=set(body.categories) if body.categories else None,
            resource_base=_resource_base(request),
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if body.validate_now:
        state.webhooks.validate(sub.id)
    return sub.view(with_key=True)


@router.get("")
def subscriptions(request: Request) -> list[dict[str, Any]]:
    return [s.view() for s in _state(request).webhooks.subscriptions.values()]


@router.post("/flush")
def flush(request: Request, timeout: float = 30.0) -> dict[str, Any]:
    return {"idle": _state(request).webhooks.flush(timeout)}


@router.post("/{subscription_id}/validate")
def validate(request: Request, subscription_id: str) -> dict[str, Any]:
    try:
        return _state(request).webhooks.validate(subscription_id).view()
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.put("/{subscription_id}/faults")
def set_faults(request: Request, subscription_id: str, body: FaultsIn) -> dict[str, Any]:
    try:
        return _state(request).webhooks.set_faults(subscription_id, WebhookFaults(**body.model_dump())).view()
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.delete("/{subscription_id}")
def unsubscribe(request: Request, subscription_id: str) -> dict[str, Any]:
    _state(request).webhooks.remove(subscription_id)
    return {"removed": subscription_id}
