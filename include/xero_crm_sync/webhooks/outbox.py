"""CRM edits to Xero within seconds: the change outbox, drained through the push's own diff.

Database triggers (sql/migrations/0261_crm_change_outbox.*.sql) queue a `crm_change_outbox` row in the same
transaction as any insert of, or change to a pushed field of, a customer (sales_ledger) or product; whatever
writes the CRM (the CRM application, a script) cannot skip them. The import's load alone is `muted`: what it
writes is what Xero holds (the echo rule: xero_crm_sync/echo.py), so it queues nothing (a first sync of 100,000
contacts queued ~210,000 rows that no push needed, and every poll re-checked them). `CrmChangeTrigger` in the
triggerer fires on pending rows whose record still differs from what was last pushed or what Xero holds, so
even a change the import made outside its load would never start a run. The xero_crm_changes DAG then calls
`drain`, which runs `push_customers` / `push_products` of the outbox's companies: the same diff by hash, the
same matching before creating, the same template ledger, batches of 50, so a burst of edits costs
ceil(changed / 50) calls per record type. The routine xero_push stays the safety net.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, text

from xero_crm_sync import db
from xero_crm_sync.connections import ConnectionStore, utcnow
from xero_crm_sync.settings import Settings

log = logging.getLogger(__name__)

# Pending changes that still need a push: a new record, or pushed fields that differ from the last push and from
# what Xero holds as the import's mirror shows it (the echo rule's hashes, sql/views/): an import's own write
# equals Xero's record, so it never counts.
_NEEDS_PUSH = """
SELECT COUNT(DISTINCT o.record_type || ':' || CAST(o.record_id AS TEXT)), MAX(o.id) FROM crm_change_outbox o
WHERE o.state = 'pending' AND (
    (o.record_type = 'sales_ledger' AND EXISTS (
        SELECT 1 FROM push_customer_fields f WHERE f.id = o.record_id AND f.do_not_export = FALSE
          AND (f.accounting_code IS NULL OR (f.last_export_hash IS DISTINCT FROM f.fields_hash
               AND NOT EXISTS (SELECT 1 FROM push_customer_mirror m
                               WHERE m.id = f.id AND m.mirror_hash = m.fields_hash)))))
    OR (o.record_type = 'product' AND EXISTS (
        SELECT 1 FROM push_product_fields f WHERE f.id = o.record_id AND f.do_not_export = FALSE
          AND (f.accounting_code IS NULL OR (f.last_export_hash IS DISTINCT FROM f.fields_hash
               AND NOT EXISTS (SELECT 1 FROM push_product_mirror m
                               WHERE m.id = f.id AND m.mirror_hash = m.fields_hash))))))
"""


# Set for the import's load transaction only (migration 0320: the PostgreSQL triggers' WHEN reads it).
_MUTED_SETTING = "xero_crm_sync.outbox_muted"


@contextmanager
def muted(conn: Connection, run_id: str) -> Iterator[None]:
    """The outbox triggers queue nothing for what `conn`'s transaction writes inside this block (the import's load).

    PostgreSQL: a setting local to this transaction (`set_config(..., is_local => true)`) that the triggers' WHEN
    reads, so not even a trigger event is queued; no other session sees it, so a CRM edit committed beside the
    import still queues its row. SQLite (no session settings a trigger can read): a row in
    `crm_change_outbox_muted`, deleted before the block ends so it is never committed; SQLite has one writer at a
    time. Either way the block's end unmutes the rest of the transaction, and a block that raises leaves it to the
    caller's rollback."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT set_config(:name, 'on', true)"), {"name": _MUTED_SETTING})
        yield
        conn.execute(text("SELECT set_config(:name, 'off', true)"), {"name": _MUTED_SETTING})
        return
    token = uuid.uuid4().hex
    conn.execute(
        text(
            "INSERT INTO crm_change_outbox_muted (token, run_id, created_at) VALUES (:token, :run_id, :now)"
        ),
        {"token": token, "run_id": run_id, "now": db.bind_time(utcnow(), conn.dialect.name)},
    )
    yield
    conn.execute(text("DELETE FROM crm_change_outbox_muted WHERE token = :token"), {"token": token})


def pending_summary(conn: Connection) -> tuple[int, int | None]:
    """(records whose changes still need a push, the newest change's id): what the trigger polls."""
    row = conn.execute(text(_NEEDS_PUSH)).one()
    return int(row[0] or 0), (int(row[1]) if row[1] is not None else None)


@dataclass
class DrainResult:
    run_id: str
    changes: int = 0
    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # by connection id: summaries
    calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def drain(engine: Engine, store: ConnectionStore, settings: Settings, run_id: str) -> DrainResult:
    """Push the companies with pending changes (primary connections), then mark those changes done."""
    from xero_crm_sync.push.run import push_customers, push_products
    from xero_crm_sync.xero_access import make_client

    result = DrainResult(run_id)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT MAX(id), operating_company_id, record_type FROM crm_change_outbox WHERE state = 'pending' "
                "GROUP BY operating_company_id, record_type"
            )
        ).all()
    if not rows:
        return result
    newest = max(int(r[0]) for r in rows)
    kinds: dict[int, set[str]] = {}
    for _, company, record_type in rows:
        kinds.setdefault(int(company), set()).add(record_type)
    for info in store.runnable(roles=("primary",)):
        wanted = kinds.get(info.operating_company_id)
        if not wanted:
            continue
        client = make_client(store, info, settings)
        summaries = {}
        if "sales_ledger" in wanted:
            summaries["customers"] = push_customers(engine, client, info, run_id).as_dict()
        if "product" in wanted:
            summaries["products"] = push_products(engine, client, info, run_id).as_dict()
        result.pushed[str(info.id)] = summaries
        result.calls += client.stats.calls
    with engine.begin() as conn:
        result.changes = conn.execute(
            text(
                "UPDATE crm_change_outbox SET state = 'done', processed_at = :now, run_id = :run "
                "WHERE state = 'pending' AND id <= :newest"
            ),
            {"now": db.bind_time(utcnow(), conn.dialect.name), "run": run_id, "newest": newest},
        ).rowcount
    log.info("CRM changes %s: %d changes, %d calls", run_id, result.changes, result.calls)
    return result
