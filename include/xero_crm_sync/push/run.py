"""One push of customers (P1, P2, P9) or products (P3) to one Xero organisation, step by step.

1. resume: batches an earlier run persisted but did not finish are resent first, with the same Idempotency-Key
   and body (Xero answers a repeated key with its first answer and writes nothing), and their answers applied;
2. diff (SQL): records new or changed since their last successful push, after adopting what the last import
   shows Xero already has (an import never causes a push back);
3. customers only: match new customers to existing Xero contacts (mirror first, then one `where` query per 25)
   and link them instead of creating (P9); read the template ledger once if anything is still to be created (S8);
4. send: elements in batches of at most 50 (`summarizeErrors=false`), each batch committed before it is sent;
   each answer applied per element: the Xero ID becomes the Accounting Code with the export date, a rejection
   becomes an unresolved error with Xero's message and the element sent, the others succeed.

A spent daily limit stops the run cleanly (`stopped`); unsent records are still "changed" next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from xero_crm_sync import echo, runs, scheduling, xero_access
from xero_crm_sync.company_settings import template_contact_id
from xero_crm_sync.connections import ConnectionInfo, ConnectionStore, skip_message, utcnow
from xero_crm_sync.crashpoints import crash_point
from xero_crm_sync.oauth import ReconnectRequired
from xero_crm_sync.push import ledger, matching, payloads, results, sqlfiles
from xero_crm_sync.push.batches import chunks
from xero_crm_sync.push.ledger import Batch, Member
from xero_crm_sync.rules import matching as rules
from xero_crm_sync.settings import Settings
from xero_crm_sync.xero_client import (
    DailyLimitReached,
    Limits,
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


@dataclass(frozen=True)
class Target:
    """How one kind of CRM record is written to Xero."""

    record_type: str  # CRM table
    path: str
    collection: str
    id_field: str
    params: tuple[tuple[str, str], ...] = (("summarizeErrors", "false"),)


CONTACTS = Target("sales_ledger", "Contacts", "Contacts", "ContactID")
# unitdp=4: the CRM keeps prices to 4 places; without it Xero rounds unit prices to 2.
ITEMS = Target("product", "Items", "Items", "ItemID", (("summarizeErrors", "false"), ("unitdp", "4")))
TARGETS = {t.record_type: t for t in (CONTACTS, ITEMS)}
TARGET_OF_STEP = {"customers": "sales_ledger", "products": "product"}


@dataclass
class PushSummary:
    connection_id: int
    record_type: str
    changed: int = 0  # records the diff found
    created: int = 0
    updated: int = 0
    linked: int = 0  # new customers linked to an existing Xero contact (P9)
    rejected: int = 0
    resumed_batches: int = 0
    batches: int = 0
    calls: int = 0
    stopped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- sending and applying -----------------------------------------------------------------------------------


def deliver(
    engine: Engine,
    client: XeroClient,
    info: ConnectionInfo,
    batch: Batch,
    summary: PushSummary,
    run_id: str,
    *,
    now: Callable[[], datetime] = utcnow,
) -> None:
    """Send one persisted batch and apply Xero's answer. Transport and limit failures leave it pending."""
    target = TARGETS[batch.record_type]
    with engine.begin() as conn:
        ledger.mark_sent(conn, batch, now())
    try:
        response = client.request(
            batch.method,
            batch.path,
            params=dict(target.params),
            json={batch.collection: batch.elements},
            idempotency_key=batch.idempotency_key,
        ).json()
        crash_point("push.answered")  # Xero wrote the batch; its answer dies with us
    except (DailyLimitReached, XeroAuthError, XeroForbidden, XeroUnavailable, XeroRateLimited):
        # Not Xero's verdict on the records (a 403 is a missing scope or a disconnected organisation): the batch
        # stays pending and is resent with its key once the cause is gone.
        raise
    except XeroError as exc:
        # The request as a whole was refused (e.g. a missing scope): record it on every member, but do not treat
        # their values as rejected, so they go again once the cause is fixed.
        with engine.begin() as conn:
            for position, member in enumerate(batch.members):
                _reject(conn, info, batch, position, member, (str(exc),), run_id, now(), permanent=False)
            ledger.close_batch(conn, batch, "failed", now(), str(exc))
        summary.rejected += len(batch.members)
        return
    outcomes = results.element_outcomes(response, batch.collection, target.id_field, batch.elements)
    with engine.begin() as conn:
        for outcome, member in zip(outcomes, batch.members, strict=True):
            if outcome.ok:
                _succeed(conn, info, batch, outcome, member, summary, run_id, now())
            else:
                _reject(conn, info, batch, outcome.position, member, outcome.messages, run_id, now())
                summary.rejected += 1
        ledger.close_batch(conn, batch, "done", now())
    crash_point("push.applied")


