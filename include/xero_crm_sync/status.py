"""What the integration status page shows (O2, P8), as queries over the CRM database, and its two actions.

Per connection: status, health and last refresh, and what to do when it is not healthy; the last successful
sync per entity with its counts (imports from `sync_watermark`, exports from `sync_history`); the export queue
(what waits); the history (runs, and the records each run created or changed); unresolved errors with the
record, Xero's message and what to do; records quarantined by validation. Every list can be filtered.

Actions on an unresolved error (`sync_error.status`, the contract with the import and the push):
- retry: `open` -> `retrying`; the next import or push run tries the record again (the push resends it even if
  nothing changed) and sets it `resolved`, or back to `open` with the new message;
- dismiss: `open`/`retrying` -> `dismissed`; nobody is asked about it again (for an ambiguous match, the import
  then creates the contact as a new ledger).

Nothing here reads a secret: connection rows are selected column by column, never `token_blob`.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from xero_crm_sync import runs
from xero_crm_sync.connections import utcnow

UNRESOLVED = ("open", "retrying")
ERROR_STATUSES = ("unresolved", "open", "retrying", "resolved", "dismissed", "all")
QUEUE_STATES = ("pending", "waiting", "in_progress", "failed", "done", "cancelled", "all")
DIRECTIONS = ("import", "export")
LIMIT = 200


class ActionRefused(ValueError):
    """The error cannot take that action (unknown, or already resolved/dismissed)."""


@dataclass(frozen=True)
class Filters:
    """What the page's filter form (or the JSON API's query string) asks for; None = everything."""

    connection_id: int | None = None
    direction: str | None = None  # import | export
    record_type: str | None = None
    error_status: str = "unresolved"
    queue_state: str = "pending"  # pending = waiting, in progress or failed (not done, not cancelled)

    def __post_init__(self) -> None:
        if self.direction not in (None, *DIRECTIONS):
            raise ValueError(f"direction is one of {', '.join(DIRECTIONS)}")
        if self.error_status not in ERROR_STATUSES:
            raise ValueError(f"error status is one of {', '.join(ERROR_STATUSES)}")
        if self.queue_state not in QUEUE_STATES:
            raise ValueError(f"queue state is one of {', '.join(QUEUE_STATES)}")

    def params(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "direction": self.direction,
            "record_type": self.record_type or None,
            "error_status": self.error_status,
            "queue_state": self.queue_state,
            "limit": LIMIT,
        }


@dataclass
class StatusReport:
    generated_at: datetime
    connections: list[dict[str, Any]] = field(default_factory=list)
    last_syncs: list[dict[str, Any]] = field(default_factory=list)
    queue_counts: list[dict[str, Any]] = field(default_factory=list)
    queue: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    pictures: list[dict[str, Any]] = field(default_factory=list)
    record_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.__dict__, default=_json_default))


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# Filters: a NULL parameter means "no filter". The CASTs let PostgreSQL type a parameter used only in IS NULL.

_CONNECTIONS_SQL = """
SELECT x.id, oc.name AS company, x.role, x.tenant_id, x.tenant_name, x.status, x.health, x.last_error,
       x.last_error_at, x.last_health_check_at, x.last_refresh_at, x.token_expires_at, x.connected_at,
       x.disconnected_at, x.disconnected_by, x.scopes
FROM xero_connection x
JOIN operating_company oc ON oc.id = x.operating_company_id
ORDER BY oc.name, CASE WHEN x.status = 'disconnected' THEN 1 ELSE 0 END, x.role, x.id
"""

_LAST_SYNCS_SQL = """
SELECT w.connection_id, x.tenant_name, 'import' AS direction, w.entity, w.last_successful_run_at AS last_success_at,
       w.last_successful_run_id AS run_id, w.records_read, w.records_valid, w.records_quarantined,
       w.watermark_at, w.last_full_sync_at
FROM sync_watermark w
JOIN xero_connection x ON x.id = w.connection_id
WHERE (CAST(:connection_id AS BIGINT) IS NULL OR w.connection_id = :connection_id) AND (CAST(:direction AS TEXT) IS NULL OR :direction = 'import')
  AND (CAST(:record_type AS TEXT) IS NULL OR w.entity = :record_type)
