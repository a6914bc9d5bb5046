"""The push's database edge: batches persisted before they are sent, outcomes applied, history and errors (P8).

- `export_batch` + `export_queue`: a batch (request body, Idempotency-Key, members) is committed *before* the
  request goes out; its members are `in_progress` in the export queue (the import leaves such records alone).
  After Xero answers, the outcomes are applied in one transaction and the batch is `done`. A batch left `pending`
  by a crash or a stop is resent first by the next run, with the same key and body.
- `sync_history`: one 'export' row per record created, updated or linked (done).
- `sync_error`: one row per record and problem, with Xero's message, the element sent and what to do (unresolved
  errors); resolved automatically when the record is later pushed successfully.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from xero_crm_sync import db, sync_errors
from xero_crm_sync.push.batches import batch_key, canonical_json

RETRY_ACTION = (
    "Correct the record in the CRM (any change to a pushed field sends it again), or set this error's status "
    "to 'retrying' to resend it unchanged."
)


def db_time(value: datetime, conn: Connection) -> Any:
    """A timestamp bound for this connection's database (see `db.bind_time`)."""
    return db.bind_time(value, conn.dialect.name)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)


@dataclass
class Member:
    """One record in a batch: which record, create or update, the hash of what is sent, the element."""

    record_id: int
    operation: str  # 'create' | 'update'
    fields_hash: str
    element: dict[str, Any]
    label: str = ""  # how errors name the record ("customer 'Acme Ltd'")


@dataclass
class Batch:
    id: int
    connection_id: int
    record_type: str
    method: str
    path: str
    collection: str
    idempotency_key: str
    members: list[Member] = field(default_factory=list)

    @property
    def elements(self) -> list[dict[str, Any]]:
        return [m.element for m in self.members]


def open_batch(
    conn: Connection,
    *,
    connection_id: int,
    record_type: str,
    method: str,
    path: str,
    collection: str,
    members: Sequence[Member],
    run_id: str,
    now: datetime,
) -> Batch:
    """Persist a batch and enqueue its members (in_progress) before anything is sent."""
    body = {collection: [m.element for m in members]}
    stored = {"members": [_member_dict(m) for m in members], "body": body}
    batch_id = conn.execute(
        text(
            "INSERT INTO export_batch (connection_id, record_type, method, path, collection, body, state, run_id, "
            "created_at) VALUES (:c, :t, :m, :p, :coll, :body, 'pending', :run, :now) RETURNING id"
        ),
        {
            "c": connection_id,
            "t": record_type,
            "m": method,
            "p": path,
            "coll": collection,
            "body": canonical_json(stored),
            "run": run_id,
            "now": db_time(now, conn),
        },
    ).scalar_one()
    key = batch_key(record_type, connection_id, int(batch_id), body)
    conn.execute(
        text("UPDATE export_batch SET idempotency_key = :k WHERE id = :id"), {"k": key, "id": batch_id}
    )
    conn.execute(
        text(
            "INSERT INTO export_queue (connection_id, record_type, record_id, operation, fields_hash, "
            "idempotency_key, batch_id, state, attempts, payload, enqueued_at, started_at) VALUES (:c, :t, :r, :op, "
            ":h, :k, :b, 'in_progress', 0, :payload, :now, :now)"
        ),
        [
            {
                "c": connection_id,
                "t": record_type,
                "r": m.record_id,
                "op": m.operation,
                "h": m.fields_hash,
                "k": f"{key}#{position}",
                "b": str(batch_id),
                "payload": canonical_json(m.element),
                "now": db_time(now, conn),
            }
            for position, m in enumerate(members)
        ],
    )
    return Batch(int(batch_id), connection_id, record_type, method, path, collection, key, list(members))


def _member_dict(member: Member) -> dict[str, Any]:
    return {
        "record_id": member.record_id,
        "operation": member.operation,
        "fields_hash": member.fields_hash,
        "label": member.label,
    }