def _succeed(
    conn: Any,
    info: ConnectionInfo,
    batch: Batch,
    outcome: results.ElementOutcome,
    member: Member,
    summary: PushSummary,
    run_id: str,
    now: datetime,
) -> None:
    other = ledger.linked_elsewhere(
        conn, batch.record_type, info.operating_company_id, member.record_id, outcome.xero_id or ""
    )
    if other is not None:
        # Xero matched the element to a record another CRM record is already linked to (a POSTed item code, a
        # contact number): linking both would break "one CRM record per Xero record".
        message = (
            f"Xero saved {member.label} onto {batch.collection[:-1].lower()} {outcome.xero_id}, which CRM record "
            f"{other} is already linked to; this record was not linked."
        )
        ledger.record_error(
            conn,
            connection_id=info.id,
            record_type=batch.record_type,
            record_id=member.record_id,
            code="already_linked",
            message=message,
            action="Give the record its own code/number in the CRM, or merge it with the linked one.",
            run_id=run_id,
            now=now,
            xero_id=outcome.xero_id,
            payload=member.element,
        )
        ledger.record_rejected_hash(conn, batch.record_type, member.record_id, member.fields_hash)
        ledger.finish_member(conn, batch, outcome.position, "failed", now, message)
        summary.rejected += 1
        return
    ledger.record_success(
        conn,
        connection_id=info.id,
        record_type=batch.record_type,
        record_id=member.record_id,
        xero_id=outcome.xero_id or "",
        fields_hash=member.fields_hash,
        operation=member.operation,
        run_id=run_id,
        now=now,
        contact_number=outcome.answer.get("ContactNumber") if batch.record_type == "sales_ledger" else None,
    )
    ledger.finish_member(conn, batch, outcome.position, "done", now)
    if member.operation == "create":
        summary.created += 1
    else:
        summary.updated += 1


def _reject(
    conn: Any,
    info: ConnectionInfo,
    batch: Batch,
    position: int,
    member: Member,
    messages: Sequence[str],
    run_id: str,
    now: datetime,
    *,
    permanent: bool = True,
) -> None:
    xero_message = "; ".join(messages)
    code = "rejected"
    action = ledger.RETRY_ACTION
    message = f"Xero rejected {member.label}: {xero_message}"
    clash = results.name_clash(messages) if batch.record_type == "sales_ledger" else None
    if clash is not None:
        code = "name_taken"
        holder = ledger.name_holder(conn, info.id, info.operating_company_id, clash)
        message = (
            f"Xero refused {member.label}: the name '{clash}' is already assigned to another active Xero "
            f"contact{holder}."
        )
        action = (
            "Rename the customer in the CRM, or link it to that contact (merge the CRM customers); "
            "the next push sends it again."
        )
    ledger.record_error(
        conn,
        connection_id=info.id,
        record_type=batch.record_type,
        record_id=member.record_id,
        code=code,
        message=message,
        action=action,
        run_id=run_id,
        now=now,
        xero_message=xero_message,
        payload=member.element,
    )
    if permanent:
        ledger.record_rejected_hash(conn, batch.record_type, member.record_id, member.fields_hash)
    ledger.finish_member(conn, batch, position, "failed", now, xero_message)


def send(
    engine: Engine,
    client: XeroClient,
    info: ConnectionInfo,
    record_type: str,
    members: Sequence[Member],
    summary: PushSummary,
    run_id: str,
) -> None:
    """Batches of at most 50: each persisted, then sent, then applied."""
    target = TARGETS[record_type]
    for chunk in chunks(list(members)):
        with engine.begin() as conn:
            batch = ledger.open_batch(
                conn,
                connection_id=info.id,
                record_type=record_type,
                method="POST",
                path=target.path,
                collection=target.collection,
                members=chunk,
                run_id=run_id,
                now=utcnow(),
            )
        summary.batches += 1
        crash_point("push.batch_saved")  # persisted, not sent
        deliver(engine, client, info, batch, summary, run_id)


