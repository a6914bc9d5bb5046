"""The import of one connection, step by step: extract -> validate -> transform and load -> advance watermarks.

Each step is a function the xero_import DAG calls as a task (and that tests, benchmarks and `make run` call too).
Steps exchange only small, secret-free dicts (they travel through XCom); the data itself travels through the
database (staging and val_* tables). Every step can be rerun for the same run: extract first clears what an earlier
attempt of the same run staged, validation replaces its verdicts, loads are upserts, watermarks only move forward.

Watermarks (I9): per connection and entity, the largest UpdatedDateUTC of the *first* response of a read. Reads go
newest-first, so anything changed while we page is newer than that and the next run's If-Modified-Since catches
it. The watermark moves in the same transaction as the entity's load, so a crash before the commit re-reads the
same data next time and a crash after it never skips any.

Issue 13 (the first sync as fast as Xero's pacing allows): extract validates each entity while the next one is
read, and commits ahead the load steps whose entities are all settled (`load_ahead`). Those commits move no
watermark: a crash after one re-reads the records and the idempotent steps rewrite nothing; the load step skips
the steps committed ahead (`loaded_ahead` in the extract's result) and moves the watermarks with the rest. On
PostgreSQL the load ahead runs on a thread beside staging, also after the last entity, and the steps nothing later
reads (the document lines) commit on a third thread and connection beside it (`Beside`), so the database works on
both cores at the end of a first sync; extract returns once they have committed. Validating is two parts: the
checks (`check_entity`, reads and Great Expectations, on the main thread right after the entity's last page) and
the record (`record_entity`: verdicts, quarantine and promotion in one transaction), which on PostgreSQL runs on
the load-ahead thread ahead of the load steps it settles, while the next entity is staged.
"""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from xero_crm_sync import (
    garbage_collection,
    runs,
    scheduling,
    staging,
    sync_errors,
    validated,
    validation,
    xero_access,
)
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore, utcnow
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.entities import ENTITIES, Entity
from xero_crm_sync.oauth import ReconnectRequired
from xero_crm_sync.prefetch import ReadAhead
from xero_crm_sync.progress import Progress
from xero_crm_sync.settings import Settings, get_settings
from xero_crm_sync.xero_client import (
    DailyLimitReached,
    Limits,
    RetryPolicy,
    XeroAuthError,
    XeroForbidden,
)

log = logging.getLogger(__name__)

FULL_RECONCILE_EVERY = timedelta(hours=24)  # a periodic full read catches changes Xero does not stamp
# The secondary organisation only enriches (I13): the registry marks what it reads (`Entity.secondary`).
SECONDARY_ENTITIES = tuple(e.name for e in ENTITIES if e.secondary)
READ_AHEAD_PAGES = 2  # pages read while one is staged: two pages of 1,000 invoices are a few MiB


def entities_for(role: str) -> tuple[Entity, ...]:
    if role == "secondary":
        return tuple(e for e in ENTITIES if e.name in SECONDARY_ENTITIES)
    return ENTITIES


@dataclass
class EntityExtract:
    entity: str
    mode: str  # "full" or "incremental"
    complete: bool = False
    pages: int = 0
    records: int = 0
    calls: int = 0
    modified_since: str | None = None
    watermark: str | None = None  # candidate; applied by the load step after its commit
    seconds: float = 0.0
    waited: float = 0.0  # of `seconds`, waiting for Xero's pages with nothing of ours to do
    validated: dict[str, Any] | None = (
        None  # the entity's validation report, when extract validated it already
    )


@dataclass
class ExtractResult:
    connection_id: int
    run_id: str
    entities: dict[str, EntityExtract] = field(default_factory=dict)
    stopped: str | None = None  # why the run stopped early (daily limit, reconnect needed)
    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    # The load steps committed while later entities were still read (`load_ahead`), with their counts: the load
    # step skips them.
    loaded_ahead: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "run_id": self.run_id,
            "entities": {k: v.__dict__ for k, v in self.entities.items()},
            "stopped": self.stopped,
            "calls": self.calls,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "loaded_ahead": self.loaded_ahead,
        }


# --- step 0: which connections ---------------------------------------------------------------------------


