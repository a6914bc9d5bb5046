"""XeroHook, for the DAGs' `from xero_hook import XeroHook`: the class lives in the project's Airflow provider
(`providers/xero`, package `xero_crm_sync_provider`), which registers the `xero` connection type it belongs to."""

from __future__ import annotations

from xero_crm_sync_provider.hooks.xero import CRM_DB_CONN_ID, XERO_CONN_ID, XeroHook

__all__ = ["CRM_DB_CONN_ID", "XERO_CONN_ID", "XeroHook"]
