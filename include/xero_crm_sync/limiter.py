"""Xero's rate limits, kept for every process and worker that calls an organisation: one limiter, one state.

Xero allows, per organisation, 60 calls in a rolling minute, 5,000 in a rolling day and 5 in progress at once, and
10,000 calls a minute per app across organisations (https://developer.xero.com/documentation/guides/oauth2/limits).
Import, push, the order outbox and the health check call one organisation from different processes
(LocalExecutor) and machines (Celery), so a per-process gate cannot keep those limits: the state lives in the
database every worker already reaches.

- `DbLimiter`: one row per admitted call (`xero_rate_call`, migration 0210). Admitting a call is one short
  transaction that serialises on the organisation (PostgreSQL: transaction-scoped advisory locks on the app and
  the organisation; SQLite: `BEGIN IMMEDIATE` on a side file next to the CRM database, so a long load transaction
  never holds API calls up), counts the windows and the live leases, and inserts the call. Finishing a call is one
  UPDATE. A call holds a concurrency slot through a lease that expires by itself: a process killed mid-call frees
  its slot after `lease_seconds`.
- A finished call's window position moves to the time its answer arrived: Xero counted it when the request
  reached it, which is between our start and our answer, so counting from the answer is never kinder than Xero.
- A spent day raises `DayBudgetSpent` at once (the run stops; waiting hours would hold a worker); the minute, app
  and concurrency limits are waited out here, so a 429 should not happen.
- `LocalLimiter`: the same rules in one process, for a client built without a database (tests, scripts).

Limits come from the environment (`XERO_LIMIT_PER_MINUTE`, `XERO_LIMIT_CONCURRENT`, `XERO_LIMIT_PER_DAY`,
`XERO_LIMIT_APP_PER_MINUTE`, `XERO_LIMIT_WINDOW_SECONDS`, `XERO_LIMIT_DAY_SECONDS`), Xero's values by default: a
test against a sandbox with a short window sets the same window here.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from xero_crm_sync import db

log = logging.getLogger(__name__)

SCHEMA_FILE = "0210_xero_rate_limiter.postgresql.sql"


@dataclass(frozen=True)
class Limits:
    calls_per_minute: int = 60
    concurrent: int = 5
    window_seconds: float = 60.0  # the length of a "minute"
    calls_per_day: int = 5000
    day_seconds: float = 86_400.0
    app_calls_per_minute: int = 10_000
    lease_seconds: float = 180.0  # longer than any call can take (the client's read timeout is 120 s)


_ENV = {
    "XERO_LIMIT_PER_MINUTE": "calls_per_minute",
    "XERO_LIMIT_CONCURRENT": "concurrent",
    "XERO_LIMIT_WINDOW_SECONDS": "window_seconds",
    "XERO_LIMIT_PER_DAY": "calls_per_day",
    "XERO_LIMIT_DAY_SECONDS": "day_seconds",
    "XERO_LIMIT_APP_PER_MINUTE": "app_calls_per_minute",
}


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """Xero's limits, with any `XERO_LIMIT_*` variable set overriding its value (a clear error when malformed)."""
    env = os.environ if environ is None else environ
    types = {f.name: f.type for f in fields(Limits)}
    overrides: dict[str, float | int] = {}
    for name, attr in _ENV.items():
        raw = env.get(name)
        if not raw:
            continue
        cast = float if types[attr] in (float, "float") else int
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {raw!r}")
        overrides[attr] = value
    return replace(Limits(), **overrides)


