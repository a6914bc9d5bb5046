"""Process-wide settings, read from the environment with documented defaults.

Pointing the three Xero URLs at the sandbox is the only change the pipeline needs to talk to it:

    XERO_LOGIN_URL=http://127.0.0.1:8765 XERO_IDENTITY_URL=http://127.0.0.1:8765 XERO_API_URL=http://127.0.0.1:8765

Per-operating-company settings (S1-S9) live in the CRM database, not here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("XERO_CRM_VAR_DIR", PROJECT_ROOT / "var"))

DEFAULTS: dict[str, str] = {
    # Xero's three hosts: login (authorize page), identity (token, revocation), api (connections, accounting).
    "XERO_LOGIN_URL": "https://login.xero.com",
    "XERO_IDENTITY_URL": "https://identity.xero.com",
    "XERO_API_URL": "https://api.xero.com",
    # The CRM database: an embedded SQLite file by default; any SQLAlchemy URL (PostgreSQL in production).
    "CRM_DATABASE_URL": f"sqlite:///{VAR_DIR / 'crm.db'}",
}


class SettingsError(RuntimeError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    xero_login_url: str
    xero_identity_url: str
    xero_api_url: str
    crm_database_url: str

    @property
    def authorize_url(self) -> str:
        return f"{self.xero_login_url.rstrip('/')}/identity/connect/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.xero_identity_url.rstrip('/')}/connect/token"

    @property
    def revocation_url(self) -> str:
        return f"{self.xero_identity_url.rstrip('/')}/connect/revocation"

    @property
    def connections_url(self) -> str:
        return f"{self.xero_api_url.rstrip('/')}/connections"

    @property
    def accounting_url(self) -> str:
        return f"{self.xero_api_url.rstrip('/')}/api.xro/2.0"


def get_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings now (not at import time), so tests and CLIs can change the environment."""
    env = os.environ if environ is None else environ

    def value(name: str) -> str:
        return env.get(name) or DEFAULTS[name]

    return Settings(
        xero_login_url=value("XERO_LOGIN_URL"),
        xero_identity_url=value("XERO_IDENTITY_URL"),
        xero_api_url=value("XERO_API_URL"),
        crm_database_url=value("CRM_DATABASE_URL"),
    )
