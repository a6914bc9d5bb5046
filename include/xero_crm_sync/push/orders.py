"""Confirmed orders -> Draft ACCREC invoices, voided orders -> deleted drafts (P6, P7), through the order outbox.

The CRM side: `confirm_order(conn, order_id)` and `void_order(conn, order_id)` change the order's status and write
an `order_outbox` event *in the caller's transaction*, so an event exists exactly when the change committed. The
`OrderOutboxTrigger` (plugins/xero_triggers.py) sees pending events within about a second and the
xero_order_invoices DAG calls `process_outbox`, which handles events in id order:

- confirmed: push the customer first when it is not in Xero yet (and any product on its lines not in Xero yet),
  then PUT one Draft invoice numbered by us (`payloads.invoice_number`: the order number) with an Idempotency-Key
  derived from the order and the event, stored on the event before sending. Xero keeps a key only 6 minutes, so a
  retry of an attempt whose outcome is unknown (a lost answer, a killed task, hours later) first looks the invoice
  up by its number and adopts it; only when Xero has none is it sent again (and Xero refuses a second invoice
  with the same number). An order that already has its InvoiceID is never sent again: one invoice per order.
- voided: while the invoice is DRAFT in Xero it is deleted; otherwise an unresolved error tells the accounts team
  (an authorised invoice is theirs to void or credit). A retried delete that finds the invoice already DELETED
  after our own attempt began records the same outcome as an uninterrupted run. The invoice's later life flows back through the import.

Rejections by Xero end the event as 'failed' with an unresolved error; confirming the order again (after fixing
it) queues a new attempt with a new key. Transport failures and limits leave the event pending: the task fails,
Airflow retries it, and the same key goes out again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from xero_crm_sync import xero_access
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore, utcnow
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.oauth import ReconnectRequired
from xero_crm_sync.push import ledger, payloads, results, sqlfiles
from xero_crm_sync.push.batches import canonical_json, order_key
from xero_crm_sync.push.ledger import db_time
from xero_crm_sync.push.matching import where_literal
from xero_crm_sync.push.run import push_customers, push_products
from xero_crm_sync.settings import Settings
from xero_crm_sync.xero_client import (
    DailyLimitReached,
    RetryPolicy,
    XeroAuthError,
    XeroClient,
    XeroError,
    XeroForbidden,
    XeroNotFound,
    XeroRateLimited,
    XeroUnavailable,
)

log = logging.getLogger(__name__)

# Not Xero's verdict on the order: the event stays pending (a 403 is a missing scope or a disconnected
# organisation, never the order's fault; it must not fail the event).
_TRANSIENT = (DailyLimitReached, XeroAuthError, XeroForbidden, XeroUnavailable, XeroRateLimited)
# Orders want low latency: a few quick retries in the task, then the task fails and Airflow retries it (with the
# same Idempotency-Key), instead of one task sleeping through the client's full backoff.
ORDER_RETRY = RetryPolicy(max_attempts=3, backoff_max=5.0)


class OrderStateError(ValueError):
    """The order cannot make that transition (e.g. confirming a voided order)."""


# --- the CRM side: write the status change and its event together -------------------------------------------


def _lock_order(conn: Connection, order_id: int) -> Any:
    sql = "SELECT id, operating_company_id, status, xero_invoice_id FROM sales_order WHERE id = :id"
    if conn.dialect.name == "postgresql":
        sql += " FOR UPDATE"
    row = conn.execute(text(sql), {"id": order_id}).first()
    if row is None:
        raise LookupError(f"no sales order {order_id}")
    return row


def _add_event(conn: Connection, order: Any, event: str, now: datetime) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO order_outbox (operating_company_id, sales_order_id, event, state, created_at) "
                "VALUES (:oc, :o, :e, 'pending', :now) RETURNING id"
            ),
            {"oc": order.operating_company_id, "o": order.id, "e": event, "now": db_time(now, conn)},
        ).scalar_one()
    )


def confirm_order(conn: Connection, order_id: int, *, now: datetime | None = None) -> int | None:
    """Confirm a quote (P6) and queue its Draft invoice, in the caller's transaction; returns the event id.

    Confirming an order that is already confirmed queues it again only when it has no Xero invoice and no event
    waiting (the way to retry after fixing what Xero rejected); otherwise it does nothing and returns None.
    """
    now = now or utcnow()
    order = _lock_order(conn, order_id)
    if order.status == "void":
        raise OrderStateError(f"sales order {order_id} is void; a voided order cannot be confirmed")
    if order.status == "confirmed":
        waiting = conn.execute(
            text(
                "SELECT 1 FROM order_outbox WHERE sales_order_id = :o AND event = 'confirmed' AND state = 'pending'"
            ),
            {"o": order_id},
        ).first()
        if order.xero_invoice_id or waiting:
            return None
    else:
        conn.execute(
            text(
                "UPDATE sales_order SET status = 'confirmed', confirmed_at = :now, updated_at = :now WHERE id = :id"
            ),
            {"now": db_time(now, conn), "id": order_id},
        )
    return _add_event(conn, order, "confirmed", now)


def void_order(conn: Connection, order_id: int, *, now: datetime | None = None) -> int | None:
    """Void an order (P7) in the caller's transaction. A confirmed order queues the withdrawal of its draft
    invoice (returns the event id); a quote never reached Xero (None)."""
    now = now or utcnow()
    order = _lock_order(conn, order_id)
    if order.status == "void":
        return None
    conn.execute(
        text("UPDATE sales_order SET status = 'void', voided_at = :now, updated_at = :now WHERE id = :id"),
        {"now": db_time(now, conn), "id": order_id},
    )
    if order.status != "confirmed":
        return None
    return _add_event(conn, order, "voided", now)


def pending_summary(conn: Connection) -> tuple[int, int | None]:
    """(how many events wait, the newest one's id): what the event trigger polls."""
    row = sqlfiles.fetch(conn, sqlfiles.OUTBOX_PENDING)[0]
    return int(row.pending or 0), (int(row.max_id) if row.max_id is not None else None)


# --- processing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    operating_company_id: int
    sales_order_id: int
    event: str
    idempotency_key: str | None


@dataclass
class OutboxSummary:
    events: int = 0
    invoices_created: int = 0
    invoices_deleted: int = 0
    done_without_call: int = 0
    failed: int = 0
    waiting: int = 0  # no active primary connection for the company
    calls: int = 0
    stopped: str | None = None  # the daily limit: the remaining events wait for a later run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InvoiceOptions:
    delivery_account_code: str | None = None
    delivery_tax_type: str | None = None


def pending_events(conn: Connection) -> list[OutboxEvent]:
    rows = conn.execute(
        text(
            "SELECT id, operating_company_id, sales_order_id, event, idempotency_key FROM order_outbox "
            "WHERE state = 'pending' ORDER BY id"
        )
    ).all()
    return [OutboxEvent(*row) for row in rows]


def _finish(
    conn: Connection,
    event: OutboxEvent,
    state: str,
    now: datetime,
    *,
    result: str | None = None,
    error: str | None = None,
) -> None:
    conn.execute(
        text(
            "UPDATE order_outbox SET state = :s, result = :r, last_error = :e, processed_at = :now WHERE id = :id"
        ),
        {"s": state, "r": result, "e": error, "now": db_time(now, conn), "id": event.id},
    )


def _begin_attempt(
    conn: Connection, info: ConnectionInfo, event: OutboxEvent, key: str, element: Any
) -> None:
    """Store the key on the event (before sending) and show the write in the export queue."""
    now = db_time(utcnow(), conn)
    conn.execute(
        text("UPDATE order_outbox SET idempotency_key = :k, attempts = attempts + 1 WHERE id = :id"),
        {"k": key, "id": event.id},
    )
    conn.execute(
        text(
            "INSERT INTO export_queue (connection_id, record_type, record_id, operation, idempotency_key, state, "
            "attempts, payload, enqueued_at, started_at) VALUES (:c, 'sales_order', :r, :op, :k, 'in_progress', 0, "
            ":payload, :now, :now) ON CONFLICT (idempotency_key) DO NOTHING"
        ),
        {
            "c": info.id,
            "r": event.sales_order_id,
            "op": "create_invoice" if event.event == "confirmed" else "delete_invoice",
            "k": key,
            "payload": canonical_json(element),
            "now": now,
        },
    )
    conn.execute(
        text("UPDATE export_queue SET attempts = attempts + 1 WHERE idempotency_key = :k"), {"k": key}
    )


def _end_attempt(conn: Connection, key: str, state: str, error: str | None = None) -> None:
    conn.execute(
        text(
            "UPDATE export_queue SET state = :s, last_error = :e, finished_at = :now WHERE idempotency_key = :k"
        ),
        {"s": state, "e": error, "now": db_time(utcnow(), conn), "k": key},
    )


def _fail(
    engine: Engine,
    info: ConnectionInfo,
    event: OutboxEvent,
    run_id: str,
    code: str,
    message: str,
    action: str,
    *,
    xero_message: str | None = None,
    xero_id: str | None = None,
    payload: Any = None,
    key: str | None = None,
) -> str:
    now = utcnow()
    with engine.begin() as conn:
        ledger.record_error(
            conn,
            connection_id=info.id,
            record_type="sales_order",
            record_id=event.sales_order_id,
            code=code,
            message=message,
            action=action,
            run_id=run_id,
            now=now,
            xero_message=xero_message,
            xero_id=xero_id,
            payload=payload,
        )
        if key:
            _end_attempt(conn, key, "failed", xero_message or message)
        _finish(conn, event, "failed", now, error=message)
    return "failed"


def _done(engine: Engine, event: OutboxEvent, result: str) -> str:
    with engine.begin() as conn:
        _finish(conn, event, "done", utcnow(), result=result)
    return "skipped"


def _fingerprint(order: Any) -> str:
    return f"{order.order_number}|{order.created_at}"


def _read_order(engine: Engine, order_id: int) -> tuple[Any, list[Any]]:
    with engine.connect() as conn:
        rows = sqlfiles.fetch(conn, sqlfiles.ORDER_FOR_INVOICE, {"order_id": order_id})
        lines = sqlfiles.fetch(conn, sqlfiles.ORDER_LINES_FOR_INVOICE, {"order_id": order_id})
    return (rows[0] if rows else None), lines


# A push batch is answered in seconds; a longer wait means a batch left by a killed push, which this run resumes.
IN_FLIGHT_WAIT_SECONDS = 20.0

_IN_FLIGHT = text(
    "SELECT COUNT(*) FROM export_in_flight q WHERE (q.record_type = 'sales_ledger' AND q.record_id = :ledger) "
    "OR (q.record_type = 'product' AND q.record_id IN "
    "(SELECT l.product_id FROM sales_order_line l WHERE l.sales_order_id = :order))"
)


def _others_push_landed(engine: Engine, order: Any, timeout: float | None = None) -> bool:
    """Wait until no push beside this one (xero_push, xero_crm_changes) is sending the order's customer or products.

    Such records are left out of this push's diff (the batch that holds them owns them), so pushing them here would
    do nothing and the order would fail as if its customer could not be created. True once none is in flight.
    The bound (`IN_FLIGHT_WAIT_SECONDS`) is read at each call, so a test can shorten it."""
    deadline = time.monotonic() + (IN_FLIGHT_WAIT_SECONDS if timeout is None else timeout)
    while True:
        with engine.connect() as conn:
            busy = conn.execute(_IN_FLIGHT, {"ledger": order.sales_ledger_id, "order": order.id}).scalar()
        if not busy:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _unless_stopped(summary: Any) -> None:
    """A push that stopped on the daily limit is no verdict on the order: stop, the event waits."""
    if summary.stopped:
        raise DailyLimitReached(summary.stopped, problem="day", retry_after=0.0)


def create_invoice(
    engine: Engine,
    client: XeroClient,
    info: ConnectionInfo,
    event: OutboxEvent,
    run_id: str,
    options: InvoiceOptions,
) -> str:
    """Process one 'confirmed' event. Returns 'created', 'skipped', 'failed', or 'waiting' (left pending: another
    push is still sending the order's customer or products)."""
    order, lines = _read_order(engine, event.sales_order_id)
    if order is None:
        return _fail(engine, info, event, run_id, "order_missing", f"sales order {event.sales_order_id} no longer "
                     "exists", "Nothing to do in Xero; dismiss this error.")  # fmt: skip
    if order.xero_invoice_id:
        return _done(engine, event, f"already invoiced as {order.xero_invoice_id}")
    if order.status != "confirmed":
        return _done(engine, event, f"order is {order.status} now; no invoice sent")
    if order.do_not_export:
        return _done(engine, event, "order is flagged do not export; no invoice sent")
    label = f"order {order.order_number or order.id}"
    if order.sales_ledger_id is None:
        return _fail(engine, info, event, run_id, "no_customer", f"{label} has no customer account",
                     "Set the order's customer (sales ledger), then confirm it again.")  # fmt: skip
    if order.customer_do_not_export:
        return _fail(
            engine, info, event, run_id, "customer_do_not_export",
            f"{label}: its customer '{order.customer_name}' is flagged do not export, so no invoice can be created",
            "Clear the customer's do-not-export flag (or invoice it by hand in Xero), then confirm it again.",
        )  # fmt: skip
    # The order's customer and products must be in Xero first. A push beside this one (xero_push,
    # xero_crm_changes) may be sending them right now; its batch owns them, so this push would skip them: wait
    # for it to land (bounded) and look again, at most twice, before calling the order stuck.
    for _ in range(2):
        if order.contact_id is not None and all(line.product_in_xero for line in lines):
            break
        _others_push_landed(engine, order)
        order, lines = _read_order(engine, event.sales_order_id)
        if order.contact_id is None:
            _unless_stopped(push_customers(engine, client, info, run_id, only_id=order.sales_ledger_id))
        if any(not line.product_in_xero for line in lines):
            _unless_stopped(push_products(engine, client, info, run_id, order_id=order.id))
        order, lines = _read_order(engine, event.sales_order_id)
    if order.contact_id is None and not _others_push_landed(engine, order, timeout=0):
        log.warning("%s waits: another push is still sending its customer to Xero", label)
        return "waiting"
    if order.contact_id is None:
        return _fail(
            engine, info, event, run_id, "customer_not_in_xero",
            f"{label}: its customer '{order.customer_name}' could not be created or linked in Xero, so no "
            "invoice was created",
            "See the customer's own unresolved error; once it is in Xero, confirm the order again.",
        )  # fmt: skip
    header = payloads.OrderHeader(
        id=order.id,
        order_number=order.order_number,
        contact_id=order.contact_id,
        currency_code=order.currency_code,
        customer_reference=order.customer_reference,
        delivery_charge=order.delivery_charge,
        # Dated the day the order was confirmed, not the day Xero received it (a spent daily limit or an outage
        # can delay the invoice past midnight).
        order_date=order.order_date or order.confirmed_at,
    )
    element = payloads.invoice_element(
        header,
        [payloads.OrderLine.from_row(line) for line in lines],
        delivery_account_code=options.delivery_account_code,
        delivery_tax_type=options.delivery_tax_type,
    )
    key = event.idempotency_key or order_key("invoice", order.id, event.id, _fingerprint(order))
    if event.idempotency_key is not None:
        # An earlier attempt sent (or may have sent) this invoice and its answer was lost. Its key may have expired
        # (Xero keeps one 6 minutes), so look for the invoice by the number we gave it before sending again.
        found = find_invoice(client, element["InvoiceNumber"])
        if found is not None:
            return _adopt_or_refuse(engine, info, event, order, key, found, element, run_id, label)
    with engine.begin() as conn:
        _begin_attempt(conn, info, event, key, element)
    crash_point("orders.key_saved")
    try:
        response = client.request(
            "PUT",
            "Invoices",
            params={"summarizeErrors": "false", "unitdp": "4"},
            json={"Invoices": [element]},
            idempotency_key=key,
        ).json()
        outcome = results.element_outcomes(response, "Invoices", "InvoiceID", [element])[0]
        crash_point("orders.answered")  # the invoice exists in Xero; the CRM does not know it yet
    except _TRANSIENT:
        raise
    except XeroError as exc:
        outcome = results.ElementOutcome(0, False, messages=(str(exc),))
    if not outcome.ok and any(_NUMBER_TAKEN in m for m in outcome.messages):
        # The number is taken: by this order's own invoice (a lost answer raced this send) or by another one.
        found = find_invoice(client, element["InvoiceNumber"])
        if found is not None:
            return _adopt_or_refuse(engine, info, event, order, key, found, element, run_id, label)
    if not outcome.ok:
        return _fail(
            engine, info, event, run_id, "invoice_rejected",
            f"Xero rejected the Draft invoice for {label}: {outcome.message}",
            "Correct the order (or its customer/products) in the CRM, then confirm it again.",
            xero_message=outcome.message, payload=element, key=key,
        )  # fmt: skip
    _record_invoice(
        engine, info, event, order, key, outcome.xero_id, outcome.answer.get("InvoiceNumber"), run_id
    )
    return "created"


_NUMBER_TAKEN = "must be unique"  # Xero's "Invoice # must be unique."


def find_invoice(client: XeroClient, number: str) -> dict[str, Any] | None:
    """The ACCREC invoice numbered `number` in Xero, if any (one `where` query)."""
    where = f'Type=="ACCREC" AND InvoiceNumber=={where_literal(number)}'
    invoices = client.get_json("Invoices", params={"where": where, "page": 1}).get("Invoices") or []
    exact = [i for i in invoices if str(i.get("InvoiceNumber", "")).casefold() == number.casefold()]
    return exact[0] if exact else None


def _adopt_or_refuse(
    engine: Engine,
    info: ConnectionInfo,
    event: OutboxEvent,
    order: Any,
    key: str,
    found: dict[str, Any],
    element: dict[str, Any],
    run_id: str,
    label: str,
) -> str:
    """Adopt the invoice Xero already has under this order's number when it is this order's (same customer),
    recording exactly what a send would have; refuse to guess when it belongs to someone else."""
    number = found.get("InvoiceNumber")
    if (found.get("Contact") or {}).get("ContactID") == element["Contact"]["ContactID"]:
        log.warning("%s: adopting invoice %s that an earlier attempt created in Xero", label, number)
        _record_invoice(engine, info, event, order, key, str(found["InvoiceID"]), number, run_id)
        return "created"
    return _fail(
        engine, info, event, run_id, "invoice_number_taken",
        f"{label}: Xero already has invoice {number} for another contact, so no invoice was created",
        "Give the order a number no Xero invoice uses (or remove that invoice in Xero), then confirm it again.",
        xero_id=str(found.get("InvoiceID")), payload=element,
    )  # fmt: skip


def _record_invoice(
    engine: Engine,
    info: ConnectionInfo,
    event: OutboxEvent,
    order: Any,
    key: str,
    xero_id: str | None,
    number: str | None,
    run_id: str,
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE sales_order SET xero_invoice_id = :x, last_accounting_export_date = :now "
                "WHERE id = :id AND xero_invoice_id IS NULL"
            ),
            {"x": xero_id, "now": db_time(now, conn), "id": order.id},
        )
        ledger.record_history(
            conn, info.id, "sales_order", order.id, xero_id, "create_invoice", run_id, now,
            f"Draft invoice {number}" if number else "Draft invoice",
        )  # fmt: skip
        ledger.resolve_errors(conn, info.id, "sales_order", order.id, now)
        _end_attempt(conn, key, "done")
        _finish(conn, event, "done", now, result=f"created Draft invoice {number or ''} {xero_id}".strip())