class DayBudgetSpent(Exception):
    """The organisation's calls for the day are spent; `retry_after` says when the oldest one leaves the day."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"the organisation's daily call budget is spent (retry after {retry_after:.0f} s)")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Verdict:
    admitted: bool
    wait: float = 0.0
    day_spent: bool = False


def _verdict(
    limits: Limits,
    now: float,
    minute: int,
    oldest_minute: float | None,
    in_flight: int,
    day: int,
    oldest_day: float | None,
    app_minute: int,
    oldest_app: float | None,
) -> _Verdict:
    """What the counts allow: admit, wait (how long), or stop for the day."""
    if day >= limits.calls_per_day:
        return _Verdict(False, (oldest_day or now) + limits.day_seconds - now, day_spent=True)
    waits = []
    if minute >= limits.calls_per_minute:
        waits.append((oldest_minute or now) + limits.window_seconds - now)
    if app_minute >= limits.app_calls_per_minute:
        waits.append((oldest_app or now) + limits.window_seconds - now)
    if in_flight >= limits.concurrent:
        waits.append(0.02)  # a slot frees when a call answers: look again soon
    if waits:
        return _Verdict(False, max(0.005, max(waits)))
    return _Verdict(True)


class Limiter(Protocol):
    limits: Limits

    def call(self, tenant_id: str, app_id: str) -> AbstractContextManager[float]: ...


class _Waiting:
    """Shared wait loop: ask `try_admit` until it admits, sleeping as it says; a spent day raises."""

    limits: Limits
    _sleep: Callable[[float], None]
    _rng: random.Random

    def _wait_for_slot(self, try_admit: Callable[[], tuple[_Verdict, object]]) -> tuple[object, float]:
        waited = 0.0
        while True:
            verdict, token = try_admit()
            if verdict.admitted:
                return token, waited
            if verdict.day_spent:
                raise DayBudgetSpent(verdict.wait)
            # Jitter: processes woken together must not all come back at the same instant.
            delay = verdict.wait * (1.0 + self._rng.random() * 0.1) + self._rng.random() * 0.01
            waited += delay
            self._sleep(delay)


class DbLimiter(_Waiting):
    """The limits kept in a database every worker reaches (see the module docs)."""

    def __init__(
        self,
        engine: Engine,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.limits = limits or limits_from_env()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()
        self._sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def call(self, tenant_id: str, app_id: str) -> Iterator[float]:
        """Hold one admitted call for the block; yields the seconds waited for it."""
        call_id, waited = self._wait_for_slot(lambda: self._try_admit(tenant_id, app_id))
        try:
            yield waited
        finally:
            with self.engine.begin() as conn:
                conn.execute(
                    text("UPDATE xero_rate_call SET lease_until = NULL, started_at = :now WHERE id = :id"),
                    {"now": self._clock(), "id": call_id},
                )

    @contextmanager
    def _locked(self, tenant_id: str, app_id: str) -> Iterator[Connection]:
        with self.engine.connect() as conn, db.write_transaction(conn):
            if not self._sqlite:
                # App first, then organisation: every caller takes them in this order (no deadlock).
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:a)), pg_advisory_xact_lock(hashtext(:t))"),
                    {"a": "xero-app:" + app_id, "t": "xero-org:" + tenant_id},
                )
            yield conn

    def _try_admit(self, tenant_id: str, app_id: str) -> tuple[_Verdict, object]:
        lim = self.limits
        with self._locked(tenant_id, app_id) as conn:
            now = self._clock()
            params = {
                "t": tenant_id,
                "a": app_id,
                "now": now,
                "minute_ago": now - lim.window_seconds,
                "day_ago": now - lim.day_seconds,
            }
            if self._rng.random() < 0.02:  # prune now and then: old rows only cost index pages meanwhile
                conn.execute(
                    text(
                        "DELETE FROM xero_rate_call WHERE tenant_id = :t AND started_at <= :day_ago"
                        " AND (lease_until IS NULL OR lease_until < :now)"
                    ),
                    params,
                )
            row = conn.execute(text(_COUNTS), params).one()
            verdict = _verdict(lim, now, *row)
            if not verdict.admitted:
                return verdict, None
            call_id = conn.execute(
                text(
                    "INSERT INTO xero_rate_call (tenant_id, app_id, started_at, lease_until)"
                    " VALUES (:t, :a, :now, :lease) RETURNING id"
                ),
                {**params, "lease": now + lim.lease_seconds},
            ).scalar_one()
            return verdict, call_id

    def calls_in_window(self, tenant_id: str) -> int:
        """Calls this limiter counts for the organisation in the current minute (for status and tests)."""
        now = self._clock()
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT COUNT(*) FROM xero_rate_call WHERE tenant_id = :t AND started_at > :since"),
                {"t": tenant_id, "since": now - self.limits.window_seconds},
            ).scalar_one()


# One statement for every count the verdict needs (each an index range scan).
_COUNTS = """
SELECT
  (SELECT COUNT(*) FROM xero_rate_call WHERE tenant_id = :t AND started_at > :minute_ago),
  (SELECT MIN(started_at) FROM xero_rate_call WHERE tenant_id = :t AND started_at > :minute_ago),
  (SELECT COUNT(*) FROM xero_rate_call WHERE tenant_id = :t AND lease_until > :now),
  (SELECT COUNT(*) FROM xero_rate_call WHERE tenant_id = :t AND started_at > :day_ago),
  (SELECT MIN(started_at) FROM xero_rate_call WHERE tenant_id = :t AND started_at > :day_ago),
  (SELECT COUNT(*) FROM xero_rate_call WHERE app_id = :a AND started_at > :minute_ago),
  (SELECT MIN(started_at) FROM xero_rate_call WHERE app_id = :a AND started_at > :minute_ago)