def connections_to_run(
    store: ConnectionStore,
    connection_id: int | None = None,
    *,
    respect_interval: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Active connections to import (both roles), as secret-free dicts; see `scheduling.connections_to_run`."""
    return scheduling.connections_to_run(
        store, kind="import", connection_id=connection_id, respect_interval=respect_interval, now=now
    )


# --- step 1: extract ----------------------------------------------------------------------------------------


def watermarks(conn: Connection, connection_id: int) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Per entity of the connection: (watermark, last full sync), as naive UTC datetimes on both databases."""
    rows = conn.execute(
        text("SELECT entity, watermark_at, last_full_sync_at FROM sync_watermark WHERE connection_id = :c"),
        {"c": connection_id},
    ).all()
    return {r[0]: (_as_dt(r[1]), _as_dt(r[2])) for r in rows}


def _as_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def clear_run(conn: Connection, entity: Entity, run_id: str, connection_id: int) -> int:
    """Forget what an earlier attempt of this run staged for the entity (a retried task starts clean), except the
    staged rows the mirror now points at (`staging.forget_run`: a retried webhook task starts again at its first
    pass, whose records the mirror already took; so does an extract retried after its load ahead). Returns the last
    page number kept (0 if none): the retry numbers its pages after it, since a line finds its staged parent by
    (page, position) in the run."""
    forgotten = staging.forget_run(conn, entity, run_id, connection_id)
    conn.execute(
        text(
            "DELETE FROM quarantined_record WHERE run_id = :run_id AND connection_id = :connection_id "
            "AND entity = :entity"
        ),
        {"run_id": run_id, "connection_id": connection_id, "entity": entity.name},
    )
    return forgotten.last_kept_page


@garbage_collection.paused()
def extract(
    engine: Engine,
    store: ConnectionStore,
    info: ConnectionInfo,
    run_id: str,
    *,
    full: bool = False,
    settings: Settings | None = None,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
    skip: frozenset[str] = frozenset(),
) -> ExtractResult:
    """Read every entity of the connection into staging, page by page (one page in memory at a time).

    `skip`: entities not to read this time (webhook entities while webhooks are healthy: webhooks/health.py)."""
    settings = settings or get_settings()
    now = now or utcnow()
    result = ExtractResult(connection_id=info.id, run_id=run_id)
    client = xero_access.make_client(store, info, settings, limits=limits, retry=retry)
    with engine.connect() as conn:
        marks = watermarks(conn, info.id)
    ctx = staging.RunContext(run_id=run_id, connection_id=info.id, extracted_at=now)
    todo = [e for e in entities_for(info.role) if e.name not in skip]

    def since_for(entity: Entity) -> datetime | None:
        watermark, last_full = marks.get(entity.name, (None, None))
        due_full = full or watermark is None or last_full is None or now - last_full >= FULL_RECONCILE_EVERY
        return None if due_full or not entity.modified_since else watermark

    # The next entity's reader, started before this entity is validated: Xero's pacing waits of the next reads and
    # our validation of this one overlap (with the calls made before it started, to count its calls apart).
    next_reader: tuple[ReadAhead, int] | None = None
    # On PostgreSQL the load ahead runs on one worker thread, so that the next entity's pages are staged (and its
    # calls made) while the database works: a reader left waiting is a Xero call not made, and at Xero's pacing
    # every such second is added to the run (a 47 s load ahead in line held the payments back by 46 s at 100k).
    # One worker runs them in order, each seeing what the one before committed. SQLite has one writer at a time
    # (staging would wait for the load's lock anyway): in line there.
    ahead = (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-ahead")
        if engine.dialect.name == "postgresql"
        else None
    )
    # And beside it, on a connection of its own, the steps nothing later reads (the document lines: 800,000
    # invoice lines at 100k), so that the steps after them, the payments' included, commit on the other core.
    beside = Beside() if ahead is not None and info.role == "primary" else None
    recorded: dict[str, Future[None]] = {}  # PostgreSQL: each entity's verdicts, written on the worker
    try:
        for index, entity in enumerate(todo):
            watermark = marks.get(entity.name, (None, None))[0]
            since = since_for(entity)
            item = EntityExtract(
                entity=entity.name,
                mode="full" if since is None else "incremental",
                modified_since=since.isoformat() if since else None,
            )
            result.entities[entity.name] = item
            started = time.perf_counter()
            pages: ReadAhead | None = None
            calls_before = client.stats.calls
            if next_reader is not None:
                (pages, calls_before), next_reader = next_reader, None
            try:
                with engine.begin() as conn:
                    pages_kept = clear_run(conn, entity, run_id, info.id)
                first_max: datetime | None = None
                overall_max: datetime | None = None
                progress = Progress(entity.name)
                # The next pages are read while this one is staged (prefetch.py: same order, same transactions).
                if pages is None:
                    pages = ReadAhead(client.iter_pages(entity, modified_since=since), depth=READ_AHEAD_PAGES)
                with staging.PageWriter(engine) as writer:
                    for page in pages:
                        staged = staging.stage_page(entity, page.records, ctx, page=pages_kept + page.page)
                        writer.write(entity, staged, next_page_ready=pages.ready())
                        crash_point("extract.page")
                        item.pages += 1
                        item.records += len(page.records)
                        progress.page(len(page.records), page.page_count, page.item_count)
                        if page.page == 1:
                            first_max = staged.max_updated
                        if staged.max_updated and (overall_max is None or staged.max_updated > overall_max):
                            overall_max = staged.max_updated
                # Paged newest-first reads: the first page's newest record. Single-call reads: the newest record.
                candidate = first_max if entity.paged else overall_max
                if candidate is None:
                    candidate = watermark  # nothing changed: keep the old watermark
                item.watermark = candidate.isoformat() if candidate else None
                item.complete = True
                item.calls = client.stats.calls - calls_before
                item.seconds = round(time.perf_counter() - started, 3)
                crash_point("extract.entity")
            except DailyLimitReached as exc:
                result.stopped = f"daily API limit reached while reading {entity.name}: {exc}"
                log.warning("%s; the next run resumes from the saved watermarks", result.stopped)
                break
            except (ReconnectRequired, XeroAuthError) as exc:
                store.mark_needs_reconnect(info.id, str(exc))
                result.stopped = f"connection needs a reconnect: {exc}"
                log.error("%s", result.stopped)
                break
            except XeroForbidden as exc:
                if xero_access.organisation_gone(store, info, settings):
                    # Disconnected in Xero: the health check just flagged it. Stop; a reconnect resumes from the
                    # watermarks (every entity still to read would only answer 403 again).
                    result.stopped = f"the organisation is no longer connected in Xero: {exc}"
                    log.error("%s", result.stopped)
                    break
                # A missing scope for one entity must not stop the others; it is recorded and shown.
                result.stopped = None
                item.complete = False
                log.error("cannot read %s: %s", entity.name, exc)
                _record_import_error(
                    engine,
                    info.id,
                    run_id,
                    entity.name,
                    "forbidden",
                    str(exc),
                    "Reconnect with the scopes the integration needs (see README: Connecting Xero).",
                )
            finally:
                if not item.complete:
                    item.calls = client.stats.calls - calls_before
                    item.seconds = round(time.perf_counter() - started, 3)
                if pages is not None:
                    item.waited = round(pages.waited, 3)
                    pages.close()
            log.info(
                "extracted %-20s %-11s %7d records in %3d pages, %3d calls, %.2f s",
                entity.name,
                item.mode,
                item.records,
                item.pages,
                item.calls,
                item.seconds,
            )
            if not item.complete:
                continue
            if index + 1 < len(todo):
                upcoming = todo[index + 1]
                reader = ReadAhead(
                    client.iter_pages(upcoming, modified_since=since_for(upcoming)), READ_AHEAD_PAGES
                )
                next_reader = (reader, client.stats.calls)
                reader.start()
            # Validated now, while the next entity is read, instead of after the last page of the run (issue 13: the
            # import as fast as Xero's pacing allows). Its verdicts in their own transaction, as in the validate
            # step, which then only passes them on; an entity whose validation fails here is left to that step.
            for name in validation.mirrors_read(entity):  # what its checks read has committed
                if name in recorded:
                    recorded[name].exception()
            try:
                checked = check_entity(engine, entity, run_id, info.id)
            except Exception:
                log.exception(
                    "validating %s during extract failed; the validate step retries it", entity.name
                )
                continue
            # Then the load steps whose entities are now all settled, while the next entity is read (issue 13). On
            # PostgreSQL the verdicts and those steps go to the load-ahead worker, in order, so that the next
            # entity is staged while the database writes them; after the last entity too: its steps then commit
            # beside the document lines still loading.
            record = functools.partial(
                _record_and_load_ahead, engine, result, entity, checked, todo[: index + 1], todo, full=full
            )
            if ahead is None:
                record(load=index + 1 < len(todo))
            else:
                recorded[entity.name] = ahead.submit(record, load=True, beside=beside)
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True)
        if beside is not None:
            beside.finish(result)
    if next_reader is not None:
        next_reader[0].close()
    stats = client.stats
    result.calls, result.retries, result.rate_limited = stats.calls, stats.retries, stats.rate_limited
    runs.record_run(
        engine,
        info.id,
        run_id,
        "import",
        {"extract": result.as_dict()},
        mode="full" if full else "incremental",
    )
    return result


