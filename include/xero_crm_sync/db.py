"""The CRM database: one engine per URL, the same code on SQLite (embedded default) and PostgreSQL.

SQL files under `sql/` are run through `run_sql_file`, with bound parameters only (never string formatting of
values), so every transform can also be read and run on its own with `xero-crm-sync sql <file>`. A template
(`sql/transform/templates/`) only has table names filled in from the entity registry (`render_template`); the
`sql` command prints or runs it rendered (`--show-lines` / `--lines`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from xero_crm_sync.settings import PROJECT_ROOT, get_settings

SQL_DIR = PROJECT_ROOT / "sql"
_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 (the driver we pin) for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# SQLite's storage for bulk staging (issue 13, bench/NOTES.md fix 20). 16 KiB pages hold a record's 2-3 KB raw
# payload in its row instead of an overflow chain (the replayed staging file was a quarter smaller, and the
# validation verdict's UPDATE rewrites one page per row instead of a chain), for a new database only: SQLite fixes
# the page size when the first table is created. And the write-ahead log is copied back into the database every
# ~128 MiB instead of every 1,000 pages (4 MiB at the old page size), so an index page changed by every staged
# page is written back once per checkpoint instead of dozens of times; the log file is cut back to that size.
SQLITE_PAGE_SIZE = 16_384
SQLITE_CHECKPOINT_BYTES = 128 * 1024 * 1024


@lru_cache(maxsize=16)
def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # Before anything is written: a new database takes this page size (an existing one keeps its own).
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            # WAL lets mapped tasks read while one writes; busy_timeout makes writers queue instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            page_size = cur.execute("PRAGMA page_size").fetchone()[0]
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_BYTES // page_size}")
            cur.execute(f"PRAGMA journal_size_limit={SQLITE_CHECKPOINT_BYTES}")
            cur.close()
            # PostgreSQL has md5(); give SQLite the same function so hashing SQL (push diffs) is portable.
            dbapi_conn.create_function("md5", 1, _md5, deterministic=True)

        return engine
    # JIT off for our sessions: the import's set-based statements cross jit_above_cost by their row counts, not by
    # heavy expressions, and PostgreSQL then compiled each of them for ~1 s (linking a first sync's 70,000 ledgers
    # to their new companies: 1.0 s of JIT in 10.7 s) and ran them no faster (issue 13, bench/NOTES.md row 29).
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"options": "-c jit=off"}
    )


def _md5(value: object) -> str | None:
    return (
        None if value is None else hashlib.md5(str(value).encode("utf-8")).hexdigest()
    )  # a change detector, not security


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: CRM_DATABASE_URL), created once per process."""
    with _lock:
        return _engine_for(normalise_url(url or get_settings().crm_database_url))


def dispose_engine(url: str | None = None) -> None:
    """Close pooled connections of `url`'s engine (tests drop databases; CLIs exit cleanly)."""
    with _lock:
        _engine_for(normalise_url(url or get_settings().crm_database_url)).dispose()


def bind_time(value: datetime, dialect: str) -> Any:
    """A timestamp as a bound parameter. SQLite keeps timestamps as text: write them the way SQLAlchemy's DateTime
    does (always with microseconds), so values written by SQL files and by Core compare and read back the same.
    PostgreSQL takes the datetime."""
    if dialect == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@contextmanager
def write_transaction(conn: Connection) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement, committed on success.

    SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front (a deferred transaction that reads first
    and writes later can fail to upgrade), which serialises across threads and processes. PostgreSQL: a plain
    transaction (callers lock the rows or advisory keys they need)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
    else:
        with conn.begin():
            yield conn


@contextmanager
def begin(url: str | None = None) -> Iterator[Connection]:
    """A transaction on the CRM database: committed on success, rolled back on any error."""
    with get_engine(url).begin() as conn:
        yield conn


_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")
_LITERAL_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def _escape_literal_colons(statement: str) -> str:
    """SQLAlchemy's text() would read `:word` inside a string literal as a parameter; escape those colons.
    Literals and comments are found in one pass, so an apostrophe in a comment ("-- Xero's") opens no literal
    (it used to, and every parameter after it was then escaped into text)."""
    return _LITERAL_OR_COMMENT.sub(lambda m: m.group(0).replace(":", "\\:"), statement)


def parameter_names(statement: str) -> set[str]:
    """The `:name` bind parameters of a statement, ignoring string literals and comments (`'a:b'` is text)."""
    return set(_PARAM.findall(_LITERAL_OR_COMMENT.sub(" ", statement)))


_STATEMENT_END = re.compile(r";\s*(--[^']*)?$")


def split_statements(sql: str) -> list[str]:
    """Split a SQL file into statements at lines ending in `;`, skipping comment-only lines between them.

    Kept whole: SQLite trigger bodies (a line ending in BEGIN up to the line `END;`) and PostgreSQL
    dollar-quoted bodies (`$$ ... $$`). Our SQL files end each statement with `;` at the end of a line.
    """
    statements: list[str] = []
    current: list[str] = []
    in_dollar = False
    in_trigger = False
    for line in sql.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        if line.count("$$") % 2 == 1:
            in_dollar = not in_dollar
        if in_dollar:
            continue
        upper = stripped.upper()
        if (
            not in_trigger
            and upper.endswith("BEGIN")
            and current[0].strip().upper().startswith("CREATE TRIGGER")
        ):
            in_trigger = True
        if in_trigger:
            if upper in ("END;", "END"):
                in_trigger = False
            else:
                continue
        if _STATEMENT_END.search(stripped):
            current[-1] = _STATEMENT_END.sub("", current[-1].rstrip())
            statement = "\n".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
    tail = "\n".join(line for line in current if not line.strip().startswith("--")).strip()
    if tail:
        statements.append(tail.rstrip(";").strip())
    return statements


