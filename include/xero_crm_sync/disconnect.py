"""Disconnect an organisation from the CRM side (C5): revoke at Xero, stop every DAG for it, keep all CRM data.

1. With the connection's token, find the organisation in Xero's `/connections` and delete that connection
   (`DELETE /connections/{id}`): Xero stops the app's access to that organisation only.
2. Revoke the refresh token (`POST /connect/revocation`) so the grant ends. Xero's revocation removes every
   connection the same Xero user made with the same app, so when another of our active connections shares
   that user and app (a primary and a secondary authorised by one person), the token is not revoked (that
   would disconnect the other one too); it is deleted here instead and never used again.
3. Mark the connection `disconnected` (by the CRM) and delete its tokens. Imports and pushes skip it from now
   on; CRM records, history, errors and the export queue stay. `connect` with the same organisation and role
   revives the connection where it left off.

If Xero cannot be reached nothing changes (run it again), unless `force`: then the CRM side disconnects anyway
and the result says to remove the app in Xero under Settings > Connected Apps.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import requests

from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import ReconnectRequired, RefreshFailed, allow_loopback_http, revoke
from xero_crm_sync.settings import Settings

log = logging.getLogger(__name__)


class DisconnectError(RuntimeError):
    """Nothing was changed; the message says why and what to do."""


@dataclass
class DisconnectResult:
    connection_id: int
    tenant_name: str | None
    role: str
    removed_at_xero: bool = False  # DELETE /connections/{id} succeeded (or Xero no longer listed it)
    token_revoked: bool = False  # POST /connect/revocation ended the grant
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def disconnect(
    store: ConnectionStore,
    settings: Settings,
    connection_id: int,
    *,
    by_user: str | None = None,
    force: bool = False,
) -> DisconnectResult:
    """Disconnect one connection (see the module docstring); raises DisconnectError when nothing changed."""
    info = store.get(connection_id)
    if info.status == "disconnected":
        raise DisconnectError(f"Xero connection {connection_id} ({info.tenant_name}) is already disconnected")
    result = DisconnectResult(connection_id, info.tenant_name, info.role)
    allow_loopback_http(settings.xero_identity_url, settings.xero_api_url)
    try:
        _revoke_at_xero(store, settings, connection_id, info.tenant_id, result)
    except ReconnectRequired:
        result.notes.append("Xero had already ended this connection's grant; nothing left to revoke there")
    except (RefreshFailed, requests.RequestException, RuntimeError) as exc:
        reason = str(exc) if isinstance(exc, RefreshFailed | RuntimeError) else type(exc).__name__
        if not force:
            raise DisconnectError(
                f"could not revoke the connection at Xero ({reason}); nothing was changed. Run it again, or add "
                "--force to disconnect in the CRM only (then remove the app in Xero: Settings > Connected Apps)"
            ) from None
        result.notes.append(
            f"not revoked at Xero ({reason}): remove the app in Xero under Settings > Connected Apps"
        )
    who = f" by {by_user}" if by_user else ""
    store.mark_disconnected(connection_id, by="crm", reason=f"disconnected from the CRM{who}")
    log.info(
        "disconnected Xero connection %s (%s, %s): removed at Xero %s, token revoked %s%s",
        connection_id,
        info.tenant_name,
        info.role,
        result.removed_at_xero,
        result.token_revoked,
        "".join(f"; {n}" for n in result.notes),
    )
    return result


def _revoke_at_xero(
    store: ConnectionStore, settings: Settings, connection_id: int, tenant_id: str, result: DisconnectResult
) -> None:
    session = store.session(connection_id, settings)
    response = session.get(settings.connections_url, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"GET /connections answered {response.status_code}")
    for xero_connection in response.json():
        if xero_connection.get("tenantId") != tenant_id:
            continue
        deleted = session.delete(f"{settings.connections_url}/{xero_connection['id']}", timeout=30)
        if deleted.status_code not in (200, 204, 404):
            raise RuntimeError(f"DELETE /connections answered {deleted.status_code}")
    result.removed_at_xero = True
    sharing = _sharing_grant_owner(store, connection_id)
    if sharing:
        result.notes.append(
            "refresh token not revoked: connection(s) "
            + ", ".join(str(i) for i in sharing)
            + " share its Xero user and app, and Xero's revocation would end them too; the token is deleted"
        )
        return
    revoke(
        settings.revocation_url, store.credentials(connection_id, settings), session.token["refresh_token"]
    )
    result.token_revoked = True


def _sharing_grant_owner(store: ConnectionStore, connection_id: int) -> list[int]:
    """Other live connections authorised by the same Xero user with the same app (an unknown user counts as
    the same: revoking by mistake would disconnect an organisation nobody asked to disconnect)."""
    client_id, user = store.grant_owner(connection_id)
    sharing = []
    for other in store.list():
        if other.id == connection_id:
            continue
        try:
            other_client, other_user = store.grant_owner(other.id)
        except ReconnectRequired:
            continue  # holds no token: nothing to protect
        if other_client == client_id and (user is None or other_user is None or other_user == user):
            sharing.append(other.id)
    return sharing