def _settled(read: list[Entity], todo: list[Entity], result: ExtractResult) -> set[str]:
    """The entities whose rows for this run are final: of those whose reading is over (`read`), the ones validated
    during extract and the ones not read completely (the load goes without them); and those not read at all this
    run (`todo`: what it reads)."""
    settled = {e.name for e in ENTITIES} - {e.name for e in todo}
    for entity in read:
        item = result.entities.get(entity.name)
        if item is not None and (not item.complete or item.validated is not None):
            settled.add(entity.name)
    return settled


def _record_and_load_ahead(
    engine: Engine,
    result: ExtractResult,
    entity: Entity,
    checked: validation.Checked,
    read: list[Entity],
    todo: list[Entity],
    *,
    load: bool,
    full: bool,
    beside: Beside | None = None,
) -> None:
    """Write an entity's verdicts (`record_entity`), then commit the load steps whose entities are all settled
    (`load_ahead`), unless the verdicts failed (the validate step retries the entity; the load step runs the
    steps). `read`: the entities whose reading is over, this one the last."""
    item = result.entities[entity.name]
    try:
        item.validated = record_entity(engine, entity, result.run_id, result.connection_id, checked)
    except Exception:
        log.exception("validating %s during extract failed; the validate step retries it", entity.name)
        return
    if load:
        load_ahead(engine, result, _settled(read, todo, result), full=full, beside=beside)


