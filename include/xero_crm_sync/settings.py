"""Process-wide settings, read from the environment with documented defaults.

Pointing the three Xero URLs at the sandbox is the only change the pipeline needs to talk to it:

    XERO_LOGIN_URL=http://127.0.0.1:8765 XERO_IDENTITY_URL=http://127.0.0.1:8765 XERO_API_URL=http://127.0.0.1:8765

Under Airflow the same settings can come from Airflow connections instead (the Xero app `xero_default`, the CRM
database `xero_crm_db`): the hook (plugins/, the only place that imports airflow) reads them and passes their
values here as `overrides`, keyed by the variable they replace, so there is one order of precedence for every
process: an Airflow connection's value, then the environment, then the default.

Per-operating-company settings (S1-S9) live in the CRM database, not here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from xero_crm_sync import redaction

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
    # The Xero app (client id and secret): what `connect` authorises with, and, for an organisation authorised
    # with the same app, the secret its token refreshes use (so a secret rotated in Xero is changed in one place).
    # Never in a repr: Settings may end up in a log line or an exception.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    credentials_from: str = "XERO_CLIENT_ID / XERO_CLIENT_SECRET"  # named in messages about the app's secret

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


def get_settings(
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, str | None] | None = None,
    credentials_from: str = "the Airflow connection",
) -> Settings:
    """Read the settings now (not at import time), so tests and CLIs can change the environment.

    `overrides` are values from Airflow connections, keyed by the environment variable they stand for
    (XERO_CLIENT_ID, XERO_CLIENT_SECRET, XERO_LOGIN_URL, XERO_IDENTITY_URL, XERO_API_URL, CRM_DATABASE_URL);
    an empty or missing one falls back to the environment, then the default. `credentials_from` names where
    an overriding client id and secret came from, for the message when Xero refuses the secret.
    """
    env = os.environ if environ is None else environ
    given = overrides or {}

    def value(name: str) -> str | None:
        return given.get(name) or env.get(name) or DEFAULTS.get(name)

    # The app's id and secret go together: both from the Airflow connection when it names an app, else both
    # from the environment (never one app's id with another's secret).
    app = given if given.get("XERO_CLIENT_ID") else env
    secret = app.get("XERO_CLIENT_SECRET") or None
    # Masked in every log line of this process from now on, wherever it came from.
    redaction.remember(secret)
    return Settings(
        xero_login_url=str(value("XERO_LOGIN_URL")),
        xero_identity_url=str(value("XERO_IDENTITY_URL")),
        xero_api_url=str(value("XERO_API_URL")),
        crm_database_url=str(value("CRM_DATABASE_URL")),
        client_id=app.get("XERO_CLIENT_ID") or None,
        client_secret=secret,
        credentials_from=credentials_from if app is given else Settings.credentials_from,
    )


def database_url_from_connection(
    conn_type: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The SQLAlchemy URL of a database described as an Airflow connection's fields (the CRM's `xero_crm_db`).

    - extra `sqlalchemy_url`: used as it is (any database SQLAlchemy knows);
    - type `sqlite`: the file in host, as Airflow's SQLite connections hold it;
    - otherwise a server database: type `postgres` (Airflow's name; any `postgres*`) is PostgreSQL, host, port,
      login, password and schema (the database) as the Connections form has them.
    """
    explicit = (extra or {}).get("sqlalchemy_url")
    if explicit:
        return str(explicit)
    kind = (conn_type or "").lower()
    if kind == "sqlite":
        if not host:
            raise SettingsError("a SQLite CRM database connection needs the database file's path in host")
        return f"sqlite:///{host}"
    if kind.startswith("postgres"):
        kind = "postgresql"
    if not kind or not host:
        raise SettingsError(
            "the CRM database connection needs a type (postgres or sqlite) and a host, "
            "or extra sqlalchemy_url"
        )
    url = URL.create(
        kind,
        username=login or None,
        password=password or None,
        host=host,
        port=port or None,
        database=schema or None,
    )
    return url.render_as_string(hide_password=False)
