"""Staging (what Xero said, per run) and the validated mirror, both generated from `entities.ENTITIES`.

Layers, dbt-style:
- `stg_<entity>` / `stg_<lines>`: append-only. One row per record per run, typed columns + the raw JSON exactly as
  Xero sent it (`raw`, with its digest `raw_digest`), with run_id, connection_id and extracted_at. The raw payload
  is written once, on the record's row: a line's own JSON is inside it (`raw -> 'LineItems' -> (line_no - 1)`).
  Conversion never fails: a value that does not parse becomes NULL and its reason goes to `parse_errors`, which
  validation turns into a quarantine reason.
- `val_<entity>` / `val_<lines>`: the latest *valid* version of each Xero record per connection (a mirror of Xero),
  upserted set-based in SQL from this run's staged rows that passed validation: typed columns only, with
  `stg_id` pointing at the staged row that holds its raw payload. The CRM transforms read from here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import postgresql

from xero_crm_sync import db, xero_values
from xero_crm_sync.entities import ENTITIES, MISSING, Entity, Lines
from xero_crm_sync.entities import Column as EntityColumn

metadata = MetaData()

_JSON = Text().with_variant(postgresql.JSONB(), "postgresql")
# The staged payload as `json`, not `jsonb`, on PostgreSQL: the text exactly as staged (its `raw_digest` is the md5
# of what the column holds), with `->`/`->>` for analysts; JSONB's parse and binary build took about half of the
# server's time for the COPY of a first sync (issue 13, fix 21 in bench/NOTES.md).
_PAYLOAD = Text().with_variant(postgresql.JSON(), "postgresql")
_SQL_TYPES: dict[str, Any] = {
    "text": Text,
    "int": BigInteger,
    "numeric": lambda: Numeric(19, 4, asdecimal=True),
    "bool": Boolean,
    "timestamp": DateTime,
    "date": Date,
    "json": lambda: _JSON,
}


def _remembered(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`parse` with its recent results for strings remembered: a page's dates repeat (an invoice's Date, DueDate
    and the days around them). Only strings are looked up (anything else is parsed, so its error reads the same);
    a failed parse is never remembered."""
    remembered = lru_cache(maxsize=8192)(parse)
    return lambda value: remembered(value) if type(value) is str else parse(value)


_PARSERS = {
    "text": xero_values.parse_text,
    "int": xero_values.parse_int,
    "numeric": xero_values.parse_decimal,
    "bool": xero_values.parse_bool,
    "timestamp": _remembered(lambda v: xero_values.parse_xero_datetime(v).replace(tzinfo=None)),
    "date": _remembered(xero_values.parse_xero_date),
    "json": lambda v: v,
}


def _typed_columns(columns: Iterable[EntityColumn]) -> list[Column]:
    return [Column(c.name, _SQL_TYPES[c.type]()) for c in columns]