"""


class LocalLimiter(_Waiting):
    """The same rules for one process (a client built without a database)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits or limits_from_env()
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._starts: dict[str, deque[float]] = defaultdict(deque)
        self._app: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    @contextmanager
    def call(self, tenant_id: str, app_id: str) -> Iterator[float]:
        _token, waited = self._wait_for_slot(lambda: self._try_admit(tenant_id, app_id))
        try:
            yield waited
        finally:
            with self._lock:
                self._in_flight[tenant_id] -= 1
                self._starts[tenant_id].append(self._clock())  # counted from its answer, as DbLimiter does
                self._app[app_id].append(self._clock())

    def _try_admit(self, tenant_id: str, app_id: str) -> tuple[_Verdict, object]:
        lim = self.limits
        with self._lock:
            now = self._clock()
            starts, app = self._starts[tenant_id], self._app[app_id]
            for window, length in ((starts, lim.day_seconds), (app, lim.window_seconds)):
                while window and window[0] <= now - length:
                    window.popleft()
            in_minute = [t for t in starts if t > now - lim.window_seconds]
            flying = self._in_flight[tenant_id]
            verdict = _verdict(
                lim,
                now,
                len(in_minute) + flying,
                in_minute[0] if in_minute else None,
                flying,
                len(starts) + flying,
                starts[0] if starts else None,
                len(app) + flying,
                app[0] if app else None,
            )
            if verdict.admitted:
                self._in_flight[tenant_id] += 1
            return verdict, None


# --- which limiter a client gets --------------------------------------------------------------------------------


def limiter_for(engine: Engine | None, limits: Limits | None = None) -> DbLimiter | LocalLimiter:
    """The shared limiter for the CRM database `engine` (a process-local one without a database)."""
    limits = limits or limits_from_env()
    if engine is None or (engine.dialect.name == "sqlite" and _sqlite_path(engine) is None):
        return _local(limits)
    if engine.dialect.name == "sqlite":
        return DbLimiter(_sidecar_engine(str(_sqlite_path(engine))), limits)
    return DbLimiter(_pg_engine(str(engine.url.render_as_string(hide_password=False))), limits)


def recorded_calls(engine: Engine, tenant_id: str, since: float) -> list[float] | None:
    """When each call the shared limiter admitted for an organisation since `since` started (epoch seconds,
    ascending): its own record, kept for a day, which the status page counts. None where it keeps no record
    (no CRM database file, nothing called yet on SQLite, or the table not migrated yet)."""
    if engine.dialect.name == "sqlite":
        crm_file = _sqlite_path(engine)
        if crm_file is None or not Path(f"{crm_file}-limits").exists():
            return None  # do not create the side file just to find it empty
    shared = limiter_for(engine)
    if not isinstance(shared, DbLimiter):
        return None
    try:
        with shared.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT started_at FROM xero_rate_call WHERE tenant_id = :t AND started_at > :since"
                        " ORDER BY started_at"
                    ),
                    {"t": tenant_id, "since": since},
                ).scalars()
            )
    except DBAPIError:
        return None


@lru_cache(maxsize=16)
def _pg_engine(url: str) -> Engine:
    """PostgreSQL: the CRM database (`migrate` created the tables, migration 0210) through a small pool of its own
    whose commits do not wait for the WAL flush: a crash can only forget the last few calls, milliseconds of them."""
    return create_engine(
        url,
        pool_size=2,
        max_overflow=8,
        pool_pre_ping=True,
        connect_args={"options": "-c synchronous_commit=off"},
    )


@lru_cache(maxsize=8)
def _local(limits: Limits) -> LocalLimiter:
    return LocalLimiter(limits)


def _sqlite_path(engine: Engine) -> Path | None:
    database = make_url(str(engine.url)).database
    return None if not database or database == ":memory:" else Path(database)


@lru_cache(maxsize=16)
def _sidecar_engine(crm_path: str) -> Engine:
    """SQLite: the limiter's tables in `<crm database>-limits`, its own write lock (see the module docs)."""
    engine = create_engine(f"sqlite:///{crm_path}-limits", connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: object, _record: object) -> None:
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")  # losing the last calls on a power cut only makes us kinder
        cur.close()

    _ensure_schema(engine)
    return engine


_schema_done: set[str] = set()
_schema_lock = threading.Lock()


def _ensure_schema(engine: Engine) -> None:
    """The limiter's tables in the SQLite side file, from migration 0210's DDL (the side file has no migrations
    of its own; on PostgreSQL `migrate` applies 0210 to the CRM database)."""
    from xero_crm_sync import migrate  # migrate imports staging (the registry): only the side file needs it

    key = str(engine.url)
    with _schema_lock:
        if key in _schema_done:
            return
        sql = migrate.expand_macros(
            (migrate.MIGRATIONS_DIR / SCHEMA_FILE).read_text(encoding="utf-8"), engine.dialect.name
        )
        with engine.begin() as conn:
            for statement in db.split_statements(sql):
                conn.exec_driver_sql(statement)
        _schema_done.add(key)