class Beside:
    """Issue 13, on PostgreSQL: the detachable load steps (`transform.detachable_ahead`), each committed on a
    connection of its own by one worker thread, beside the load ahead's later steps. Only the load-ahead thread
    submits; `finish` (extract's end) waits for them and passes on the counts of those that committed. One that
    failed is left out, so the load step runs it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-beside")
        self._running: dict[str, Future[dict[str, int]]] = {}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._running)

    def submit(self, engine: Engine, result: ExtractResult, name: str, *, now: datetime, full: bool) -> None:
        self._running[name] = self._pool.submit(_load_beside, engine, result, name, now=now, full=full)

    def finish(self, result: ExtractResult) -> None:
        from xero_crm_sync import transform

        self._pool.shutdown(wait=True)
        for future in self._running.values():
            if future.exception() is None:
                result.loaded_ahead = transform.merge_counts(result.loaded_ahead, future.result())
        self._running.clear()


def _load_beside(
    engine: Engine, result: ExtractResult, name: str, *, now: datetime, full: bool
) -> dict[str, int]:
    from xero_crm_sync import transform

    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            counts = transform.run_detached(
                conn, name, run_id=result.run_id, connection_id=result.connection_id, now=now, full=full
            )
    except Exception:
        log.exception("loading %s beside the load ahead failed; the load step runs it", name)
        raise
    crash_point("load_ahead.committed")
    log.info("loaded %s beside the load ahead, %.2f s", name, time.perf_counter() - started)
    return counts


def load_ahead(
    engine: Engine, result: ExtractResult, settled: set[str], *, full: bool, beside: Beside | None = None
) -> None:
    """Commit the load steps that need only `settled` entities (`transform.load_ahead`), in their own transaction;
    the watermarks stay where they are until the load step. A failure is left to the load step, which then runs
    those steps itself. With `beside`, the detachable ones among them are left out and committed beside the
    next ones once these have committed."""
    from xero_crm_sync import transform

    started = time.perf_counter()
    now = utcnow()
    in_flight = beside.names if beside is not None else frozenset()
    detached = (
        transform.detachable_ahead(settled, done={*result.loaded_ahead, *in_flight})
        if beside is not None
        else []
    )
    try:
        with engine.begin() as conn:
            counts = transform.load_ahead(
                conn,
                run_id=result.run_id,
                connection_id=result.connection_id,
                now=now,
                full=full,
                settled=settled,
                done={*result.loaded_ahead, *in_flight, *detached},
            )
    except Exception:
        log.exception("loading ahead failed; the load step runs those steps")
        return
    if beside is not None:
        for name in detached:  # what they read of the steps before them has committed
            beside.submit(engine, result, name, now=now, full=full)
    if counts:
        crash_point("load_ahead.committed")
        result.loaded_ahead = transform.merge_counts(result.loaded_ahead, counts)
        log.info(
            "loaded ahead %d steps (%s to %s), %.2f s",
            len(counts) - 1,
            next(iter(counts)),
            list(counts)[-2],
            time.perf_counter() - started,
        )


# --- step 2: validate ---------------------------------------------------------------------------------------


def validate_entity(engine: Engine, entity: Entity, run_id: str, connection_id: int) -> dict[str, Any]:
    """Validate and promote one entity of a run: its checks, then its verdicts and its promotion in one
    transaction (they land together); returns the report."""
    return record_entity(
        engine, entity, run_id, connection_id, check_entity(engine, entity, run_id, connection_id)
    )


def check_entity(engine: Engine, entity: Entity, run_id: str, connection_id: int) -> validation.Checked:
    """Run the entity's Great Expectations suite over the run's staged rows (reads only, `validation.check_entity`):
    SQLite's one write lock is not held while it runs."""
    started = time.perf_counter()
    with engine.connect() as conn:
        checked = validation.check_entity(conn, entity, run_id, connection_id)
    crash_point("validate.checked")
    log.info(
        "checked   %-20s %7d records, %5d failing (%d unchanged, not re-checked), %.2f s",
        entity.name,
        checked.report.checked,
        len(checked.reasons),
        checked.report.unchanged,
        time.perf_counter() - started,
    )
    return checked