def _staging_table(name: str, columns: Iterable[EntityColumn], *, parent: bool) -> Table:
    ident = [
        Column("stg_id", BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
        Column("run_id", Text, nullable=False),
        Column("connection_id", Integer, nullable=False),
        Column("extracted_at", DateTime, nullable=False),
    ]
    position = (
        [Column("page", Integer), Column("position", Integer), Column("xero_id", Text)]
        if parent
        # parent_page/parent_position tie a line to the exact staged parent row (a record can be staged twice in
        # one run when it changes while we page).
        else [
            Column("parent_id", Text),
            Column("parent_page", Integer),
            Column("parent_position", Integer),
            Column("line_no", Integer),
        ]
    )
    tail = [Column("parse_errors", Text)]
    if parent:
        tail += [
            Column("raw", _PAYLOAD, nullable=False),
            # md5 of `raw` as staged: validation recognises a record identical to its mirrored version by it.
            Column("raw_digest", Text),
            # pending -> valid | quarantined (set by the validate step for this run).
            Column("validation_status", Text, nullable=False, server_default="pending"),
        ]
    table = Table(f"stg_{name}", metadata, *ident, *position, *_typed_columns(columns), *tail)
    if parent:
        Index(f"ix_stg_{name}_run", table.c.run_id, table.c.connection_id)
        Index(f"ix_stg_{name}_xero_id", table.c.connection_id, table.c.xero_id)
    else:
        # A line finds its staged parent by the parent's (page, position) in the run: pages are staged in order, so
        # this index is only ever appended to. Keyed by the parent's Xero id (random), each page of lines rewrote
        # leaves all over it: on SQLite a million lines took ~13 s against ~6.5 s this way (issue 13, fix 23;
        # migration 0290 replaces the old index). Also serves "this run's lines" (its leading columns).
        Index(
            f"ix_stg_{name}_parent",
            table.c.run_id,
            table.c.connection_id,
            table.c.parent_page,
            table.c.parent_position,
        )
    return table


def _validated_table(name: str, columns: Iterable[EntityColumn], *, parent: bool) -> Table:
    keys = (
        [Column("connection_id", Integer, primary_key=True), Column("xero_id", Text, primary_key=True)]
        if parent
        else [
            Column("connection_id", Integer, primary_key=True),
            Column("parent_id", Text, primary_key=True),
            Column("line_no", Integer, primary_key=True),
        ]
    )
    tail: list[Column] = []
    if parent:
        tail += [
            # The staged row this version came from: its raw payload is there (written once, in staging).
            Column("stg_id", BigInteger),
            Column("raw_digest", Text),
            Column("last_run_id", Text, nullable=False),
            Column("last_extracted_at", DateTime, nullable=False),
        ]
    table = Table(f"val_{name}", metadata, *keys, *_typed_columns(columns), *tail)
    if parent:
        Index(f"ix_val_{name}_run", table.c.connection_id, table.c.last_run_id)
    return table


# Columns earlier versions had and the registry's tables no longer have; `migrate` drops them where present.
# Each line's raw JSON (staging and mirror) and the mirror's copy of every record's raw JSON were the second and
# third copies of the same payload (the record's staged `raw` holds them all): issue 13, write it once.
RETIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    **{f"val_{e.name}": ("raw",) for e in ENTITIES},
    **{f"{prefix}_{ln.name}": ("raw",) for e in ENTITIES for ln in e.lines for prefix in ("stg", "val")},
}


@dataclass(frozen=True)
class EntityTables:
    staging: Table
    validated: Table
    line_staging: dict[str, Table]
    line_validated: dict[str, Table]


TABLES: dict[str, EntityTables] = {}
for _entity in ENTITIES:
    TABLES[_entity.name] = EntityTables(
        staging=_staging_table(_entity.name, _entity.columns, parent=True),
        validated=_validated_table(_entity.name, _entity.columns, parent=True),
        line_staging={ln.name: _staging_table(ln.name, ln.columns, parent=False) for ln in _entity.lines},
        line_validated={ln.name: _validated_table(ln.name, ln.columns, parent=False) for ln in _entity.lines},
    )


# --- converting Xero records to staging rows (pure) -------------------------------------------------------


@dataclass(frozen=True)
class RunContext:
    run_id: str
    connection_id: int
    extracted_at: datetime  # naive UTC


@dataclass
class StagedPage:
    """One Xero page as staging rows. Each row is a list of values in its table's written-column order
    (`columns`, `line_columns[name]`: what `write_rows` takes), built that way directly: a dict per row, merged
    from parts and read back column by column for the driver, cost as much again as converting the values (issue
    13, fix 28 in bench/NOTES.md). `row_dicts` and `line_dicts` give the rows by column name."""

    rows: list[list[Any]]
    lines: dict[str, list[list[Any]]]
    max_updated: datetime | None  # largest valid UpdatedDateUTC on the page (naive UTC)
    columns: tuple[str, ...]
    line_columns: dict[str, tuple[str, ...]]

    def row_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def line_dicts(self, name: str) -> list[dict[str, Any]]:
        columns = self.line_columns[name]
        return [dict(zip(columns, row, strict=True)) for row in self.lines[name]]


Converter = tuple[str, str | None, Any, Any, str]  # column name, top-level key or None, getter, parser, type


_CONVERTERS: dict[int, tuple[tuple[EntityColumn, ...], tuple[Converter, ...]]] = {}


