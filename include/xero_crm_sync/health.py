"""Connection health (C4): refresh tokens ahead of expiry, ask Xero's `/connections`, record what was seen.

The `xero_connection_health` DAG runs `check_connection` for every connection every 10 minutes:

1. A token with less than `REFRESH_AHEAD_SECONDS` left is refreshed now (under the connection's lock, like any
   refresh), so imports and pushes start with a fresh token and a refresh token never sits unused towards
   Xero's 60-day expiry.
2. `GET /connections` with the connection's token: the organisation must still be listed. A 401 that survives a
   refresh, or `invalid_grant` on the refresh, means the grant is gone: `needs_reconnect`. A token that works
   but no longer lists the organisation means it was disconnected in Xero (Settings > Connected Apps, or the
   authorising user lost access to it): the connection is flagged `disconnected` (by Xero).
3. Every outcome is recorded (`connection_health_check`, and the latest on `xero_connection`) for the status page.

A refresh that fails for a passing reason (network, Xero unavailable) leaves the connection active: its stored
refresh token stays valid for Xero's 30-minute grace period and the next check, 10 minutes later, retries it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

import requests

from xero_crm_sync.connections import ConnectionInfo, ConnectionStore, skip_message
from xero_crm_sync.oauth import ReconnectRequired, RefreshFailed, allow_loopback_http
from xero_crm_sync.settings import Settings

log = logging.getLogger(__name__)

# The DAG runs every 10 minutes; a token with less than 15 minutes left would otherwise expire before the next
# check, so it is refreshed now (an access token lives 30 minutes: about every other check refreshes).
REFRESH_AHEAD_SECONDS = 15 * 60
KEEP_HISTORY = timedelta(days=30)
BROKEN = ("reconnect_required", "tenant_missing")


@dataclass
class HealthResult:
    """One check of one connection; secret-free (travels through XCom)."""

    connection_id: int
    tenant_name: str | None
    role: str
    outcome: str  # ok | refresh_failed | reconnect_required | tenant_missing | unreachable | skipped
    status: str  # the connection's status after the check
    refreshed: bool = False
    detail: str | None = None
    expires_in_seconds: int | None = None

    @property
    def newly_broken(self) -> bool:
        """This check found the connection broken (it was active until now)."""
        return self.outcome in BROKEN

    @property
    def transient(self) -> bool:
        return self.outcome in ("refresh_failed", "unreachable")

    def as_dict(self) -> dict:
        return asdict(self)


def check_connection(
    store: ConnectionStore,
    info: ConnectionInfo,
    settings: Settings,
    *,
    run_id: str | None = None,
    refresh_ahead: float = REFRESH_AHEAD_SECONDS,
) -> HealthResult:
    """Check one connection now and record the outcome (see the module docstring)."""
    result = HealthResult(info.id, info.tenant_name, info.role, "ok", info.status)
    if info.status != "active":
        result.outcome, result.detail = "skipped", skip_message(info)
        log.warning("%s", result.detail)
        return result
    allow_loopback_http(settings.xero_identity_url, settings.xero_api_url)
    try:
        session = store.session(info.id, settings)
        if session.expires_in() < refresh_ahead:
            session.refresh_token(settings.token_url)
            result.refreshed = session.refreshes > 0  # 0: another worker had just refreshed; we adopted it
        response = session.get(settings.connections_url, timeout=30)
        result.expires_in_seconds = int(session.expires_in())
    except ReconnectRequired as exc:
        # invalid_grant: the session already flagged the connection in the refresh's own transaction. No
        # stored token at all: flag it here.
        result.outcome, result.detail = "reconnect_required", str(exc)
        if store.get(info.id).status == "active":
            store.mark_needs_reconnect(info.id, str(exc))
    except RefreshFailed as exc:
        result.outcome, result.detail = "refresh_failed", str(exc)
    except requests.RequestException as exc:
        result.outcome, result.detail = "unreachable", f"GET /connections failed: {type(exc).__name__}"
    else:
        _judge(store, info, response, result)
    result.status = store.get(info.id).status if result.outcome in BROKEN else info.status
    store.record_health(
        info.id, result.outcome, detail=result.detail, refreshed=result.refreshed, run_id=run_id
    )
    level = logging.INFO if result.outcome == "ok" else logging.WARNING
    log.log(
        level,
        "connection %s (%s, %s): %s%s%s",
        info.id,
        info.tenant_name,
        info.role,
        result.outcome,
        " (token refreshed)" if result.refreshed else "",
        f": {result.detail}" if result.detail else "",
    )
    return result


def _judge(
    store: ConnectionStore, info: ConnectionInfo, response: requests.Response, result: HealthResult
) -> None:
    if response.status_code == 401:
        # The session already refreshed once and retried: Xero still refuses the grant's tokens.
        result.outcome = "reconnect_required"
        result.detail = "Xero refuses the connection's access token (401) even after a refresh: reconnect it"
        store.mark_needs_reconnect(info.id, result.detail)
        return
    if response.status_code != 200:
        result.outcome, result.detail = "unreachable", f"GET /connections answered {response.status_code}"
        return
    listed = {c.get("tenantId") for c in response.json()}
    if info.tenant_id in listed:
        return
    result.outcome = "tenant_missing"
    result.detail = (
        f"Xero no longer lists {info.tenant_name} among this app's connections: it was disconnected in Xero "
        "(Settings > Connected Apps) or the authorising user lost access. Reconnect it with "
        f"`python -m xero_crm_sync connect --operating-company <name> --role {info.role}`"
    )
    store.mark_disconnected(info.id, by="xero", reason=result.detail)
