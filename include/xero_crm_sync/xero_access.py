"""Getting at one connection's Xero organisation: the client every layer uses, and what a 403 means.

Import, push, the order outbox, webhooks and the Airflow hook all make their clients here, so the connection's
session (token refresh under its lock), the shared limiter (`engine`) and loopback-only plain HTTP are the same
everywhere. Deliberately light: no pandas or Great Expectations (the import's), so an order run starts fast.
"""

from __future__ import annotations

from typing import Any

from xero_crm_sync import health
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore
from xero_crm_sync.oauth import allow_loopback_http
from xero_crm_sync.settings import Settings
from xero_crm_sync.xero_client import XeroClient


def make_client(
    store: ConnectionStore, info: ConnectionInfo, settings: Settings, **kwargs: Any
) -> XeroClient:
    """An Accounting API client for the connection; `kwargs` go to `XeroClient` (`retry`, `limits`)."""
    allow_loopback_http(settings.xero_identity_url, settings.xero_api_url)
    return XeroClient(
        store.session(info.id, settings), settings.xero_api_url, info.tenant_id, engine=store.engine, **kwargs
    )


def organisation_gone(store: ConnectionStore, info: ConnectionInfo, settings: Settings) -> bool:
    """After a 403: is the organisation gone (disconnected in Xero, grant revoked) rather than a scope missing?
    Asks Xero's /connections once, as the health check does, which flags the connection if so."""
    return health.check_connection(store, info, settings).outcome in health.BROKEN