def _converters(columns: tuple[EntityColumn, ...]) -> tuple[Converter, ...]:
    """Each column's getter and parser, built once per column set: `Column.getter` builds a new closure on every
    access, which cost more than the conversion itself at a million line rows. A top-level key is read with
    `dict.get` directly (no closure call). Keyed by identity (hashing the columns on every record costs too); the
    entry keeps its columns alive, so an id is never reused."""
    hit = _CONVERTERS.get(id(columns))
    if hit is None or hit[0] is not columns:
        hit = _CONVERTERS[id(columns)] = (
            columns,
            tuple(
                (
                    c.name,
                    c.source if isinstance(c.source, str) and "." not in c.source else None,
                    c.getter,
                    _PARSERS[c.type],
                    c.type,
                )
                for c in columns
            ),
        )
    return hit[1]


_NUMERIC_LIMIT = float(xero_values.MAX_NUMERIC)


def _convert(columns: tuple[EntityColumn, ...], record: dict[str, Any], values: list[Any]) -> list[str]:
    """Append each column's value of `record` to `values`, in column order; return what did not parse."""
    append = values.append
    errors: list[str] = []
    for name, key, getter, parse, kind in _converters(columns):
        raw = record.get(key, MISSING) if key is not None else getter(record)
        if raw is MISSING or raw is None:
            append(None)
            continue
        # Fast paths for what Xero sends nearly always (profiled: the parsers were most of staging's CPU at a
        # million line rows). ASCII text holds no surrogate, so only NUL needs looking for; a JSON number in range
        # is stored as it came (both databases read the float's shortest repr exactly as the Decimal of it).
        # Anything else takes the parser, which says what is wrong.
        kind_of = type(raw)
        if kind == "text" and kind_of is str and raw.isascii() and "\x00" not in raw:
            append(raw)
            continue
        if (
            kind == "numeric"
            and (kind_of is float or kind_of is int)
            and -_NUMERIC_LIMIT < raw < _NUMERIC_LIMIT
        ):
            append(raw)
            continue
        try:
            value = parse(raw)
        except (ValueError, TypeError, OverflowError) as exc:
            append(None)
            errors.append(f"{name}: {exc}")
            continue
        if kind == "json":
            value = _json_text(value)
            if not xero_values.is_storable(value):
                append(None)
                errors.append(f"{name}: text contains an unpaired surrogate (invalid UTF-16 escape)")
                continue
        append(value)
    return errors


def _json_text(value: Any) -> str:
    """A JSON column's text: compact with keys sorted, as the raw payload is written. orjson is ~10x faster than
    json at a million lines' Tracking; what it refuses (a lone surrogate, an integer beyond 64 bits) falls back to
    json, whose text the caller checks for storability."""
    if value == []:
        return "[]"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _dump(record: Any) -> str:
    """The raw payload verbatim, except NUL: PostgreSQL cannot store it (not even as \\u0000 in JSONB), so it is
    kept as the visible text `\\u0000`. orjson serialises ten times faster than json; what it refuses (integers
    beyond 64 bits) falls back to json."""
    try:
        text = orjson.dumps(record).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(record, ensure_ascii=False)
        if not xero_values.is_storable(text):
            # A lone surrogate (which is why orjson refused): kept as the visible escape text, like NUL below.
            text = _LONE_SURROGATE.sub(lambda m: f"\\\\u{ord(m.group()):04x}", text)
    # The regex is slow on long strings; most payloads have no NUL at all.
    return _JSON_NUL.sub(r"\1\\\\u0000", text) if "\\u0000" in text else text