UNION ALL
SELECT h.connection_id, x.tenant_name, 'export', h.record_type, MAX(h.at), h.run_id, COUNT(*), NULL, NULL, NULL, NULL
FROM sync_history h
JOIN xero_connection x ON x.id = h.connection_id
WHERE h.direction = 'export'
  AND h.run_id = (SELECT h2.run_id FROM sync_history h2
                  WHERE h2.direction = 'export' AND h2.connection_id = h.connection_id
                    AND h2.record_type = h.record_type
                  ORDER BY h2.at DESC, h2.id DESC LIMIT 1)
  AND (CAST(:connection_id AS BIGINT) IS NULL OR h.connection_id = :connection_id) AND (CAST(:direction AS TEXT) IS NULL OR :direction = 'export')
  AND (CAST(:record_type AS TEXT) IS NULL OR h.record_type = :record_type)
GROUP BY h.connection_id, x.tenant_name, h.record_type, h.run_id
ORDER BY 1, 3, 4
"""

_QUEUE_COUNTS_SQL = """
SELECT q.connection_id, x.tenant_name, q.state, COUNT(*) AS records, MIN(q.enqueued_at) AS oldest
FROM export_queue q
JOIN xero_connection x ON x.id = q.connection_id
WHERE (CAST(:connection_id AS BIGINT) IS NULL OR q.connection_id = :connection_id)
GROUP BY q.connection_id, x.tenant_name, q.state
ORDER BY q.connection_id, q.state
"""

_QUEUE_SQL = """
SELECT q.id, q.connection_id, x.tenant_name, q.record_type, q.record_id, q.operation, q.state, q.attempts,
       q.last_error, q.enqueued_at, q.started_at, q.finished_at
FROM export_queue q
JOIN xero_connection x ON x.id = q.connection_id
WHERE (CAST(:queue_state AS TEXT) = 'all' OR q.state = :queue_state
       OR (CAST(:queue_state AS TEXT) = 'pending' AND q.state IN ('waiting', 'in_progress', 'failed')))
  AND (CAST(:connection_id AS BIGINT) IS NULL OR q.connection_id = :connection_id) AND (CAST(:record_type AS TEXT) IS NULL OR q.record_type = :record_type)
ORDER BY q.enqueued_at DESC, q.id DESC
LIMIT :limit
"""

_RUNS_SQL = """
SELECT r.id, r.run_id, r.connection_id, x.tenant_name, r.kind, r.mode, r.status, r.started_at, r.finished_at,
       r.error
FROM sync_run r
JOIN xero_connection x ON x.id = r.connection_id
WHERE (CAST(:connection_id AS BIGINT) IS NULL OR r.connection_id = :connection_id)
  AND (CAST(:direction AS TEXT) IS NULL OR r.kind = CASE WHEN CAST(:direction AS TEXT) = 'export' THEN 'push' ELSE 'import' END)
ORDER BY r.started_at DESC, r.id DESC
LIMIT 50
"""

_HISTORY_SQL = """
SELECT h.id, h.connection_id, x.tenant_name, h.direction, h.record_type, h.record_id, h.xero_id, h.operation,
       h.run_id, h.at, h.details
FROM sync_history h
JOIN xero_connection x ON x.id = h.connection_id
WHERE (CAST(:connection_id AS BIGINT) IS NULL OR h.connection_id = :connection_id) AND (CAST(:direction AS TEXT) IS NULL OR h.direction = :direction)
  AND (CAST(:record_type AS TEXT) IS NULL OR h.record_type = :record_type)
ORDER BY h.at DESC, h.id DESC
LIMIT :limit
"""

_ERRORS_SQL = """
SELECT e.id, e.connection_id, x.tenant_name, e.direction, e.record_type, e.record_id, e.xero_id, e.error_code,
       e.message, e.xero_message, e.action, e.status, e.attempts, e.run_id, e.first_seen_at, e.last_seen_at,
       e.resolved_at, e.resolved_by
