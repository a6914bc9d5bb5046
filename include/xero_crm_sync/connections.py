"""Xero connections in the CRM database, with their secrets encrypted (`xero_connection.token_blob`).

The blob holds the app credentials the organisation was authorised with and the current token set, encrypted
as one Fernet token; nothing else in the database, the logs or XComs ever holds them. Callers get
`ConnectionInfo` (no secrets) for listing, and a `XeroSession` (which refreshes under the row lock) for calling.

Statuses: `active` (DAGs use it), `needs_reconnect` (Xero refused the grant: DAGs skip it until `connect` runs
again), `disconnected` (disconnected from the CRM or in Xero: history only; its tokens are deleted). Rules (C2):
an operating company has at most one primary and one secondary organisation, and one Xero organisation belongs
to one operating company in one role; `save_new` says so in words, the unique indexes are the last line.
Reconnecting the same organisation in the same role revives its row, so watermarks, history and the export
queue carry on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Connection, Engine, bindparam, text
from sqlalchemy.exc import IntegrityError

from xero_crm_sync import db, redaction
from xero_crm_sync.oauth import AppCredentials, ReconnectRequired, XeroSession, token_claims
from xero_crm_sync.secrets import SecretBox
from xero_crm_sync.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("primary", "secondary")
RUNNABLE_STATUS = "active"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _as_utc_naive(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC).replace(tzinfo=None)


class ConnectionConflict(ValueError):
    """Connecting would break C2 (one primary and one secondary per company, one company per organisation)."""


@dataclass(frozen=True)
class ConnectionInfo:
    """What may be shown and passed around (XCom, logs, UI): no tokens, no secret."""

    id: int
    operating_company_id: int
    role: str
    tenant_id: str
    tenant_name: str | None
    status: str
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def skip_message(info: ConnectionInfo) -> str:
    """Why a DAG leaves this connection out, and what to do about it (logged once per run)."""
    what = {
        "needs_reconnect": "needs a reconnect",
        "disconnected": "is disconnected",
    }.get(info.status, f"has status {info.status}")
    return (
        f"skipping Xero connection {info.id} ({info.tenant_name}, {info.role}): it {what}"
        + (f" ({info.last_error})" if info.last_error else "")
        + ". Reconnect it with `python -m xero_crm_sync connect --operating-company <name> "
        + f"--role {info.role}`."
    )


_STATUS_SQL = (
    "UPDATE xero_connection SET status = :status, last_error = :error, health = :health, "
    # CASTs: PostgreSQL cannot infer a parameter's type from `IS NULL` alone.
    "last_error_at = CASE WHEN CAST(:error AS TEXT) IS NULL THEN last_error_at ELSE :now END, updated_at = :now "
    "WHERE id = :id"
)


class LockedToken:
    """The stored token of one connection, read and written inside the connection's lock."""

    def __init__(self, conn: Connection, connection_id: int, box: SecretBox, blob: dict[str, Any]) -> None:
        self._conn = conn
        self._id = connection_id
        self._box = box
        self._blob = blob

    @property
    def token(self) -> dict[str, Any]:
        return dict(self._blob["token"])

    def save(self, token: dict[str, Any]) -> None:
        """Store the new token set (a refresh succeeded): the connection is healthy again."""
        self._blob = {**self._blob, "token": token}
        now = utcnow()
        self._conn.execute(
            text(
                "UPDATE xero_connection SET token_blob = :blob, last_refresh_at = :now, updated_at = :now, "
                "token_expires_at = :expires, last_error = NULL, health = 'ok', "
                "status = CASE WHEN status = 'needs_reconnect' THEN 'active' ELSE status END "
                # A connection disconnected meanwhile keeps no token, even if a refresh was in flight.
                "WHERE id = :id AND status <> 'disconnected'"
            ),
            {
                "blob": self._box.encrypt_json(self._blob),
                "now": now,
                "expires": _as_utc_naive(token.get("expires_at")),
                "id": self._id,
            },
        )

    def mark_needs_reconnect(self, reason: str) -> None:
        """Xero refused the grant: flag the connection on the locked connection (same transaction)."""
        self._conn.execute(
            text(_STATUS_SQL),
            {
                "status": "needs_reconnect",
                "error": reason,
                "health": "reconnect_required",
                "now": utcnow(),
                "id": self._id,
            },
        )