def _payload(record: Any) -> tuple[str, str]:
    """The raw payload and its digest (`raw`, `raw_digest`)."""
    raw = _dump(record)
    return raw, hashlib.md5(raw.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class _RowLayout:
    """Where stage_page puts things in a record's row: the entity's columns after the head, as
    `_staging_table` lays them out (`test_staged_rows_follow_the_written_columns` holds the two together)."""

    columns: tuple[str, ...]
    line_columns: dict[str, tuple[str, ...]]
    key: int  # the Xero id's own column (a copy goes to `xero_id`)
    updated: int | None  # updated_date_utc, if the entity has it


_PARENT_HEAD = ("run_id", "connection_id", "extracted_at", "page", "position", "xero_id")
_XERO_ID = _PARENT_HEAD.index("xero_id")


def _layout(entity: Entity) -> _RowLayout:
    """Worked out once per page (microseconds), not per row."""
    names = [c.name for c in entity.columns]
    tables = TABLES[entity.name]
    return _RowLayout(
        columns=tuple(written_columns(tables.staging)),
        line_columns={name: tuple(written_columns(table)) for name, table in tables.line_staging.items()},
        key=len(_PARENT_HEAD) + names.index(entity.key_column.name),
        updated=len(_PARENT_HEAD) + names.index("updated_date_utc") if "updated_date_utc" in names else None,
    )


def stage_page(entity: Entity, records: list[Any], ctx: RunContext, page: int = 1) -> StagedPage:
    """Xero records (as parsed JSON) -> staging rows for the entity and its line tables. Never raises."""
    layout = _layout(entity)
    rows: list[list[Any]] = []
    lines: dict[str, list[list[Any]]] = {ln.name: [] for ln in entity.lines}
    max_updated: datetime | None = None
    base = (ctx.run_id, ctx.connection_id, ctx.extracted_at)
    lower_key = _looks_like_guid(entity.key)
    for position, record in enumerate(records):
        row: list[Any] = [*base, page, position, None]
        if not isinstance(record, dict):
            row += [None] * len(entity.columns)
            row.append(json.dumps([f"record: expected an object, got {type(record).__name__}"]))
            row += _payload(record)
            rows.append(row)
            continue
        errors = _convert(entity.columns, record, row)
        xero_id = row[layout.key]
        if isinstance(xero_id, str) and lower_key:
            xero_id = row[layout.key] = xero_id.lower()
        row[_XERO_ID] = xero_id
        if layout.updated is not None:
            updated = row[layout.updated]
            if isinstance(updated, datetime) and (max_updated is None or updated > max_updated):
                max_updated = updated
        for line_spec in entity.lines:
            line_errors = _stage_lines(
                line_spec, record, (*base, xero_id, page, position), lines[line_spec.name]
            )
            errors.extend(line_errors)
        row.append(json.dumps(errors, ensure_ascii=False) if errors else None)
        row += _payload(record)
        rows.append(row)
    return StagedPage(
        rows=rows,
        lines=lines,
        max_updated=max_updated,
        columns=layout.columns,
        line_columns=layout.line_columns,
    )


def _looks_like_guid(key: str) -> bool:
    return key.endswith("ID")


def _stage_lines(
    spec: Lines, record: dict[str, Any], head: tuple[Any, ...], rows: list[list[Any]]
) -> list[str]:
    """Append the record's line rows (each starting with `head` and its line number) to `rows`; return the
    record's reasons for them."""
    items = record.get(spec.source)
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"{spec.source}: expected a list, got {type(items).__name__}"]
    errors: list[str] = []
    for line_no, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(f"{spec.source}[{line_no}]: expected an object")
            continue
        row: list[Any] = [*head, line_no]
        line_errors = _convert(spec.columns, item, row)
        errors.extend(f"{spec.source}[{line_no}].{e}" for e in line_errors)
        row.append(json.dumps(line_errors, ensure_ascii=False) if line_errors else None)
        rows.append(row)
    return errors


# --- writing (the database edge) ----------------------------------------------------------------------------


def written_columns(table: Table) -> list[str]:
    """The columns a staging write supplies, in the order of a staged row's values (the id and the validation
    status take their defaults)."""
    return [c.name for c in table.columns if c.name != "stg_id" and c.name != "validation_status"]


def _copy_rows(conn: Connection, table: Table, rows: list[list[Any]]) -> None:
    """PostgreSQL: COPY FROM STDIN (binary-safe text protocol), an order of magnitude faster than INSERTs."""
    columns = written_columns(table)
    dbapi = conn.connection.driver_connection
    column_list = ", ".join(f'"{c}"' for c in columns)
    with dbapi.cursor() as cur, cur.copy(f"COPY {table.name} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    columns: list[str]
    converters: list[tuple[int, Any]]  # (position, SQLAlchemy's bind processor for this dialect)


_INSERT_PLANS: dict[tuple[str, str], _InsertPlan] = {}


def _insert_plan(conn: Connection, table: Table) -> _InsertPlan:
    """One INSERT per table and dialect, with the bind processors SQLAlchemy itself would apply (datetimes and
    dates to SQLite's text, Decimals to float, booleans to 0/1), so the rows stored are exactly the same."""
    key = (table.name, conn.dialect.name)
    plan = _INSERT_PLANS.get(key)
    if plan is None:
        columns = written_columns(table)
        converters = []
        for position, name in enumerate(columns):
            column_type = table.c[name].type
            processor = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            if processor is not None and isinstance(column_type, DateTime | Date):
                # The same values come again and again (`extracted_at` is on every row of a run, dates repeat):
                # formatting each as SQLite's text again was a third of the rows' preparation.
                processor = lru_cache(maxsize=8192)(processor)
            if processor is not None:
                converters.append((position, processor))
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        plan = _INSERT_PLANS[key] = _InsertPlan(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks})", columns, converters
        )
    return plan


