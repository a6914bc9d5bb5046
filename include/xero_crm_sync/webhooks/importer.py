"""The event-driven import: pending webhook events -> just those records re-read from Xero -> the import's steps.

For each connection with pending events (tenant -> active connection; events of other tenants are ignored):

1. **extract by id**: `GET /Contacts|Invoices|CreditNotes?IDs=a,b,c,...` with up to `IDS_PER_CALL` ids a call
   (paged like the routine read, so invoices come with their lines), through the connection's normal
   XeroClient (its pacing, retries and limits apply), into the same `stg_*` tables under this run's id. An
   invoice event also reads payments changed since their watermark (one call, a normal incremental read: a
   payment changes its invoice). Those id reads are mode `ids`: they never move a watermark, since they say
   nothing about other records;
2. **validate** and **load** with `import_run.validate` and `import_run.load`: the same Great Expectations
   suites, the same `val_*` promotion and the same `sql/transform` steps, so every import rule applies unchanged.

Idempotent and ordering-safe by construction: an event only says "look again"; what is loaded is Xero's current
record, whatever order events came in and however often. Duplicates never reach here (unique events), and a
replayed old event re-reads the current record, which changes nothing. The `val_*` promotion never lets an
older UpdatedDateUTC overwrite a newer one, so a slow webhook run racing a poll cannot roll data back. A burst
of 1,000 events on one entity is ceil(1000 / IDS_PER_CALL) calls.

Echo guard: an event about a contact the push itself wrote (the CRM row's last export is at or after the event,
within `ECHO_WINDOW`) is marked done without a read: our own write coming back (webhooks/echo.py).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from xero_crm_sync import import_run, runs, staging, xero_access
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore, utcnow
from xero_crm_sync.entities import ENTITIES, Entity
from xero_crm_sync.settings import Settings
from xero_crm_sync.webhooks import echo, events
from xero_crm_sync.webhooks.health import WEBHOOK_ENTITIES
from xero_crm_sync.xero_client import Limits, RetryPolicy

log = logging.getLogger(__name__)

IDS_PER_CALL = 100  # 100 GUIDs keep the URL under 4 KB
ENTITY_FOR_CATEGORY = {category: name for name, category in WEBHOOK_ENTITIES.items()}
_BY_NAME = {e.name: e for e in ENTITIES}


@dataclass
class WebhookImportResult:
    run_id: str
    events: int = 0
    ignored: int = 0
    echoes: int = 0
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # by connection id (XCom: str keys)
    calls: int = 0
    passes: int = 1  # a lingering run's passes (webhooks/drain.py)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def extract_ids(
    engine: Engine,
    store: ConnectionStore,
    info: ConnectionInfo,
    run_id: str,
    ids_by_entity: dict[str, list[str]],
    *,
    settings: Settings,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Stage just these records (and, with invoices, payments changed since their watermark) for `run_id`."""
    now = utcnow()
    result = import_run.ExtractResult(connection_id=info.id, run_id=run_id)
    client = xero_access.make_client(store, info, settings, limits=limits, retry=retry)
    ctx = staging.RunContext(run_id=run_id, connection_id=info.id, extracted_at=now)
    for name, ids in ids_by_entity.items():
        entity: Entity = _BY_NAME[name]
        item = import_run.EntityExtract(entity=name, mode="ids")
        result.entities[name] = item
        started, calls_before = time.perf_counter(), client.stats.calls
        with engine.begin() as conn:
            page_no = import_run.clear_run(conn, entity, run_id, info.id)
        with staging.PageWriter(engine) as writer:
            for chunk in _chunks(sorted(set(ids)), IDS_PER_CALL):
                for page in client.iter_pages(entity, ids=chunk):
                    page_no += 1  # one numbering across chunks: lines find their parent by (page, position)
                    staged = staging.stage_page(entity, page.records, ctx, page=page_no)
                    writer.write(entity, staged)
                    item.pages += 1
                    item.records += len(page.records)
        item.complete = True
        item.calls = client.stats.calls - calls_before
        item.seconds = round(time.perf_counter() - started, 3)
    if "invoices" in ids_by_entity and info.role == "primary":
        # A payment changes its invoice: read payments as the routine import would (If-Modified-Since).
        payments = import_run.extract(
            engine, store, info, run_id, settings=settings, limits=limits, retry=retry,
            skip=frozenset(e.name for e in ENTITIES if e.name != "payments"),
        )  # fmt: skip
        result.entities.update(payments.entities)
        result.stopped = payments.stopped
        result.calls += payments.calls
    result.calls += client.stats.calls
    runs.record_run(engine, info.id, run_id, "import", {"extract": result.as_dict()}, mode="webhook")
    return result.as_dict()


def process_events(
    engine: Engine,
    store: ConnectionStore,
    settings: Settings,
    run_id: str,
    *,
    limit: int = 10_000,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
) -> WebhookImportResult:
    """Load every pending event's record; mark the events done (or ignored, with why)."""
    result = WebhookImportResult(run_id=run_id)
    with engine.connect() as conn:
        pending = events.pending(conn, limit)
    result.events = len(pending)
    if not pending:
        return result
    by_tenant = {info.tenant_id.lower(): info for info in store.runnable()}
    grouped: dict[int, list[events.PendingEvent]] = defaultdict(list)
    ignored: dict[str, list[int]] = defaultdict(list)
    for event in pending:
        info = by_tenant.get(event.tenant_id)
        entity = ENTITY_FOR_CATEGORY.get(event.event_category)
        if info is None:
            ignored["no active connection for this organisation"].append(event.id)
        elif entity is None or entity not in {e.name for e in import_run.entities_for(info.role)}:
            ignored[f"{event.event_category} events are not imported for a {info.role} connection"].append(
                event.id
            )
        else:
            grouped[info.id].append(event)
    infos = {info.id: info for info in by_tenant.values()}
    for connection_id, batch in grouped.items():
        info = infos[connection_id]
        with engine.connect() as conn:
            own = echo.own_writes(conn, info.operating_company_id, batch)
        result.echoes += len(own)
        ids_by_entity: dict[str, list[str]] = defaultdict(list)
        for event in batch:
            if event.id not in own:
                ids_by_entity[ENTITY_FOR_CATEGORY[event.event_category]].append(event.resource_id)
        done_at = now or utcnow()
        if ids_by_entity:
            extracted = extract_ids(
                engine,
                store,
                info,
                run_id,
                dict(ids_by_entity),
                settings=settings,
                limits=limits,
                retry=retry,
            )
            import_run.validate(engine, extracted)
            loaded = import_run.load(engine, extracted, now=done_at)
            result.calls += extracted["calls"]
            result.connections[str(connection_id)] = {
                "records": {k: v["records"] for k, v in extracted["entities"].items()},
                "status": loaded["status"],
            }
        with engine.begin() as conn:
            events.mark(conn, [e.id for e in batch if e.id not in own], "done", done_at, run_id)
            events.mark(conn, sorted(own), "done", done_at, run_id, "our own push coming back: not re-read")
    with engine.begin() as conn:
        for reason, ids in ignored.items():
            events.mark(conn, ids, "ignored", now or utcnow(), run_id, reason)
            result.ignored += len(ids)
    log.info(
        "webhook import %s: %d events, %d ignored, %d own writes, %d calls",
        run_id, result.events, result.ignored, result.echoes, result.calls,
    )  # fmt: skip
    return result