def resume(
    engine: Engine,
    client: XeroClient,
    info: ConnectionInfo,
    record_type: str,
    summary: PushSummary,
    run_id: str,
) -> None:
    """Resend what an earlier run persisted but did not finish (same key, same body), before anything new."""
    with engine.connect() as conn:
        pending = ledger.unfinished_batches(conn, info.id, record_type)
    for batch in pending:
        log.warning(
            "resending unfinished %s batch %s (%d records) with its key",
            record_type,
            batch.id,
            len(batch.members),
        )
        summary.resumed_batches += 1
        deliver(engine, client, info, batch, summary, run_id)


# --- customers ---------------------------------------------------------------------------------------------


def _adopt_imported(conn: Connection, info: ConnectionInfo, record_type: str) -> int:
    """The echo rule before a diff: what Xero already holds (as the last import read it) is not sent back."""
    return echo.adopt_imported(
        conn, record_type, operating_company_id=info.operating_company_id, connection_id=info.id, run_id=None
    )


def _customers(engine: Engine, info: ConnectionInfo, only_id: int | None) -> list[payloads.CustomerFields]:
    params = {"operating_company_id": info.operating_company_id, "connection_id": info.id, "only_id": only_id}
    with engine.begin() as conn:
        _adopt_imported(conn, info, "sales_ledger")
        rows = sqlfiles.fetch(conn, sqlfiles.DIFF_CUSTOMERS, params)
    return [payloads.CustomerFields.from_row(row) for row in rows]


def _label(customer: payloads.CustomerFields) -> str:
    return f"customer '{customer.name}' (CRM sales ledger {customer.id})"


