"""XeroHook: the one place Airflow tasks get at Xero and the CRM database.

Modelled on providers' hooks: connection handling lives here, public methods stay small, the logic they call
lives in `include/xero_crm_sync` (no Airflow imports there). Where settings come from, first found wins:

- the Xero app (client id and secret) and Xero's hosts: the Airflow connection `xero_default` (type `xero`:
  login = client id, password = client secret, extras `login_url`, `identity_url`, `api_url`), else
  XERO_CLIENT_ID / XERO_CLIENT_SECRET and XERO_*_URL from the environment, else Xero's own hosts;
- the CRM database: the Airflow connection `xero_crm_db` (type `postgres`: host, port, login, password, schema =
  the database; type `sqlite`: the file in host; or any type with extra `sqlalchemy_url`), else CRM_DATABASE_URL.

The hook only reads Airflow's connections and passes their values to `xero_crm_sync.settings.get_settings`, which
applies that order for every process. The organisations themselves (one `xero_connection` row per operating
company and role) and their tokens stay in the CRM database, encrypted, where the refresh under the row's lock
needs them; they are created by `python -m xero_crm_sync connect`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from sqlalchemy import Engine

from xero_crm_sync import db, redaction
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore
from xero_crm_sync.settings import Settings, database_url_from_connection, get_settings
from xero_crm_sync.xero_client import XeroClient

XERO_CONN_ID = "xero_default"
CRM_DB_CONN_ID = "xero_crm_db"
# The `xero` connection's extras, and the setting each one stands for.
URL_EXTRAS = {"login_url": "XERO_LOGIN_URL", "identity_url": "XERO_IDENTITY_URL", "api_url": "XERO_API_URL"}


class XeroHook(BaseHook):
    """Talk to the Xero organisation of one CRM-side connection (`xero_connection.id`).

    :param connection_id: the CRM's `xero_connection.id` (an organisation), for calls to one organisation
    :param crm_database_url: a CRM database URL that wins over every other source (tests, one-off scripts)
    :param xero_conn_id: the Airflow connection of type `xero` holding the Xero app
    :param crm_db_conn_id: the Airflow connection of the CRM database
    """

    conn_name_attr = "xero_conn_id"
    default_conn_name = XERO_CONN_ID
    conn_type = "xero"
    hook_name = "Xero"

    def __init__(
        self,
        connection_id: int | None = None,
        *,
        crm_database_url: str | None = None,
        xero_conn_id: str = XERO_CONN_ID,
        crm_db_conn_id: str = CRM_DB_CONN_ID,
    ) -> None:
        super().__init__()
        # Every Xero secret this task decrypts or receives is masked in its log as well (C3).
        redaction.add_sink(mask_secret)
        self.connection_id = connection_id
        self.xero_conn_id = xero_conn_id
        self.crm_db_conn_id = crm_db_conn_id
        self._crm_database_url = crm_database_url

    @cached_property
    def settings(self) -> Settings:
        overrides = {**self._app_settings(), **self._crm_database_settings()}
        return get_settings(
            overrides=overrides, credentials_from=f"the Airflow connection {self.xero_conn_id!r}"
        )

    @cached_property
    def engine(self) -> Engine:
        return db.get_engine(self._crm_database_url or self.settings.crm_database_url)

    @cached_property
    def store(self) -> ConnectionStore:
        return ConnectionStore(self.engine)

    def info(self) -> ConnectionInfo:
        if self.connection_id is None:
            raise ValueError("XeroHook needs a connection_id for calls to one organisation")
        return self.store.get(self.connection_id)

    def get_conn(self) -> XeroClient:
        """An Accounting API client for the connection (refreshes its token under the connection's lock)."""
        from xero_crm_sync.xero_access import make_client

        return make_client(self.store, self.info(), self.settings)

    def list_connections(self, *, respect_interval: bool = False) -> list[dict[str, Any]]:
        """Active connections (secret-free dicts); scheduled runs also honour each company's interval (S9)."""
        from xero_crm_sync.import_run import connections_to_run

        return connections_to_run(self.store, self.connection_id, respect_interval=respect_interval)

    # --- Airflow connections -------------------------------------------------------------------------------

    def _airflow_connection(self, conn_id: str) -> Connection | None:
        """The Airflow connection, or None when it is not defined (the environment's settings apply)."""
        try:
            return self.get_connection(conn_id)
        except AirflowNotFoundException:
            return None

    def _app_settings(self) -> dict[str, str | None]:
        conn = self._airflow_connection(self.xero_conn_id)
        if conn is None:
            return {}
        if conn.conn_type != self.conn_type:
            self.log.warning(
                "Airflow connection %r is of type %r, not %r: reading its login and password as the Xero app's "
                "client id and secret anyway",
                self.xero_conn_id,
                conn.conn_type,
                self.conn_type,
            )
        extra = conn.extra_dejson or {}
        return {
            "XERO_CLIENT_ID": conn.login or None,
            "XERO_CLIENT_SECRET": conn.password or None,
            **{variable: extra.get(name) or None for name, variable in URL_EXTRAS.items()},
        }

    def _crm_database_settings(self) -> dict[str, str | None]:
        return _crm_database_overrides(self._airflow_connection(self.crm_db_conn_id))


def _crm_database_overrides(conn: Connection | None) -> dict[str, str | None]:
    """The CRM database URL an Airflow connection describes, as a settings override (none without one)."""
    if conn is None:
        return {}
    url = database_url_from_connection(
        conn.conn_type,
        host=conn.host,
        port=conn.port,
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        extra=conn.extra_dejson or {},
    )
    return {"CRM_DATABASE_URL": url}


def crm_engine() -> Engine:
    """The CRM database for Airflow components that run no task: the api-server's status page and webhook
    receiver. Resolved as a task resolves it (the `xero_crm_db` connection, else CRM_DATABASE_URL) on every call,
    so a changed connection is picked up; `db.get_engine` pools one engine per URL."""
    return XeroHook().engine


async def acrm_database_url(crm_db_conn_id: str = CRM_DB_CONN_ID) -> str:
    """The CRM database URL for the triggerer's triggers, resolved like `crm_engine` but without blocking the
    triggerer's event loop (Airflow's async connection lookup)."""
    try:
        conn: Connection | None = await BaseHook.aget_connection(crm_db_conn_id)
    except AirflowNotFoundException:
        conn = None
    return get_settings(overrides=_crm_database_overrides(conn)).crm_database_url