FROM sync_error e
JOIN xero_connection x ON x.id = e.connection_id
WHERE (CAST(:error_status AS TEXT) = 'all' OR e.status = :error_status
       OR (CAST(:error_status AS TEXT) = 'unresolved' AND e.status IN ('open', 'retrying')))
  AND (CAST(:connection_id AS BIGINT) IS NULL OR e.connection_id = :connection_id) AND (CAST(:direction AS TEXT) IS NULL OR e.direction = :direction)
  AND (CAST(:record_type AS TEXT) IS NULL OR e.record_type = :record_type)
ORDER BY e.last_seen_at DESC, e.id DESC
LIMIT :limit
"""

_QUARANTINED_SQL = """
SELECT q.id, q.connection_id, x.tenant_name, q.entity, q.xero_id, q.reasons, q.run_id, q.created_at
FROM quarantined_record q
JOIN xero_connection x ON x.id = q.connection_id
WHERE q.resolved_at IS NULL AND (CAST(:connection_id AS BIGINT) IS NULL OR q.connection_id = :connection_id)
  AND (CAST(:direction AS TEXT) IS NULL OR :direction = 'import') AND (CAST(:record_type AS TEXT) IS NULL OR q.entity = :record_type)
ORDER BY q.created_at DESC, q.id DESC
LIMIT :limit
"""

# Notifications for account managers (I8: overdue invoices) not read yet, and whether the email went out
# (`plugins/xero_notifier.py`). They belong to an operating company: the connection filter picks its company.
_NOTIFICATIONS_SQL = """
SELECT n.id, oc.name AS company, n.kind, n.record_type, n.record_id, n.title, n.message, n.created_at,
       u.name AS account_manager, u.email AS account_manager_email, n.emailed_at, n.email_error
FROM notification n
JOIN operating_company oc ON oc.id = n.operating_company_id
JOIN crm_user u ON u.id = n.crm_user_id
WHERE n.read_at IS NULL AND (CAST(:direction AS TEXT) IS NULL OR :direction = 'import')
  AND (CAST(:connection_id AS BIGINT) IS NULL
       OR n.operating_company_id = (SELECT x.operating_company_id FROM xero_connection x WHERE x.id = :connection_id))
ORDER BY n.created_at DESC, n.id DESC
LIMIT :limit
"""

_RECORD_TYPES_SQL = """
SELECT record_type FROM sync_error UNION SELECT record_type FROM sync_history
UNION SELECT record_type FROM export_queue UNION SELECT entity FROM sync_watermark ORDER BY 1
"""


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = {k: v for k, v in params.items() if f":{k}" in sql}
    return [{k: _typed(k, v) for k, v in row.items()} for row in conn.execute(text(sql), wanted).mappings()]


def _typed(column: str, value: Any) -> Any:
    """SQLite hands back timestamps of untyped (text()) queries as strings; make them datetimes everywhere."""
    if isinstance(value, str) and (column == "at" or column.endswith("_at")):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def what_to_do(connection: dict[str, Any]) -> str | None:
    """The next step for a connection that is not healthy, as a command a user can run."""
    command = (
        f"python -m xero_crm_sync connect --operating-company {shlex.quote(connection['company'])} "
        f"--role {connection['role']}"
    )
    if connection["status"] == "needs_reconnect":
        return f"Reconnect: {command}"
    if connection["status"] == "disconnected":
        who = {"crm": "from the CRM", "xero": "in Xero"}.get(connection.get("disconnected_by") or "", "")
        return f"Disconnected {who}; to sync it again: {command}".replace("  ", " ")
    if connection.get("health") in ("refresh_failed", "unreachable"):
        return "Xero could not be reached at the last check; the next check (every 10 minutes) retries"
    return None


def email_state(notification: dict[str, Any]) -> str:
    """What became of a notification's email, in words."""
    if notification["emailed_at"] is not None:
        return "sent"
    if not notification.get("account_manager_email"):
        return "no email address"
    if notification.get("email_error"):
        return f"not sent yet: {notification['email_error']}"
    return "not sent (email off, or waiting for the next run)"