def _insert_rows(conn: Connection, table: Table, rows: list[list[Any]]) -> None:
    """SQLite: the driver's executemany over plain lists. Through `Connection.execute` SQLAlchemy spent more CPU
    on each row's parameters than SQLite spent storing it (issue 13, bench/NOTES.md row 16)."""
    plan = _insert_plan(conn, table)
    converters = plan.converters

    def values() -> Iterator[list[Any]]:
        for row in rows:
            value = row.copy()  # the page's own rows stay as staged
            for position, convert in converters:
                if value[position] is not None:
                    value[position] = convert(value[position])
            yield value

    if not conn.in_transaction():
        conn.begin()  # what execute() would autobegin: the caller's commit covers these rows
    conn.connection.driver_connection.cursor().executemany(plan.sql, values())


def write_rows(conn: Connection, table: Table, rows: list[list[Any]]) -> int:
    """Bulk-append rows (each in `written_columns(table)` order) to a staging table: COPY on PostgreSQL, the
    driver's executemany on SQLite. Returns the row count."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, rows)
    else:
        _insert_rows(conn, table, rows)
    return len(rows)


# SQLite: staged rows per transaction. A commit writes every database page it changed to the log, and one Xero
# page of 1,000 invoices touches many leaves of the records' (connection, xero_id) index (the ids are random; until
# fix 23 the lines' parent index too): committed every Xero page, those leaves went to the log again and again. A
# replay of 200,000 records and a million lines: 1,000 records a commit 10.7-11.4 s, 5,000 a commit 7.9-8.5 s
# (issue 13, fix 22 in bench/NOTES.md). Only while the next page is already read: SQLite's one write lock is
# never held while Xero is waited for, and 25,000 rows hold it for about a second (staging runs at ~30,000 rows a
# second).
SQLITE_ROWS_PER_COMMIT = 25_000


class PageWriter:
    """Writes the staged pages of one read in transactions that hold staged pages and nothing else.

    PostgreSQL: a transaction per page, whose commit does not wait for the WAL flush. A staged page is never the
    last word of a run: what uses it (validation, the load and its watermarks) commits later, synchronously, and
    that flush makes every earlier commit durable with it; a server crash before then loses at most staged pages
    of a run that reruns from its unmoved watermarks and re-reads them (fix 21: one flush less per page).
    SQLite: a page is committed together with the next ones while the next is already read (`next_page_ready`)
    and fewer than `SQLITE_ROWS_PER_COMMIT` rows are pending (fix 22), otherwise at once.
    Leaving the block commits what was written, unless writing a page failed (then the pages not yet committed
    are rolled back: a rerun of the run clears and re-reads the entity either way)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._rows_per_commit = SQLITE_ROWS_PER_COMMIT if engine.dialect.name == "sqlite" else 0
        self._conn: Connection | None = None
        self._pending = 0

    def write(self, entity: Entity, page: StagedPage, *, next_page_ready: bool = False) -> None:
        """Write one page; commit unless SQLite may hold it for the next one (see the class)."""
        if self._conn is None:
            self._conn = self._engine.connect()
            self._conn.begin()
            if self._conn.dialect.name == "postgresql":
                self._conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        try:
            write_page(self._conn, entity, page)
        except BaseException:
            self._rollback()  # the database refused the page (the driver's own error, or SQLAlchemy's)
            raise
        self._pending += len(page.rows) + sum(len(rows) for rows in page.lines.values())
        if not next_page_ready or self._pending >= self._rows_per_commit:
            self.commit()

    def commit(self) -> None:
        """Commit the pages written so far (the end of a read does it on leaving the block)."""
        conn, self._conn, self._pending = self._conn, None, 0
        if conn is not None:
            with conn:
                conn.commit()

    def __enter__(self) -> PageWriter:
        return self

    def _rollback(self) -> None:
        conn, self._conn, self._pending = self._conn, None, 0
        if conn is not None:
            with conn:
                conn.rollback()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        self.commit()  # a failed write has rolled back already; anything else (Xero's daily limit) keeps the pages