def record_entity(
    engine: Engine, entity: Entity, run_id: str, connection_id: int, checked: validation.Checked
) -> dict[str, Any]:
    """Write the verdicts `check_entity` found and promote the valid rows, in one transaction; returns the report."""
    started = time.perf_counter()
    with engine.begin() as conn:
        report = validation.record_verdicts(conn, entity, run_id, connection_id, checked)
        validated.promote(conn, entity, run_id, connection_id)
    crash_point("validate.entity")
    log.info(
        "validated %-20s %7d checked, %7d valid, %5d quarantined, verdicts and promotion %.2f s",
        entity.name,
        report.checked,
        report.valid,
        report.quarantined,
        time.perf_counter() - started,
    )
    for summary in report.expectations:
        if not summary["success"]:
            log.warning(
                "  %s %s failed for %d rows",
                summary["expectation"],
                summary["kwargs"].get("column") or summary["kwargs"].get("column_list"),
                summary["unexpected_count"],
            )
    return report.as_dict()


@garbage_collection.paused()
def validate(engine: Engine, extract_result: dict[str, Any]) -> dict[str, Any]:
    """Validate and promote every completely extracted entity; quarantine the failures with their reasons.

    Extract validates each entity as soon as it is read (while the next one is read); what it validated is passed
    on as it is, and only the rest is validated here."""
    run_id, connection_id = extract_result["run_id"], extract_result["connection_id"]
    reports: dict[str, Any] = {}
    for name, item in extract_result["entities"].items():
        if not item["complete"]:
            continue
        if item.get("validated") is not None:
            reports[name] = item["validated"]
            continue
        entity = next(e for e in ENTITIES if e.name == name)
        reports[name] = validate_entity(engine, entity, run_id, connection_id)
    runs.record_run(engine, connection_id, run_id, "import", {"validate": reports})
    return {"run_id": run_id, "connection_id": connection_id, "entities": reports}