def unfinished_batches(conn: Connection, connection_id: int, record_type: str) -> list[Batch]:
    """Batches persisted but not known to be applied (a crash, a stop or a lost answer), oldest first."""
    rows = conn.execute(
        text(
            "SELECT id, method, path, collection, idempotency_key, body FROM export_batch "
            "WHERE connection_id = :c AND record_type = :t AND state = 'pending' ORDER BY id"
        ),
        {"c": connection_id, "t": record_type},
    ).all()
    batches = []
    for row in rows:
        stored = _json_value(row.body)
        elements = stored["body"][row.collection]
        members = [
            Member(m["record_id"], m["operation"], m["fields_hash"], element, m.get("label", ""))
            for m, element in zip(stored["members"], elements, strict=True)
        ]
        batches.append(
            Batch(
                row.id,
                connection_id,
                record_type,
                row.method,
                row.path,
                row.collection,
                row.idempotency_key,
                members,
            )
        )
    return batches


def mark_sent(conn: Connection, batch: Batch, now: datetime) -> None:
    conn.execute(
        text("UPDATE export_batch SET attempts = attempts + 1, sent_at = :now WHERE id = :id"),
        {"now": db_time(now, conn), "id": batch.id},
    )
    conn.execute(
        text("UPDATE export_queue SET attempts = attempts + 1 WHERE batch_id = :b"),
        {"b": str(batch.id)},
    )


def close_batch(conn: Connection, batch: Batch, state: str, now: datetime, error: str | None = None) -> None:
    conn.execute(
        text("UPDATE export_batch SET state = :s, finished_at = :now, error = :e WHERE id = :id"),
        {"s": state, "now": db_time(now, conn), "e": error, "id": batch.id},
    )


def finish_member(
    conn: Connection, batch: Batch, position: int, state: str, now: datetime, error: str | None = None
) -> None:
    conn.execute(
        text(
            "UPDATE export_queue SET state = :s, finished_at = :now, last_error = :e "
            "WHERE batch_id = :b AND idempotency_key = :k"
        ),
        {
            "s": state,
            "now": db_time(now, conn),
            "e": error,
            "b": str(batch.id),
            "k": f"{batch.idempotency_key}#{position}",
        },
    )


# --- records ---------------------------------------------------------------------------------------------------

_LINKED_ELSEWHERE = {
    "sales_ledger": "SELECT id FROM sales_ledger WHERE operating_company_id = :oc AND accounting_code = :x AND id <> :id",
    "product": "SELECT id FROM product WHERE operating_company_id = :oc AND accounting_code = :x AND id <> :id",
}
_SUCCESS = {
    "sales_ledger": (
        "UPDATE sales_ledger SET accounting_code = :x, xero_contact_number = COALESCE(:number, xero_contact_number), "
        "last_accounting_export_date = :now, last_export_hash = :h, export_rejected_hash = NULL WHERE id = :id"
    ),
    "product": (
        "UPDATE product SET accounting_code = :x, last_accounting_export_date = :now, last_export_hash = :h, "
        "export_rejected_hash = NULL WHERE id = :id"
    ),
}
_REJECTED = {
    "sales_ledger": "UPDATE sales_ledger SET export_rejected_hash = :h WHERE id = :id",
    "product": "UPDATE product SET export_rejected_hash = :h WHERE id = :id",
}
_LINK = {
    "sales_ledger": "UPDATE sales_ledger SET accounting_code = :x WHERE id = :id AND accounting_code IS NULL",
}


def linked_elsewhere(
    conn: Connection, record_type: str, operating_company_id: int, record_id: int, xero_id: str
) -> int | None:
    """The other CRM record of this company already linked to `xero_id` (accounting codes are unique)."""
    return conn.execute(
        text(_LINKED_ELSEWHERE[record_type]), {"oc": operating_company_id, "x": xero_id, "id": record_id}
    ).scalar()