class ConnectionStore:
    def __init__(self, engine: Engine, box: SecretBox | None = None) -> None:
        self.engine = engine
        self.box = box or SecretBox.from_env()

    # --- listing -----------------------------------------------------------------------------------------

    def list(
        self, *, connection_id: int | None = None, include_inactive: bool = False
    ) -> list[ConnectionInfo]:
        """Connections, without disconnected ones unless `include_inactive`."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    text(
                        "SELECT id, operating_company_id, role, tenant_id, tenant_name, status, last_error "
                        "FROM xero_connection WHERE (:id IS NULL OR id = :id) "
                        "AND (:all_rows OR status <> 'disconnected') ORDER BY operating_company_id, role, id"
                    ).bindparams(bindparam("id", type_=BigInteger), bindparam("all_rows", type_=Boolean)),
                    {"id": connection_id, "all_rows": include_inactive},
                )
                .mappings()
                .all()
            )
        return [ConnectionInfo(**row) for row in rows]

    def get(self, connection_id: int) -> ConnectionInfo:
        found = self.list(connection_id=connection_id, include_inactive=True)
        if not found:
            raise KeyError(f"no Xero connection with id {connection_id}")
        return found[0]

    def runnable(
        self, connection_id: int | None = None, *, roles: tuple[str, ...] = ROLES
    ) -> list[ConnectionInfo]:
        """The active connections a DAG should work on; every other one is logged once with what to do.

        Imports use both roles; pushes only the primary (the secondary only enriches, I13).
        """
        chosen = []
        for info in self.list(connection_id=connection_id, include_inactive=connection_id is not None):
            if info.role not in roles:
                continue
            if info.status != RUNNABLE_STATUS:
                log.warning("%s", skip_message(info))
                continue
            chosen.append(info)
        return chosen

    # --- writing -----------------------------------------------------------------------------------------

    def save_new(
        self,
        *,
        operating_company_id: int,
        role: str,
        tenant_id: str,
        tenant_name: str | None,
        credentials: AppCredentials,
        token: dict[str, Any],
        scopes: str,
        authorised_by: str | None = None,
    ) -> int:
        """Store a freshly authorised connection, or re-authorise the same organisation's row in that role.

        Raises ConnectionConflict when the company already has another organisation in that role, or the
        organisation is connected elsewhere (another company, or the other role).
        """
        if role not in ROLES:
            raise ConnectionConflict(f"role is one of {', '.join(ROLES)}, not {role!r}")
        redaction.remember_token(token)
        blob = self.box.encrypt_json(
            {"client_id": credentials.client_id, "client_secret": credentials.client_secret, "token": token}
        )
        now = utcnow()
        params = {
            "oc": operating_company_id,
            "role": role,
            "tenant_id": tenant_id,
            "tenant_name": tenant_name,
            "blob": blob,
            "scopes": scopes,
            "by": authorised_by or token_claims(token.get("access_token", "")).get("xero_userid"),
            "expires": _as_utc_naive(token.get("expires_at")),
            "now": now,
        }
        try:
            with self.engine.begin() as conn:
                _check_roles(conn, operating_company_id, role, tenant_id)
                existing = conn.execute(
                    text(
                        "SELECT id FROM xero_connection WHERE tenant_id = :tenant_id AND operating_company_id = :oc "
                        "AND role = :role ORDER BY CASE WHEN status = 'disconnected' THEN 1 ELSE 0 END, id DESC"
                    ),
                    params,
                ).first()
                if existing is not None:
                    conn.execute(
                        text(
                            "UPDATE xero_connection SET token_blob = :blob, scopes = :scopes, "
                            "tenant_name = :tenant_name, status = 'active', health = 'ok', last_error = NULL, "
                            "disconnected_at = NULL, disconnected_by = NULL, last_refresh_at = :now, "
                            "token_expires_at = :expires, connected_at = :now, authorised_by = :by, "
                            "updated_at = :now WHERE id = :id"
                        ),
                        {**params, "id": existing[0]},
                    )
                    return int(existing[0])
                return int(
                    conn.execute(
                        text(
                            "INSERT INTO xero_connection (operating_company_id, role, tenant_id, tenant_name, "
                            "status, health, token_blob, scopes, authorised_by, connected_at, last_refresh_at, "
                            "token_expires_at, created_at, updated_at) VALUES (:oc, :role, :tenant_id, "
                            ":tenant_name, 'active', 'ok', :blob, :scopes, :by, :now, :now, :expires, :now, :now) "
                            "RETURNING id"
                        ),
                        params,
                    ).scalar_one()
                )
        except IntegrityError:
            # A concurrent connect won the race for the slot; say so in the same words as the checks.
            with self.engine.connect() as conn:
                _check_roles(conn, operating_company_id, role, tenant_id)
            raise

    def set_status(self, connection_id: int, status: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(_STATUS_SQL),
                {
                    "status": status,
                    "error": error,
                    "health": {"needs_reconnect": "reconnect_required", "active": "ok"}.get(status, status),
                    "now": utcnow(),
                    "id": connection_id,
                },
            )

    def mark_needs_reconnect(self, connection_id: int, reason: str) -> None:
        self.set_status(connection_id, "needs_reconnect", reason)

    def mark_disconnected(self, connection_id: int, *, by: str, reason: str) -> None:
        """Stop every DAG using the connection and delete its tokens; CRM data, history and errors stay."""
        if by not in ("crm", "xero"):
            raise ValueError("by is 'crm' or 'xero'")
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE xero_connection SET status = 'disconnected', health = 'disconnected', "
                    "disconnected_by = :by, disconnected_at = :now, last_error = :reason, last_error_at = :now, "
                    "token_blob = NULL, token_expires_at = NULL, updated_at = :now WHERE id = :id"
                ),
                {"by": by, "reason": reason, "now": now, "id": connection_id},
            )

    def record_health(
        self,
        connection_id: int,
        outcome: str,
        *,
        detail: str | None = None,
        refreshed: bool = False,
        run_id: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Keep what a health check saw: one `connection_health_check` row, and the latest on the connection."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO connection_health_check (connection_id, checked_at, outcome, refreshed, detail, "
                    "run_id) VALUES (:id, :now, :outcome, :refreshed, :detail, :run_id)"
                ),
                {
                    "id": connection_id,
                    "now": now,
                    "outcome": outcome,
                    "refreshed": refreshed,
                    "detail": detail,
                    "run_id": run_id,
                },
            )
            # A skipped check (the connection is not active) leaves the connection's own health as it was.
            if outcome != "skipped":
                conn.execute(
                    text(
                        "UPDATE xero_connection SET last_health_check_at = :now, health = :outcome, "
                        "last_error = CASE WHEN CAST(:outcome AS TEXT) = 'ok' THEN NULL "
                        "ELSE CAST(:detail AS TEXT) END, "
                        "last_error_at = CASE WHEN CAST(:outcome AS TEXT) = 'ok' THEN last_error_at ELSE :now END, "
                        "updated_at = :now WHERE id = :id"
                    ),
                    {"id": connection_id, "now": now, "outcome": outcome, "detail": detail},
                )

    def prune_health_checks(self, older_than: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                text("DELETE FROM connection_health_check WHERE checked_at < :t"), {"t": older_than}
            ).rowcount

    # --- secrets -----------------------------------------------------------------------------------------

    def _blob(self, conn: Connection, connection_id: int, *, lock: bool) -> dict[str, Any]:
        sql = "SELECT token_blob FROM xero_connection WHERE id = :id"
        if lock and conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        blob = conn.execute(text(sql), {"id": connection_id}).scalar()
        if not blob:
            raise ReconnectRequired(
                f"Xero connection {connection_id} holds no token (disconnected or never connected): "
                "run `python -m xero_crm_sync connect`"
            )
        value = self.box.decrypt_json(blob)
        redaction.remember(value.get("client_secret"))
        redaction.remember_token(value.get("token"))
        return value

    @contextmanager
    def locked_token(self, connection_id: int) -> Iterator[LockedToken]:
        """Hold the connection's lock while reading (and maybe replacing) its token; committed on exit.

        PostgreSQL: `SELECT ... FOR UPDATE` on the connection's row. SQLite: `BEGIN IMMEDIATE` takes the database
        write lock, which serialises refreshes across threads and processes the same way.
        """
        with self.engine.connect() as conn, db.write_transaction(conn):
            yield LockedToken(conn, connection_id, self.box, self._blob(conn, connection_id, lock=True))

    def credentials(self, connection_id: int, settings: Settings | None = None) -> AppCredentials:
        with self.engine.connect() as conn:
            blob = self._blob(conn, connection_id, lock=False)
        if settings is not None:
            return _app_credentials(blob, settings)
        return AppCredentials(blob["client_id"], blob["client_secret"])

    def session(self, connection_id: int, settings: Settings) -> XeroSession:
        """An authenticated session for the connection; refreshes itself safely when the token expires."""
        with self.engine.connect() as conn:
            blob = self._blob(conn, connection_id, lock=False)
        return XeroSession(
            connection_id,
            _app_credentials(blob, settings),
            blob["token"],
            settings.token_url,
            self,
        )

    def token_expires_in(self, connection_id: int) -> float:
        with self.engine.connect() as conn:
            token = self._blob(conn, connection_id, lock=False)["token"]
        return float(token.get("expires_at", 0)) - time.time()

    def grant_owner(self, connection_id: int) -> tuple[str, str | None]:
        """(client_id, xero user id) of the grant behind the connection: who else shares it (disconnect)."""
        with self.engine.connect() as conn:
            blob = self._blob(conn, connection_id, lock=False)
            by = conn.execute(
                text("SELECT authorised_by FROM xero_connection WHERE id = :id"), {"id": connection_id}
            ).scalar()
        return blob["client_id"], by or token_claims(blob["token"].get("access_token", "")).get("xero_userid")


def _app_credentials(blob: dict[str, Any], settings: Settings) -> AppCredentials:
    """The app a connection's token refreshes authenticate as: the one it was authorised with (a refresh token
    works only for the app that got it), with the secret the settings hold when they name that same app, so a
    secret rotated in Xero is changed in the Airflow connection `xero_default` (or XERO_CLIENT_SECRET) alone."""
    if settings.client_secret and settings.client_id == blob["client_id"]:
        if settings.client_secret == blob["client_secret"]:
            return AppCredentials(blob["client_id"], blob["client_secret"])
        return AppCredentials(
            settings.client_id, settings.client_secret, configured_in=settings.credentials_from
        )
    return AppCredentials(blob["client_id"], blob["client_secret"])


def _check_roles(conn: Connection, operating_company_id: int, role: str, tenant_id: str) -> None:
    """Raise ConnectionConflict, in words, when storing this connection would break C2."""
    rows = (
        conn.execute(
            text(
                "SELECT x.id, x.operating_company_id, x.role, x.tenant_id, x.tenant_name, x.status, "
                "oc.name AS company FROM xero_connection x JOIN operating_company oc "
                "ON oc.id = x.operating_company_id WHERE x.status <> 'disconnected' "
                "AND ((x.operating_company_id = :oc AND x.role = :role) OR x.tenant_id = :tenant_id)"
            ),
            {"oc": operating_company_id, "role": role, "tenant_id": tenant_id},
        )
        .mappings()
        .all()
    )
    # The company's own slot first: "ACME already has a primary" is the message a user expects.
    rows = sorted(rows, key=lambda r: (r["operating_company_id"], r["role"]) != (operating_company_id, role))
    for row in rows:
        same_slot = row["operating_company_id"] == operating_company_id and row["role"] == role
        if same_slot and row["tenant_id"] == tenant_id:
            continue  # re-authorising the same organisation in the same role
        if same_slot:
            raise ConnectionConflict(
                f"{row['company']} already has a {role} Xero organisation: {row['tenant_name']} "
                f"(connection {row['id']}, {row['status']}). An operating company has at most one primary and "
                f"one secondary; disconnect it first: `python -m xero_crm_sync disconnect --connection-id "
                f"{row['id']}`."
            )
        raise ConnectionConflict(
            f"the Xero organisation {row['tenant_name']} ({tenant_id}) is already connected as the "
            f"{row['role']} of {row['company']} (connection {row['id']}). One Xero organisation belongs to one "
            "operating company in one role; disconnect that connection first."
        )