def _crm_records(engine: Engine, info: ConnectionInfo, ids: Sequence[int]) -> list[rules.CrmRecord]:
    """The new customers as the matching rule sees them (the account number is matched on but never pushed)."""
    statement = text(
        "SELECT id, account_number, email, name FROM sales_ledger WHERE operating_company_id = :oc AND id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    with engine.connect() as conn:
        rows = conn.execute(statement, {"oc": info.operating_company_id, "ids": list(ids)}).all()
    return sorted((rules.CrmRecord(*row) for row in rows), key=lambda r: r.id)


def find_matches(
    engine: Engine, client: XeroClient, info: ConnectionInfo, new: Sequence[payloads.CustomerFields]
) -> dict[int, rules.Match | rules.Ambiguous]:
    """P9: a decision for each new customer that matches an existing Xero contact (mirror first, then Xero), by
    the rule the import uses too (rules/matching.py). Customers absent from the result are to be created."""
    wanted = _crm_records(engine, info, [c.id for c in new])
    wanted_ids = {c.id for c in wanted}
    with engine.connect() as conn:
        rows = sqlfiles.fetch(
            conn,
            sqlfiles.MATCH_CUSTOMERS_MIRROR,
            {"operating_company_id": info.operating_company_id, "connection_id": info.id},
        )
    mirror = {
        r.xero_id: rules.XeroContact(
            r.xero_id, r.account_number, r.contact_number, r.email_address, r.name, r.contact_status
        )
        for r in rows
        if r.ledger_id in wanted_ids
    }
    decisions: dict[int, rules.Match | rules.Ambiguous] = {
        record_id: decision
        for record_id, decision in rules.decide_all(wanted, mirror.values()).items()
        if not isinstance(decision, rules.NoMatch)
    }
    rest = [c for c in wanted if c.id not in decisions]
    for chunk in chunks(rest, matching.MATCH_QUERY_CHUNK):
        body = client.get_json(
            "Contacts",
            params={
                "where": matching.where_clause(chunk),
                "includeArchived": "true",
                "page": 1,
                "pageSize": 1000,
            },
        )
        candidates = [rules.XeroContact.from_xero(c) for c in body.get("Contacts") or []]
        taken = _linked_ids(engine, info, [c.xero_id for c in candidates])
        for record_id, decision in rules.decide_all(chunk, candidates, taken).items():
            if not isinstance(decision, rules.NoMatch):
                decisions[record_id] = decision
    return decisions


def _linked_ids(engine: Engine, info: ConnectionInfo, xero_ids: Sequence[str]) -> set[str]:
    if not xero_ids:
        return set()
    statement = text(
        "SELECT accounting_code FROM sales_ledger WHERE operating_company_id = :oc AND accounting_code IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    with engine.connect() as conn:
        return {
            row[0]
            for row in conn.execute(statement, {"oc": info.operating_company_id, "ids": list(xero_ids)})
        }


def apply_matches(
    engine: Engine,
    info: ConnectionInfo,
    new: Sequence[payloads.CustomerFields],
    decisions: dict[int, rules.Match | rules.Ambiguous],
    summary: PushSummary,
    run_id: str,
) -> None:
    by_id = {c.id: c for c in new}
    now = utcnow()
    with engine.begin() as conn:
        for ledger_id, decision in decisions.items():
            customer = by_id[ledger_id]
            if isinstance(decision, rules.Match):
                if ledger.link_record(conn, "sales_ledger", ledger_id, decision.xero_id):
                    ledger.record_history(
                        conn, info.id, "sales_ledger", ledger_id, decision.xero_id, "link", run_id, now,
                        f"matched an existing Xero contact by {decision.level}",
                    )  # fmt: skip
                    ledger.resolve_errors(
                        conn, info.id, "sales_ledger", ledger_id, now, code="ambiguous_match"
                    )
                    summary.linked += 1
                continue
            ledger.record_error(
                conn,
                connection_id=info.id,
                record_type="sales_ledger",
                record_id=ledger_id,
                code="ambiguous_match",
                message=(
                    f"{_label(customer)} matches {len(decision.xero_ids)} Xero contacts (or another CRM customer "
                    f"matches the same one) by {decision.level}: {', '.join(decision.xero_ids)}. Nothing was "
                    "created, to avoid a duplicate."
                ),
                action=(
                    "Link the customer by hand (set its Accounting Code to the right ContactID) or make its "
                    f"{decision.level} unique; then it is pushed as an update."
                ),
                run_id=run_id,
                now=now,
            )
            ledger.record_rejected_hash(conn, "sales_ledger", ledger_id, customer.fields_hash)
            summary.rejected += 1


def fetch_template(engine: Engine, client: XeroClient, info: ConnectionInfo, run_id: str) -> dict[str, Any]:
    """The template ledger's defaults (S8), read from Xero once per run that creates contacts."""
    with engine.connect() as conn:
        contact_id = template_contact_id(conn, info.operating_company_id)
    if not contact_id:
        return {}
    try:
        body = client.get_json(f"Contacts/{contact_id}")
    except XeroNotFound:
        with engine.begin() as conn:
            ledger.record_error(
                conn,
                connection_id=info.id,
                record_type="integration_settings",
                record_id=info.operating_company_id,
                code="template_missing",
                message=f"The template ledger (S8) names Xero contact {contact_id}, which Xero does not have; new "
                "contacts were created without its defaults.",
                action="Set template_ledger to an existing Xero contact (or a CRM customer synced with Xero).",
                run_id=run_id,
            )
        return {}
    contacts = body.get("Contacts") or []
    return payloads.template_defaults(contacts[0] if contacts else None)


def push_customers(
    engine: Engine, client: XeroClient, info: ConnectionInfo, run_id: str, *, only_id: int | None = None
) -> PushSummary:
    """Push new and changed customers of the connection's operating company to its Xero organisation."""
    summary = PushSummary(info.id, "sales_ledger")
    calls_before = client.stats.calls
    try:
        resume(engine, client, info, "sales_ledger", summary, run_id)
        customers = _customers(engine, info, only_id)
        summary.changed = len(customers)
        new = [c for c in customers if c.is_new]
        if new:
            decisions = find_matches(engine, client, info, new)
            if decisions:
                apply_matches(engine, info, new, decisions, summary, run_id)
                crash_point("push.matched")
                # Linked customers are updates now (or nothing, when the mirror shows Xero already has their values).
                customers = _customers(engine, info, only_id)
        template = fetch_template(engine, client, info, run_id) if any(c.is_new for c in customers) else {}
        # Updates first: a rename frees a name (or a code) before a creation in the same batch needs it.
        ordered = sorted(customers, key=lambda c: c.is_new)
        members = [
            Member(
                c.id,
                "create" if c.is_new else "update",
                c.fields_hash,
                payloads.contact_element(c, template),
                _label(c),
            )
            for c in ordered
        ]
        send(engine, client, info, "sales_ledger", members, summary, run_id)
    except DailyLimitReached as exc:
        summary.stopped = str(exc)
        log.error("push of customers stopped: %s", exc)
    finally:
        summary.calls = client.stats.calls - calls_before
    log.info("pushed customers: %s", summary.as_dict())
    return summary


# --- products ------------------------------------------------------------------------------------------------


def _product_label(product: payloads.ProductFields) -> str:
    return f"product '{product.code}' (CRM product {product.id})"


def push_products(
    engine: Engine, client: XeroClient, info: ConnectionInfo, run_id: str, *, order_id: int | None = None
) -> PushSummary:
    """Push new and changed products (P3). A new product whose code Xero already has updates and links that item
    (Xero matches a POSTed Code), so nothing is duplicated."""
    summary = PushSummary(info.id, "product")
    calls_before = client.stats.calls
    try:
        resume(engine, client, info, "product", summary, run_id)
        params = {
            "operating_company_id": info.operating_company_id,
            "connection_id": info.id,
            "order_id": order_id,
        }
        with engine.begin() as conn:
            _adopt_imported(conn, info, "product")
            rows = sqlfiles.fetch(conn, sqlfiles.DIFF_PRODUCTS, params)
        summary.changed = len(rows)
        members: list[Member] = []
        seen_codes: dict[str, int] = {}
        now = utcnow()
        with engine.begin() as conn:
            for row in sorted(rows, key=lambda r: r.accounting_code is None):
                product = payloads.ProductFields.from_row(row)
                code = (product.code or "").strip().casefold()
                clash = row.code_taken_by if product.is_new else None
                if product.is_new and code in seen_codes:
                    clash = seen_codes[code]
                if clash is not None:
                    ledger.record_error(
                        conn,
                        connection_id=info.id,
                        record_type="product",
                        record_id=product.id,
                        code="duplicate_code",
                        message=f"{_product_label(product)} has the same code as CRM product {clash}; Xero item "
                        "codes are unique, so it was not pushed.",
                        action="Give the product its own code in the CRM; the next push sends it.",
                        run_id=run_id,
                        now=now,
                    )
                    ledger.record_rejected_hash(conn, "product", product.id, product.fields_hash)
                    summary.rejected += 1
                    continue
                seen_codes.setdefault(code, product.id)
                members.append(
                    Member(
                        product.id,
                        "create" if product.is_new else "update",
                        product.fields_hash,
                        payloads.item_element(product),
                        _product_label(product),
                    )
                )
        send(engine, client, info, "product", members, summary, run_id)
    except DailyLimitReached as exc:
        summary.stopped = str(exc)
        log.error("push of products stopped: %s", exc)
    finally:
        summary.calls = client.stats.calls - calls_before
    log.info("pushed products: %s", summary.as_dict())
    return summary


# --- the DAG's steps ---------------------------------------------------------------------------------------------


def push_connections(
    store: ConnectionStore,
    connection_id: int | None = None,
    *,
    respect_interval: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Active primary connections, as secret-free dicts: pushes go to the primary organisation only (C2).

    `respect_interval` (runs of the time schedule): a connection whose company's routine sync interval (S9) has
    not elapsed since its last push started waits; runs after an import and manual runs always go.
    """
    return scheduling.connections_to_run(
        store,
        kind="push",
        roles=("primary",),
        connection_id=connection_id,
        respect_interval=respect_interval,
        now=now,
    )


def run_step(
    step: str,
    engine: Engine,
    store: ConnectionStore,
    settings: Settings,
    connection_id: int,
    run_id: str,
    *,
    last: bool = False,
    stopped_before: str | None = None,
    retry: RetryPolicy | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """One task of xero_push: 'customers' or 'products' for one connection, recorded in sync_run (kind 'push').
    The `last` step closes the run: 'partial' when any step stopped early (a spent daily limit), else 'success'.
    `retry` and `limits` default to the client's own (tests shorten timeouts)."""
    info = store.get(connection_id)
    push = push_customers if step == "customers" else push_products
    # Access lost (the grant revoked, the organisation disconnected in Xero, found by an earlier step or now) stops
    # the step like a spent limit: the connection is flagged, what was persisted waits, a reconnect resumes it.
    summary = PushSummary(info.id, TARGETS[TARGET_OF_STEP[step]].record_type)
    if info.status != "active":
        summary.stopped = skip_message(info)
    else:
        try:
            summary = push(
                engine,
                xero_access.make_client(store, info, settings, retry=retry, limits=limits),
                info,
                run_id,
            )
        except ReconnectRequired as exc:
            summary.stopped = str(exc)
        except XeroForbidden as exc:
            if not xero_access.organisation_gone(store, info, settings):
                raise  # a missing scope: the task fails and says so
            summary.stopped = f"the organisation is no longer connected in Xero: {exc}"
    if summary.stopped and info.status == "active":
        log.error("push of %s stopped: %s", step, summary.stopped)
    stopped = summary.stopped or stopped_before
    status = ("partial" if stopped else "success") if last else None
    runs.record_run(engine, info.id, run_id, "push", {step: summary.as_dict()}, status=status, error=stopped)
    return summary.as_dict()