def read_sql(path: str | Path) -> str:
    path = Path(path)
    if not path.is_absolute():
        path = SQL_DIR / path
    return path.read_text(encoding="utf-8")


def run_sql_file(conn: Connection, path: str | Path, params: Mapping[str, Any] | None = None) -> list[int]:
    """Run every statement of a SQL file with bound parameters; returns each statement's rowcount.

    Statements only receive the parameters they name, so one params dict can serve a whole file.
    """
    return run_sql(conn, read_sql(path), params, source=str(path))


def run_sql(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None, *, source: str = "statement"
) -> list[int]:
    """`run_sql_file` for SQL already in hand (a rendered template): each statement's rowcount."""
    params = dict(params or {})
    counts: list[int] = []
    for statement in split_statements(sql):
        result = execute_statement(conn, statement, params, source=source)
        counts.append(_rows_changed(conn, statement, result))
    return counts


def _rows_changed(conn: Connection, statement: str, result: CursorResult[Any]) -> int:
    """The rows a statement inserted, updated or deleted; -1 for one that changes none (a query, DDL).

    Python's sqlite3 counts rows only for a statement whose first word is INSERT, UPDATE, DELETE or REPLACE, so a
    data change that begins with `WITH` (the echo rule's adoption, sql/echo/) said -1 there; SQLite's `changes()`
    is that statement's own count (its triggers' rows not included, as PostgreSQL's count does not)."""
    count = result.rowcount if result.rowcount is not None else -1
    if count < 0 and conn.dialect.name == "sqlite" and not result.returns_rows:
        if statement.lstrip()[:4].upper() == "WITH":
            return int(conn.exec_driver_sql("SELECT changes()").scalar_one())
    return count


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def render_template(sql: str, identifiers: Mapping[str, str], *, source: str = "template") -> str:
    """A SQL template (`sql/*/templates/*.sql`) with each `{{name}}` replaced by a table or column name.

    Only identifiers are templated, never values (those stay bound parameters), and each must be a plain
    lower-case SQL name: anything else (quotes, spaces, `;`) is refused, so nothing from outside the code can
    reach the SQL text this way. A placeholder without a value is a KeyError naming `source`. Comment lines are
    left as written: they name the placeholders to document them."""
    for name, value in identifiers.items():
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{source}: {{{{{name}}}}} must be a plain SQL name, not {value!r}")

    def replace(m: re.Match[str]) -> str:
        try:
            return identifiers[m.group(1)]
        except KeyError:
            raise KeyError(f"{source}: no value for {{{{{m.group(1)}}}}}") from None

    return "\n".join(
        line if line.lstrip().startswith("--") else _PLACEHOLDER.sub(replace, line)
        for line in sql.splitlines()
    )


def execute_statement(
    conn: Connection, statement: str, params: Mapping[str, Any], *, source: str = "statement"
) -> CursorResult[Any]:
    """Run one statement of a SQL file with the parameters it names (comments and literals are not read for
    parameters); a parameter it names and `params` lacks is a KeyError naming `source`."""
    names = parameter_names(statement)
    missing = names - params.keys()
    if missing:
        raise KeyError(f"{source}: statement needs parameters {sorted(missing)}")
    return conn.execute(text(_escape_literal_colons(statement)), {k: params[k] for k in names})


# --- planner statistics ------------------------------------------------------------------------------------

ANALYZE_MIN_ROWS = 1000  # below this, a stale estimate cannot cost much
ANALYZE_GROWTH = 0.1  # refresh when a write adds at least this share of the rows the statistics describe
_WRITTEN_TABLE = re.compile(
    r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE | re.MULTILINE
)


def tables_written(sql: str) -> list[str]:
    """The tables a SQL file inserts into, updates or deletes from, in order of first appearance."""
    return list(dict.fromkeys(name.lower() for name in _WRITTEN_TABLE.findall(sql)))


def refresh_statistics(conn: Connection, tables: list[str] | tuple[str, ...], rows_written: int) -> list[str]:
    """ANALYZE the tables (PostgreSQL) when `rows_written` is large next to what their statistics describe.

    PostgreSQL plans joins from table statistics, and autovacuum refreshes them only some time after a commit
    (never for rows of a transaction still open). After a first big sync the statistics say "empty", and the
    planner nests loops over 100,000 parents and a million lines: minutes instead of seconds. ANALYZE samples a
    bounded number of rows (fast at any size) and sees this transaction's own rows. It takes a lock that only
    other ANALYZEs and VACUUMs wait for. SQLite's planner does not depend on statistics in the same way: no-op.
    Returns the tables analysed."""
    if conn.dialect.name != "postgresql" or rows_written < ANALYZE_MIN_ROWS or not tables:
        return []
    known = dict(
        conn.execute(
            text(
                "SELECT c.relname, c.reltuples FROM pg_class c WHERE c.relkind IN ('r', 'p') "
                "AND c.relname = ANY(:names) AND pg_catalog.pg_table_is_visible(c.oid)"
            ),
            {"names": list(tables)},
        ).all()
    )
    # reltuples is -1 for a table never analysed or vacuumed.
    stale = [t for t in tables if t in known and rows_written >= ANALYZE_GROWTH * max(known[t], 0.0)]
    if stale:
        conn.execute(text(f"ANALYZE {', '.join(stale)}"))
    return stale
