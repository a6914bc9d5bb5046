"""XeroHook: the one place Airflow tasks get at Xero and the CRM database.

Modelled on providers' hooks: connection handling lives here, public methods stay small, the logic they call
lives in `include/xero_crm_sync` (no Airflow imports there). Configuration comes from the environment (see
README: CRM_DATABASE_URL, XERO_*_URL, XERO_CRM_FERNET_KEY); Xero connections and their encrypted tokens live in
the CRM database, one row per organisation, created by `python -m xero_crm_sync connect`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from sqlalchemy import Engine

from xero_crm_sync import db, redaction
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore
from xero_crm_sync.settings import Settings, get_settings
from xero_crm_sync.xero_client import XeroClient


class XeroHook(BaseHook):
    """Talk to the Xero organisation of one CRM-side connection (`xero_connection.id`)."""

    hook_name = "Xero (xero-crm-sync)"

    def __init__(self, connection_id: int | None = None, *, crm_database_url: str | None = None) -> None:
        super().__init__()
        # Every Xero secret this task decrypts or receives is masked in its log as well (C3).
        redaction.add_sink(mask_secret)
        self.connection_id = connection_id
        self._crm_database_url = crm_database_url

    @cached_property
    def settings(self) -> Settings:
        return get_settings()

    @cached_property
    def engine(self) -> Engine:
        return db.get_engine(self._crm_database_url)

    @cached_property
    def store(self) -> ConnectionStore:
        return ConnectionStore(self.engine)

    def info(self) -> ConnectionInfo:
        if self.connection_id is None:
            raise ValueError("XeroHook needs a connection_id for calls to one organisation")
        return self.store.get(self.connection_id)

    def get_conn(self) -> XeroClient:
        """An Accounting API client for the connection (refreshes its token under the connection's lock)."""
        from xero_crm_sync.import_run import make_client

        return make_client(self.store, self.info(), self.settings)

    def list_connections(self, *, respect_interval: bool = False) -> list[dict[str, Any]]:
        """Active connections (secret-free dicts); scheduled runs also honour each company's interval (S9)."""
        from xero_crm_sync.import_run import connections_to_run

        return connections_to_run(self.store, self.connection_id, respect_interval=respect_interval)
