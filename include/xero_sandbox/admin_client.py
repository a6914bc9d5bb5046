"""A small HTTP client for the sandbox's /sandbox admin paths (for tests, benchmarks and chaos runs)."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxAdmin:
    """Steer and observe a running sandbox over HTTP. Every method raises httpx.HTTPStatusError on refusal."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        # A connection per call: between two admin calls a test may run a whole import, and a pooled connection the
        # server closed meanwhile failed the next call ("Server disconnected without sending a response").
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/sandbox",
            timeout=timeout,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if "params" in kwargs:
            kwargs["params"] = {k: v for k, v in kwargs["params"].items() if v is not None}
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    # observation
    def counters(self, tenant_id: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/counters", params={"tenant_id": tenant_id})

    def reset_counters(self, tenant_id: str | None = None) -> None:
        self._call("DELETE", "/counters", params={"tenant_id": tenant_id})

    def records(self, tenant_id: str | None = None, modified_since: str | None = None) -> dict[str, Any]:
        """Per organisation and collection: held / listed / paged (``xero_sandbox.accounting.holdings``)."""
        return self._call(
            "GET", "/records", params={"tenant_id": tenant_id, "modified_since": modified_since}
        )

    def journal(
        self,
        *,
        tenant_id: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        since_seq: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        params = {
            "tenant_id": tenant_id,
            "method": method,
            "path_contains": path_contains,
            "since_seq": since_seq,
            "limit": limit,
        }
        return self._call("GET", "/journal", params=params)

    def clear_journal(self) -> None:
        self._call("DELETE", "/journal")

    # faults
    def add_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """kind: 500, 503, 429, timeout, reset, reset_after, delay; options: count, fraction, seed, target,
        methods, path_pattern, tenant_id, hold_seconds, retry_after, problem."""
        return self._call("POST", "/faults", json={"kind": kind, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def release_held(self) -> None:
        """End every call held by a timeout or delay fault now."""
        self._call("POST", "/faults/release")

    # time and limits
    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/clock/advance", json={"seconds": seconds})

    def limits(self) -> dict[str, Any]:
        return self._call("GET", "/limits")

    def set_limits(self, **settings: Any) -> dict[str, Any]:
        """enabled, minute, day, concurrent, app_minute, window_seconds, day_seconds (windows are reset)."""
        return self._call("PUT", "/limits", json=settings)

    def idempotency(self) -> dict[str, Any]:
        return self._call("GET", "/idempotency")

    def set_idempotency_window(self, seconds: float) -> dict[str, Any]:
        """How long an Idempotency-Key is remembered after its first call (Xero: 360 s)."""
        return self._call("PUT", "/idempotency", json={"window_seconds": seconds})

    # organisations, apps, users, connections
    def tenants(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tenants")

    def create_tenant(
        self, name: str, *, seed: int = 1, contacts: int = 50, **options: Any
    ) -> dict[str, Any]:
        return self._call(
            "POST", "/tenants", json={"name": name, "seed": seed, "contacts": contacts, **options}
        )

    def apps(self) -> list[dict[str, Any]]:
        return self._call("GET", "/apps")

    def register_app(self, name: str, redirect_uris: list[str], **options: Any) -> dict[str, Any]:
        """options: client_id, client_secret, public, scopes, granular. Returns the app with its secret."""
        return self._call("POST", "/apps", json={"name": name, "redirect_uris": redirect_uris, **options})

    def users(self) -> list[dict[str, Any]]:
        return self._call("GET", "/users")

    def add_user(self, email: str, tenant_ids: list[str], **options: Any) -> dict[str, Any]:
        return self._call("POST", "/users", json={"email": email, "tenant_ids": tenant_ids, **options})

    def remove_user(self, user_id: str, tenant_id: str | None = None) -> dict[str, Any]:
        return self._call("DELETE", f"/users/{user_id}", params={"tenant_id": tenant_id})

    def set_auto_consent(self, enabled: bool, tenant_ids: list[str] | None = None) -> dict[str, Any]:
        return self._call("PUT", "/auto-consent", json={"enabled": enabled, "tenant_ids": tenant_ids})

    def connections(self) -> list[dict[str, Any]]:
        return self._call("GET", "/connections")

    def disconnect(self, connection_id: str) -> dict[str, Any]:
        """Disconnect as the Xero user would (Settings > Connected Apps)."""
        return self._call("DELETE", f"/connections/{connection_id}")

    def save(self) -> dict[str, Any]:
        return self._call("POST", "/save")

    # webhooks (xero_sandbox.webhook_admin)
    def subscribe_webhook(self, url: str, **options: Any) -> dict[str, Any]:
        """options: client_id, key, categories, validate_now. Returns the subscription with its key."""
        return self._call("POST", "/webhooks", json={"url": url, **options})

    def webhooks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/webhooks")

    def validate_webhook(self, subscription_id: str) -> dict[str, Any]:
        return self._call("POST", f"/webhooks/{subscription_id}/validate")

    def webhook_faults(self, subscription_id: str, **faults: Any) -> dict[str, Any]:
        """drop, drop_count, delay_seconds, duplicate, reorder, wrong_signature, seed (unset ones cleared)."""
        return self._call("PUT", f"/webhooks/{subscription_id}/faults", json=faults)

    def flush_webhooks(self, timeout: float = 30.0) -> bool:
        return bool(self._call("POST", "/webhooks/flush", params={"timeout": timeout})["idle"])