def delete_draft(
    engine: Engine, client: XeroClient, info: ConnectionInfo, event: OutboxEvent, run_id: str
) -> str:
    """Process one 'voided' event (P7). Returns 'deleted', 'skipped' or 'failed'."""
    order, _lines = _read_order(engine, event.sales_order_id)
    if order is None or not order.xero_invoice_id:
        return _done(engine, event, "no invoice in Xero; nothing to withdraw")
    invoice_id = order.xero_invoice_id
    label = f"order {order.order_number or order.id}"
    try:
        invoices = client.get_json(f"Invoices/{invoice_id}").get("Invoices") or []
    except XeroNotFound:
        return _done(engine, event, f"invoice {invoice_id} is not in Xero")
    invoice = invoices[0] if invoices else {}
    status = invoice.get("Status")
    number = invoice.get("InvoiceNumber") or invoice_id
    if status == "DELETED":
        if event.idempotency_key is not None:
            # Our own delete of an earlier attempt reached Xero and its answer was lost (a crash, a reset): the
            # outcome is the one an uninterrupted run records, not "someone else deleted it".
            _record_deleted(engine, info, event, order, event.idempotency_key, invoice_id, number, run_id)
            return "deleted"
        return _done(engine, event, f"invoice {number} was already deleted in Xero")
    if status != "DRAFT":
        return _fail(
            engine, info, event, run_id, "invoice_not_draft",
            f"{label} was voided in the CRM, but its Xero invoice {number} is {status}: only a draft is withdrawn "
            "automatically",
            f"Accounts team: void or credit invoice {number} in Xero if the sale is cancelled (the import then "
            "marks it 'D').",
            xero_id=invoice_id,
        )  # fmt: skip
    element = {"InvoiceID": invoice_id, "Status": "DELETED"}
    key = event.idempotency_key or order_key("delete", order.id, event.id, _fingerprint(order))
    with engine.begin() as conn:
        _begin_attempt(conn, info, event, key, element)
    crash_point("orders.key_saved")
    try:
        client.request("POST", f"Invoices/{invoice_id}", json={"Invoices": [element]}, idempotency_key=key)
        crash_point("orders.answered")
    except _TRANSIENT:
        raise
    except XeroError as exc:
        return _fail(
            engine, info, event, run_id, "invoice_not_draft",
            f"{label} was voided in the CRM, but Xero refused to delete invoice {number}: {exc}",
            f"Accounts team: void or credit invoice {number} in Xero if the sale is cancelled.",
            xero_message=str(exc), xero_id=invoice_id, payload=element, key=key,
        )  # fmt: skip
    _record_deleted(engine, info, event, order, key, invoice_id, number, run_id)
    return "deleted"