# --- step 3: transform and load, then advance watermarks --------------------------------------------------


def load(
    engine: Engine, extract_result: dict[str, Any], *, full: bool = False, now: datetime | None = None
) -> dict:
    """Run the CRM transforms for the connection and move the watermarks, in one transaction."""
    from xero_crm_sync import transform  # imported late: keeps DAG parsing light

    run_id, connection_id = extract_result["run_id"], extract_result["connection_id"]
    now = now or utcnow()
    complete = {k: v for k, v in extract_result["entities"].items() if v["complete"]}
    ahead = extract_result.get("loaded_ahead") or {}
    with engine.begin() as conn:
        rest = transform.run_import(
            conn, run_id=run_id, connection_id=connection_id, now=now, full=full, done=ahead.keys()
        )
        counts = transform.merge_counts(ahead, rest)
        verdicts = _validation_counts(conn, connection_id, run_id)
        for name, item in complete.items():
            if item["mode"] != "ids":  # a read of some records by id says nothing about what else changed
                _advance_watermark(conn, connection_id, name, item, run_id, now, verdicts.get(name, {}))
        crash_point("load.before_commit")
    crash_point("load.committed")
    status = (
        "partial"
        if extract_result.get("stopped") or len(complete) < len(extract_result["entities"])
        else ("success")
    )
    runs.record_run(
        engine,
        connection_id,
        run_id,
        "import",
        {"load": counts},
        status=status,
        error=extract_result.get("stopped"),
    )
    log.info("loaded run %s for connection %s: %s", run_id, connection_id, counts)
    return {"run_id": run_id, "connection_id": connection_id, "status": status, "counts": counts}


def _validation_counts(conn: Connection, connection_id: int, run_id: str) -> dict[str, dict[str, Any]]:
    """The validate step's per-entity verdicts for this run, as it recorded them in `sync_run.counts`."""
    raw = conn.execute(
        text("SELECT counts FROM sync_run WHERE run_id = :r AND connection_id = :c AND kind = 'import'"),
        {"r": run_id, "c": connection_id},
    ).scalar()
    return runs.counts_of(raw).get("validate") or {}


def _advance_watermark(
    conn: Connection,
    connection_id: int,
    entity: str,
    item: dict[str, Any],
    run_id: str,
    now: datetime,
    verdict: dict[str, Any],
) -> None:
    params = {
        "c": connection_id,
        "e": entity,
        "w": _as_dt(item.get("watermark")),
        "full": now if item["mode"] == "full" else None,
        "run": run_id,
        "now": now,
        "n": item["records"],
        "valid": verdict.get("valid", 0),
        "quarantined": verdict.get("quarantined", 0),
    }
    conn.execute(
        text(
            "INSERT INTO sync_watermark (connection_id, entity, watermark_at, last_full_sync_at, "
            "last_successful_run_id, last_successful_run_at, records_read, records_valid, records_quarantined, "
            "updated_at) VALUES (:c, :e, :w, :full, :run, :now, :n, :valid, :quarantined, :now) "
            "ON CONFLICT (connection_id, entity) DO UPDATE SET "
            # Never backwards: a rerun of an older run must not re-open a window already read.
            "watermark_at = CASE WHEN sync_watermark.watermark_at IS NULL OR excluded.watermark_at > "
            "sync_watermark.watermark_at THEN excluded.watermark_at ELSE sync_watermark.watermark_at END, "
            "last_full_sync_at = COALESCE(excluded.last_full_sync_at, sync_watermark.last_full_sync_at), "
            "last_successful_run_id = excluded.last_successful_run_id, "
            "last_successful_run_at = excluded.last_successful_run_at, "
            "records_read = excluded.records_read, records_valid = excluded.records_valid, "
            "records_quarantined = excluded.records_quarantined, updated_at = excluded.updated_at"
        ),
        params,
    )


def _record_import_error(
    engine: Engine, connection_id: int, run_id: str, record_type: str, code: str, message: str, action: str
) -> None:
    with engine.begin() as conn:
        sync_errors.record_error(
            conn,
            direction="import",
            connection_id=connection_id,
            record_type=record_type,
            record_id=None,
            code=code,
            message=message,
            action=action,
            run_id=run_id,
        )