def report(engine: Engine, filters: Filters | None = None) -> StatusReport:
    """Everything the status page shows, filtered."""
    params = (filters or Filters()).params()
    result = StatusReport(generated_at=utcnow())
    with engine.connect() as conn:
        result.connections = _rows(conn, _CONNECTIONS_SQL, params)
        for connection in result.connections:
            connection["what_to_do"] = what_to_do(connection)
        result.last_syncs = _rows(conn, _LAST_SYNCS_SQL, params)
        result.queue_counts = _rows(conn, _QUEUE_COUNTS_SQL, params)
        result.queue = _rows(conn, _QUEUE_SQL, params)
        result.runs = _rows(conn, _RUNS_SQL, params)
        result.history = _rows(conn, _HISTORY_SQL, params)
        result.errors = _rows(conn, _ERRORS_SQL, params)
        result.quarantined = _rows(conn, _QUARANTINED_SQL, params)
        for row in result.quarantined:
            row["reasons"] = _as_list(row["reasons"])
        result.notifications = _rows(conn, _NOTIFICATIONS_SQL, params)
        for row in result.notifications:
            row["email"] = email_state(row)
        result.pictures = _pictures(conn, result.connections, params, result.generated_at)
        result.record_types = [r["record_type"] for r in _rows(conn, _RECORD_TYPES_SQL, {})]
    for picture in result.pictures:
        counted = limiter_budget(engine, picture.pop("tenant_id"), result.generated_at)
        if counted is not None:
            picture["budget"] = counted | {"runs_today": picture["budget"]["runs_today"]}
    return result


# --- pictures: API budget, records per run, backlog over time ---------------------------------------------------

DAY_LIMIT, MINUTE_LIMIT = 5_000, 60  # Xero's calls per organisation: a rolling day, a minute
CHART_RUNS = 30  # runs shown per organisation
CHART_DAYS = 14

_RUN_STATS_SQL = """
SELECT r.connection_id, r.run_id, r.kind, r.status, r.started_at, r.finished_at, r.counts
FROM sync_run r
WHERE r.started_at >= :since AND (CAST(:connection_id AS BIGINT) IS NULL OR r.connection_id = :connection_id)
ORDER BY r.started_at, r.id
"""

_OPEN_QUARANTINED_AT_SQL = """
SELECT COUNT(*) FROM quarantined_record
WHERE connection_id = :c AND created_at <= :t AND (resolved_at IS NULL OR resolved_at > :t)
"""

_UNRESOLVED_AT_SQL = """
SELECT COUNT(*) FROM sync_error
WHERE connection_id = :c AND first_seen_at <= :t
  AND ((resolved_at IS NULL AND status IN ('open', 'retrying')) OR resolved_at > :t)
"""


def run_figures(kind: str, counts: Any) -> dict[str, int]:
    """Records read from Xero, records written to Xero and API calls of one run, from `sync_run.counts`."""
    parsed = runs.counts_of(counts)
    if kind == "import":
        extract = parsed.get("extract") or {}
        read = sum(int(e.get("records") or 0) for e in (extract.get("entities") or {}).values())
        return {"imported": read, "pushed": 0, "calls": int(extract.get("calls") or 0)}
    steps = [v for v in parsed.values() if isinstance(v, dict) and "calls" in v]
    pushed = sum(int(v.get(k) or 0) for v in steps for k in ("created", "updated", "linked"))
    return {"imported": 0, "pushed": pushed, "calls": sum(int(v.get("calls") or 0) for v in steps)}


def _as_dt(value: Any) -> datetime | None:
    typed = _typed("at", value)
    return typed if isinstance(typed, datetime) else None