def record_success(
    conn: Connection,
    *,
    connection_id: int,
    record_type: str,
    record_id: int,
    xero_id: str,
    fields_hash: str | None,
    operation: str,
    run_id: str,
    now: datetime,
    contact_number: str | None = None,
) -> None:
    """Store the Xero ID as Accounting Code, the export date and hash; history row; resolve its errors."""
    params: dict[str, Any] = {"x": xero_id, "now": db_time(now, conn), "h": fields_hash, "id": record_id}
    if record_type == "sales_ledger":
        params["number"] = contact_number
    conn.execute(text(_SUCCESS[record_type]), params)
    record_history(conn, connection_id, record_type, record_id, xero_id, operation, run_id, now)
    resolve_errors(conn, connection_id, record_type, record_id, now)


def record_rejected_hash(conn: Connection, record_type: str, record_id: int, fields_hash: str) -> None:
    conn.execute(text(_REJECTED[record_type]), {"h": fields_hash, "id": record_id})


def link_record(conn: Connection, record_type: str, record_id: int, xero_id: str) -> bool:
    """Link an unlinked CRM record to an existing Xero record (P9); False when it was linked meanwhile."""
    return conn.execute(text(_LINK[record_type]), {"x": xero_id, "id": record_id}).rowcount == 1


def record_history(
    conn: Connection,
    connection_id: int,
    record_type: str,
    record_id: int,
    xero_id: str | None,
    operation: str,
    run_id: str,
    now: datetime,
    details: str | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, "
            "at, details) VALUES (:c, 'export', :t, :r, :x, :op, :run, :now, :d) "
            # One row per run and record: a customer linked and then updated in one run shows 'link+update'.
            "ON CONFLICT (run_id, direction, record_type, record_id) DO UPDATE SET xero_id = excluded.xero_id, "
            "operation = CASE WHEN sync_history.operation = excluded.operation THEN excluded.operation "
            "ELSE sync_history.operation || '+' || excluded.operation END, at = excluded.at, "
            "details = COALESCE(excluded.details, sync_history.details)"
        ),
        {
            "c": connection_id,
            "t": record_type,
            "r": record_id,
            "x": xero_id,
            "op": operation,
            "run": run_id,
            "now": db_time(now, conn),
            "d": details,
        },
    )


def record_error(conn: Connection, **kwargs: Any) -> None:
    """An unresolved export error (P8); see `sync_errors.record_error`."""
    sync_errors.record_error(conn, direction="export", **kwargs)


def resolve_errors(
    conn: Connection,
    connection_id: int,
    record_type: str,
    record_id: int,
    now: datetime,
    *,
    code: str | None = None,
) -> None:
    """The record went through: its open export errors (or only those with `code`) are resolved."""
    sql = (
        "UPDATE sync_error SET status = 'resolved', resolved_at = :now WHERE connection_id = :c "
        "AND direction = 'export' AND record_type = :t AND record_id = :r AND status IN ('open', 'retrying')"
    )
    params: dict[str, Any] = {"now": db_time(now, conn), "c": connection_id, "t": record_type, "r": record_id}
    if code is not None:
        sql += " AND error_code = :code"
        params["code"] = code
    conn.execute(text(sql), params)


def name_holder(conn: Connection, connection_id: int, operating_company_id: int, name: str) -> str:
    """Who holds a contact name in Xero, as far as the CRM (linked customers) or the last import knows:
    " (Xero contact <id>, linked to CRM customer (sales ledger) <id>)", or "" when unknown."""
    linked = conn.execute(
        text(
            "SELECT id, accounting_code FROM sales_ledger WHERE operating_company_id = :oc "
            "AND accounting_code IS NOT NULL AND LOWER(name) = LOWER(:name) ORDER BY id"
        ),
        {"oc": operating_company_id, "name": name},
    ).first()
    if linked is not None:
        return f" (Xero contact {linked.accounting_code}, linked to CRM customer (sales ledger) {linked.id})"
    mirrored = conn.execute(
        text(
            "SELECT xero_id FROM val_contacts WHERE connection_id = :c AND LOWER(name) = LOWER(:name) "
            "AND contact_status = 'ACTIVE'"
        ),
        {"c": connection_id, "name": name},
    ).first()
    return f" (Xero contact {mirrored.xero_id})" if mirrored is not None else ""