def write_page(conn: Connection, entity: Entity, page: StagedPage) -> int:
    tables = TABLES[entity.name]
    count = write_rows(conn, tables.staging, page.rows)
    for name, rows in page.lines.items():
        write_rows(conn, tables.line_staging[name], rows)
    return count


def mirror_holds(staged: str, mirror: str) -> str:
    """SQL: the mirror row `mirror` holds the staged row `staged` of this run (:run_id, :connection_id). It names the
    row (`stg_id`) and the same record (SQLite hands out again the rowids of the newest rows a rerun of a run
    cleared, so an id alone may now be another record's row), and this run (`last_run_id` is written with
    `stg_id`). The one statement of that rule: promotion finds the parents it promoted by it, and a run is
    forgotten except what it names."""
    return (
        f"{mirror}.stg_id = {staged}.stg_id AND {mirror}.xero_id = {staged}.xero_id "
        f"AND {mirror}.connection_id = :connection_id AND {mirror}.last_run_id = :run_id"
    )


@dataclass(frozen=True)
class ForgottenRun:
    deleted: int  # staged records deleted (their lines with them)
    kept: int  # staged records kept because the mirror points at them
    last_kept_page: int  # the highest page number among those kept (0 if none)


def forget_run(
    conn: Connection,
    entity: Entity,
    run_id: str,
    connection_id: int,
    *,
    extracted_before: datetime | None = None,
) -> ForgottenRun:
    """Delete what `run_id` staged for the entity, with the lines, except the staged records the mirror points at
    (and their lines): the raw payload there is the only copy of the version the mirror holds. Used by a rerun of
    the run (`import_run.clear_run`) and by retention (`retention.prune_staging`), which passes `extracted_before`
    so that a late rerun's fresh rows of an old run stay until they are old themselves."""
    params: dict[str, Any] = {"run_id": run_id, "connection_id": connection_id}
    tables = TABLES[entity.name]
    parents, mirror = tables.staging.name, tables.validated.name
    run_rows = "run_id = :run_id AND connection_id = :connection_id"
    if extracted_before is not None:
        run_rows += " AND extracted_at < :extracted_before"
        params["extracted_before"] = db.bind_time(extracted_before, conn.dialect.name)
    # Correlated through the mirror's key, so that each staged row is one index probe on both databases
    # (PostgreSQL plans NOT EXISTS as an anti-join; NOT IN could not be).
    mirrored = f"SELECT 1 FROM {mirror} v WHERE {mirror_holds(parents, 'v')}"
    kept, last_page = conn.execute(
        text(f"SELECT COUNT(*), MAX(page) FROM {parents} WHERE {run_rows} AND EXISTS ({mirrored})"),
        params,
    ).one()
    for lines in tables.line_staging.values():
        parent_kept = (
            f"SELECT 1 FROM {mirror} v JOIN {parents} p ON {mirror_holds('p', 'v')} "
            f"WHERE v.xero_id = {lines.name}.parent_id AND p.run_id = :run_id AND p.connection_id = :connection_id "
            f"AND p.page = {lines.name}.parent_page AND p.position = {lines.name}.parent_position"
        )
        keep = f" AND NOT EXISTS ({parent_kept})" if kept else ""
        conn.execute(text(f"DELETE FROM {lines.name} WHERE {run_rows}{keep}"), params)
    keep = f" AND NOT EXISTS ({mirrored})" if kept else ""
    deleted = conn.execute(text(f"DELETE FROM {parents} WHERE {run_rows}{keep}"), params).rowcount
    return ForgottenRun(deleted=deleted, kept=kept, last_kept_page=int(last_page or 0))


def now_utc_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
