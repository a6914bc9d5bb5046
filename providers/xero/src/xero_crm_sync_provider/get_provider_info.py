"""What Airflow's ProvidersManager reads from this provider (the `apache_airflow_provider` entry point).

The connection form is declared here (`conn-fields`, `ui-field-behaviour`, Airflow 3.2+), so the api-server
builds the Connections form without importing the hook. Login and password hold the Xero app's client id and
secret; the three Xero hosts are optional extras (empty: XERO_*_URL from the environment, then Xero's own), set to
the sandbox's URL for development. Which organisations are synced is not a field: those are the CRM's
connections (`python -m xero_crm_sync connect`), one per operating company and role, whose tokens stay encrypted
in the CRM database where the row-locked refresh needs them.
"""

from __future__ import annotations

from typing import Any

HOOK_CLASS = "xero_crm_sync_provider.hooks.xero.XeroHook"


def _url_field(label: str, variable: str, default: str) -> dict[str, Any]:
    return {
        "label": label,
        "schema": {"type": ["string", "null"]},
        "description": f"Empty: ${variable}, else {default}. The sandbox: http://127.0.0.1:8765",
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "xero-crm-sync-provider",
        "name": "Xero (xero-crm-sync)",
        "description": "Xero accounting, synced both ways with a CRM database by xero-crm-sync.",
        "integrations": [
            {
                "integration-name": "Xero",
                "external-doc-url": "https://developer.xero.com/documentation/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Xero", "python-modules": ["xero_crm_sync_provider.hooks.xero"]}],
        "connection-types": [
            {
                "hook-class-name": HOOK_CLASS,
                "hook-name": "Xero",
                "connection-type": "xero",
                "conn-fields": {
                    "login_url": _url_field("Login URL", "XERO_LOGIN_URL", "https://login.xero.com"),
                    "identity_url": _url_field(
                        "Identity URL", "XERO_IDENTITY_URL", "https://identity.xero.com"
                    ),
                    "api_url": _url_field("API URL", "XERO_API_URL", "https://api.xero.com"),
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "extra"],
                    "relabeling": {"login": "Client id", "password": "Client secret"},
                    "placeholders": {
                        "login": "the app's client id (developer.xero.com -> My Apps -> your app)",
                        "password": "the app's client secret",
                    },
                },
            }
        ],
    }