def _record_deleted(
    engine: Engine,
    info: ConnectionInfo,
    event: OutboxEvent,
    order: Any,
    key: str,
    invoice_id: str,
    number: str,
    run_id: str,
) -> None:
    now = utcnow()
    with engine.begin() as conn:
        ledger.record_history(
            conn, info.id, "sales_order", order.id, invoice_id, "delete_invoice", run_id, now,
            f"Draft invoice {number} deleted (order voided)",
        )  # fmt: skip
        ledger.resolve_errors(conn, info.id, "sales_order", order.id, now)
        _end_attempt(conn, key, "done")
        _finish(conn, event, "done", now, result=f"deleted Draft invoice {number}")


def primary_connections(store: ConnectionStore) -> dict[int, ConnectionInfo]:
    """Active primary connection per operating company: pushes go to the primary organisation only (C2)."""
    return {
        info.operating_company_id: info
        for info in store.list()
        if info.role == "primary" and info.status == "active"
    }


def process_outbox(
    engine: Engine,
    store: ConnectionStore,
    settings: Settings,
    run_id: str,
    *,
    options: InvoiceOptions | None = None,
    retry: RetryPolicy = ORDER_RETRY,
) -> OutboxSummary:
    """Process every pending outbox event in id order (per company, through its primary connection)."""
    options = options or InvoiceOptions()
    summary = OutboxSummary()
    with engine.connect() as conn:
        events = pending_events(conn)
    connections = primary_connections(store)
    clients: dict[int, XeroClient] = {}
    try:
        for event in events:
            info = connections.get(event.operating_company_id)
            if info is None:
                summary.waiting += 1
                log.warning(
                    "outbox event %s (order %s) waits: operating company %s has no active primary Xero connection",
                    event.id,
                    event.sales_order_id,
                    event.operating_company_id,
                )
                continue
            client = clients.get(info.id)
            if client is None:
                client = clients[info.id] = xero_access.make_client(store, info, settings, retry=retry)
            summary.events += 1
            try:
                if event.event == "confirmed":
                    outcome = create_invoice(engine, client, info, event, run_id, options)
                else:
                    outcome = delete_draft(engine, client, info, event, run_id)
            except DailyLimitReached as exc:
                # Stop cleanly: this event (its key kept) and the rest wait for a run after the limit resets.
                summary.stopped = str(exc)
                log.error("processing the order outbox stopped: %s", exc)
                break
            except (ReconnectRequired, XeroForbidden) as exc:
                if isinstance(exc, XeroForbidden) and not xero_access.organisation_gone(
                    store, info, settings
                ):
                    raise  # a missing scope: the task fails and says so; the event waits
                # Access lost (the grant revoked, or the organisation disconnected in Xero; the connection is
                # flagged now): this company's events wait for a reconnect, the others go on.
                connections.pop(event.operating_company_id, None)
                summary.waiting += 1
                log.error("order outbox event %s waits: %s", event.id, exc)
                continue
            if outcome == "waiting":
                # Left pending, and so are this company's later events (they stay in order): the next run (the
                # task's retry, the next trigger or the five-minute sweep) takes them.
                connections.pop(event.operating_company_id, None)
                summary.events -= 1
                summary.waiting += 1
                continue
            if outcome == "created":
                summary.invoices_created += 1
            elif outcome == "deleted":
                summary.invoices_deleted += 1
            elif outcome == "failed":
                summary.failed += 1
            else:
                summary.done_without_call += 1
            log.info(
                "outbox event %s (%s, order %s): %s", event.id, event.event, event.sales_order_id, outcome
            )
            crash_point("orders.event_done")
    finally:
        summary.calls = sum(c.stats.calls for c in clients.values())
    return summary