def _pictures(
    conn: Connection, connections: list[dict[str, Any]], params: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Per connection (active or not, filtered): its API budget, its runs and its backlog over time."""
    since = now - timedelta(days=CHART_DAYS)
    runs: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(text(_RUN_STATS_SQL), {"since": since, "connection_id": params["connection_id"]}):
        started, finished = _as_dt(row.started_at), _as_dt(row.finished_at)
        if started is None:
            continue
        runs.setdefault(int(row.connection_id), []).append(
            {"run_id": row.run_id, "kind": row.kind, "started_at": started, "finished_at": finished}
            | run_figures(row.kind, row.counts)
        )
    out = []
    for connection in connections:
        cid = connection["id"]
        if params["connection_id"] is not None and cid != params["connection_id"]:
            continue
        mine = runs.get(cid, [])
        if not mine and connection["status"] == "disconnected":
            continue
        shown = mine[-CHART_RUNS:]
        points = [r["finished_at"] or r["started_at"] for r in shown if r["kind"] == "import"] + [now]
        backlog = [
            {
                "at": at,
                "quarantined": conn.execute(text(_OPEN_QUARANTINED_AT_SQL), {"c": cid, "t": at}).scalar_one(),
                "unresolved": conn.execute(text(_UNRESOLVED_AT_SQL), {"c": cid, "t": at}).scalar_one(),
            }
            for at in points
        ]
        out.append(
            {
                "connection_id": cid,
                "tenant_name": connection["tenant_name"],
                "tenant_id": connection["tenant_id"],
                "budget": api_budget(mine, now),
                "runs": shown,
                "backlog": backlog,
            }
        )
    return out


def api_budget(runs: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Calls in the last 24 hours (Xero's day is rolling) and the busiest minute, from the runs' call counts.

    A run's calls are spread over its duration, so the busiest minute is each run's calls per started minute
    of its duration: exact for runs shorter than a minute, an average for longer ones (the client paces those
    at 60 a minute anyway)."""
    today = [r for r in runs if r["started_at"] >= now - timedelta(days=1)]
    peak = 0
    for r in today:
        seconds = ((r["finished_at"] or now) - r["started_at"]).total_seconds()
        peak = max(peak, math.ceil(r["calls"] / max(1, math.ceil(seconds / 60))))
    return {
        "calls_today": sum(r["calls"] for r in today),
        "day_limit": DAY_LIMIT,
        "peak_minute": peak,
        "minute_limit": MINUTE_LIMIT,
        "runs_today": len(today),
        "source": "the runs' call counts",
    }


def limiter_budget(engine: Engine, tenant_id: str, now: datetime) -> dict[str, Any] | None:
    """The API budget from the shared limiter's own record of every call (`limiter.py`, `xero_rate_call`: one row
    per call, kept for a day), counted the way the limiter counts: calls in the last day, and the most calls in
    any window of a minute. None when the limiter keeps no record here (nothing called yet on SQLite)."""
    from xero_crm_sync import limiter

    lim = limiter.limits_from_env()
    starts = limiter.recorded_calls(engine, tenant_id, now.replace(tzinfo=UTC).timestamp() - lim.day_seconds)
    if starts is None:
        return None
    peak, first = 0, 0
    for last, started in enumerate(starts):
        while started - starts[first] >= lim.window_seconds:
            first += 1
        peak = max(peak, last - first + 1)
    return {
        "calls_today": len(starts),
        "day_limit": lim.calls_per_day,
        "peak_minute": peak,
        "minute_limit": lim.calls_per_minute,
        "source": "the rate limiter's record of every call",
    }


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return value if isinstance(value, list) else [value]


# --- actions ---------------------------------------------------------------------------------------------------


def retry_error(engine: Engine, error_id: int, user: str) -> dict[str, Any]:
    """Ask the next run to try the record again (`open` -> `retrying`; already retrying: unchanged)."""
    return _change(engine, error_id, user, to="retrying", allowed=("open", "retrying"))


def dismiss_error(engine: Engine, error_id: int, user: str) -> dict[str, Any]:
    """Nobody needs to act on this error any more (`open`/`retrying` -> `dismissed`)."""
    return _change(engine, error_id, user, to="dismissed", allowed=UNRESOLVED)


def _change(engine: Engine, error_id: int, user: str, *, to: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    now = utcnow()
    with engine.begin() as conn:
        current = conn.execute(
            text("SELECT status FROM sync_error WHERE id = :id"), {"id": error_id}
        ).scalar()
        if current is None:
            raise ActionRefused(f"no error {error_id}")
        if current not in allowed:
            raise ActionRefused(
                f"error {error_id} is {current}: nothing to {'retry' if to == 'retrying' else 'dismiss'}"
            )
        conn.execute(
            text(
                "UPDATE sync_error SET status = :to, resolved_by = :user, "
                "resolved_at = CASE WHEN CAST(:to AS TEXT) = 'dismissed' THEN :now ELSE resolved_at END "
                "WHERE id = :id"
            ),
            {"to": to, "user": user, "now": now, "id": error_id},
        )
    return {"id": error_id, "status": to, "by": user}
