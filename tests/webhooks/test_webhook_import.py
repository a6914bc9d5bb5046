"""The event-driven import: webhook events -> just those records re-read (IDs=) -> the import's own steps."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from tests.webhooks.conftest import KEY, WebhookWorld, contact_update_delivery
from xero_crm_sync.webhooks import keys
from xero_sandbox.webhooks import WebhookFaults


def _ledger(world: WebhookWorld, contact_id: str) -> Any:
    return world.pipeline.rows(
        "SELECT name, email, status FROM sales_ledger WHERE accounting_code = :x", x=contact_id
    )


def _customer(world: WebhookWorld, n: int) -> dict[str, Any]:
    """The n-th imported customer: each test changes its own."""
    code = world.pipeline.scalar(
        "SELECT accounting_code FROM sales_ledger WHERE accounting_code IS NOT NULL ORDER BY id LIMIT 1 OFFSET :n",
        n=n,
    )
    return world.org.contacts.get(code)


def test_a_signed_event_reaches_the_crm_with_one_call(world: WebhookWorld) -> None:
    contact = _customer(world, 0)
    world.org.upsert_contacts([{"ContactID": contact["ContactID"], "Name": "Renamed In Xero Ltd"}])
    world.pipeline.sandbox.admin.clear_journal()
    result = world.process()
    assert result.events >= 1 and result.ignored == 0
    assert _ledger(world, contact["ContactID"])[0]["name"] == "Renamed In Xero Ltd"
    # A read of some records by id says nothing about the others: the contacts watermark did not move.
    assert world.pipeline.scalar(
        "SELECT last_successful_run_id FROM sync_watermark WHERE entity = 'contacts'"
    ) == ("initial")
    reads = world.api_calls("/Contacts")
    assert len(reads) == 1 and contact["ContactID"] in reads[0]["path"] + str(reads[0].get("query", ""))
    with world.pipeline.engine.connect() as conn:
        states = conn.execute(text("SELECT DISTINCT state FROM webhook_event")).scalars().all()
    assert "pending" not in states
    # Nothing pending: a second run reads nothing.
    world.pipeline.sandbox.admin.clear_journal()
    assert world.process("again").events == 0 and world.api_calls("/Contacts") == []


def test_archiving_in_xero_puts_the_customer_on_stop_through_the_import_rule(world: WebhookWorld) -> None:
    contact = _customer(world, 1)
    world.org.upsert_contacts([{"ContactID": contact["ContactID"], "ContactStatus": "ARCHIVED"}])
    world.process()
    assert _ledger(world, contact["ContactID"])[0]["status"] == "On Stop"


def test_duplicate_and_out_of_order_deliveries_end_as_one_ordered_delivery(world: WebhookWorld) -> None:
    world.hub.set_faults(world.subscription.id, WebhookFaults(duplicate=1.0, reorder=0.5, seed=3))
    duplicated = world.subscription.stats["duplicated"]
    contact = _customer(world, 2)
    for n in range(5):
        world.org.upsert_contacts([{"ContactID": contact["ContactID"], "EmailAddress": f"v{n}@example.com"}])
        world.hub.flush(5)  # each edit its own delivery, some held back behind the next
    assert world.subscription.stats["duplicated"] - duplicated >= 5
    world.hub.set_faults(world.subscription.id, WebhookFaults())
    world.process()
    final = world.org.contacts.get(contact["ContactID"])
    assert _ledger(world, contact["ContactID"])[0]["email"] == final["EmailAddress"] == "v4@example.com"


def test_replayed_or_badly_signed_deliveries_change_nothing(world: WebhookWorld) -> None:
    import httpx

    contact = _customer(world, 3)
    world.org.upsert_contacts([{"ContactID": contact["ContactID"], "Name": "First Rename Ltd"}])
    world.process()
    before = world.pipeline.scalar("SELECT COUNT(*) FROM webhook_event")
    # Replay every payload Xero sent so far, correctly signed: nothing new is stored, nothing runs.
    body = contact_update_delivery(
        contact["ContactID"], world.pipeline.tenants["primary"], "2020-01-01T00:00:00.000", "Z"
    )
    forged = body.replace(b"2020", b"2030")
    assert (
        httpx.post(
            world.receiver.url, content=forged, headers={"x-xero-signature": keys.signature("x", forged)}
        ).status_code
        == 401
    )
    assert httpx.post(world.receiver.url, content=forged).status_code == 401
    assert world.pipeline.scalar("SELECT COUNT(*) FROM webhook_event") == before
    # An old (replayed) event re-reads the current record: the CRM keeps Xero's newest state.
    assert (
        httpx.post(
            world.receiver.url, content=body, headers={"x-xero-signature": keys.signature(KEY, body)}
        ).status_code
        == 200
    )
    assert (
        httpx.post(
            world.receiver.url, content=body, headers={"x-xero-signature": keys.signature(KEY, body)}
        ).status_code
        == 200
    )
    assert world.pipeline.scalar("SELECT COUNT(*) FROM webhook_event") == before + 1
    world.process("replay")
    assert _ledger(world, contact["ContactID"])[0]["name"] == "First Rename Ltd"


def test_a_burst_of_edits_costs_a_handful_of_calls(world: WebhookWorld) -> None:
    contacts = list(world.org.contacts.values())[:20]
    for round_ in range(10):  # 200 edits of 20 contacts
        world.org.upsert_contacts(
            [{"ContactID": c["ContactID"], "Website": f"https://r{round_}.example.com"} for c in contacts]
        )
    invoices = [i for i in world.org.invoices.values() if i["Status"] == "DRAFT"][:5]
    world.org.upsert_invoices([{"InvoiceID": i["InvoiceID"], "Reference": "burst"} for i in invoices])
    world.pipeline.sandbox.admin.clear_journal()
    world.process()
    assert world.subscription.stats["events"] >= 200  # Xero told us about every edit
    calls = world.pipeline.sandbox.admin.journal()
    gets = [c for c in calls if c["method"] == "GET" and "/api.xro/" in c["path"]]
    # contacts by id (1), invoices by id (1), payments since their watermark (1).
    assert len(gets) <= 3, [c["path"] for c in gets]


def test_events_of_unknown_organisations_are_ignored_with_a_reason(world: WebhookWorld) -> None:
    from xero_crm_sync.connections import utcnow
    from xero_crm_sync.webhooks import events

    with world.pipeline.engine.begin() as conn:
        events.store_delivery(
            conn, "nobody",
            [{"tenant_id": "00000000-0000-0000-0000-000000000000", "event_category": "CONTACT",
              "event_type": "UPDATE", "resource_id": "abc", "event_date_utc": utcnow()}],
            utcnow(),
        )  # fmt: skip
    result = world.process()
    assert result.ignored == 1
    assert world.pipeline.scalar("SELECT detail FROM webhook_event WHERE resource_id = 'abc'").startswith(
        "no active"
    )


def test_polling_stretches_while_healthy_and_returns_when_webhooks_stop(
    world: WebhookWorld, monkeypatch: Any
) -> None:
    from xero_crm_sync import import_run
    from xero_crm_sync.webhooks.health import deferred_entities, webhook_status

    p = world.pipeline
    info = p.store.get(p.connections["primary"])
    world.process()
    with p.engine.connect() as conn:
        assert webhook_status(conn).state == "healthy"
    assert deferred_entities(p.engine, info) == {"contacts", "invoices", "credit_notes"}
    # A scheduled import then leaves them out; items, payments, ... are still read.
    extracted = import_run.extract(p.engine, p.store, info, "poll-1", skip=deferred_entities(p.engine, info))
    assert "contacts" not in extracted.entities and "items" in extracted.entities

    # Webhooks stop: Xero changes a contact, no event arrives; polling finds it.
    world.hub.set_faults(world.subscription.id, WebhookFaults(drop=1.0))
    contact = _customer(world, 5)
    world.org.upsert_contacts([{"ContactID": contact["ContactID"], "Name": "Changed While Deaf Ltd"}])
    assert world.hub.flush(5) and world.subscription.stats["dropped"] >= 1
    monkeypatch.setenv("XERO_WEBHOOK_GRACE_MINUTES", "0")
    extracted = import_run.extract(p.engine, p.store, info, "poll-2").as_dict()
    import_run.validate(p.engine, extracted)
    import_run.load(p.engine, extracted)
    assert _ledger(world, contact["ContactID"])[0]["name"] == "Changed While Deaf Ltd"
    with p.engine.connect() as conn:
        status = webhook_status(conn)
    assert status.state == "degraded" and status.missed >= 1 and "polling" in status.reason
    assert deferred_entities(p.engine, info) == frozenset()  # everything polled at its normal interval again
    # ...and the status page says so, in its webhooks block.
    from fastapi.testclient import TestClient

    from xero_crm_sync.status_app import create_app

    page = TestClient(create_app(lambda: p.engine, reader=lambda: "tester", writer=lambda: "tester")).get("/")
    assert page.status_code == 200
    assert (
        'id="webhooks" class="webhooks-degraded"' in page.text
        and "reached the CRM only by polling" in page.text
    )
    world.hub.set_faults(world.subscription.id, WebhookFaults())


# --- CRM -> Xero: the change outbox (same world: setting one up costs a full import) ----------------------------


def _needs_push(world: WebhookWorld) -> int:
    from xero_crm_sync.webhooks.outbox import pending_summary

    with world.pipeline.engine.connect() as conn:
        return pending_summary(conn)[0]


def _drain(world: WebhookWorld, run_id: str) -> Any:
    from xero_crm_sync.settings import get_settings
    from xero_crm_sync.webhooks.outbox import drain

    p = world.pipeline
    return drain(p.engine, p.store, get_settings(), run_id)


def test_a_crm_edit_reaches_xero_and_its_echo_is_not_re_read(world: WebhookWorld) -> None:
    world.process("before-crm-edit")
    waiting = _needs_push(world)  # the demo's CRM-only customers and products, never pushed yet
    contact = _customer(world, 6)
    with world.pipeline.engine.begin() as conn:
        conn.execute(
            text("UPDATE sales_ledger SET email = 'from.crm@example.com' WHERE accounting_code = :x"),
            {"x": contact["ContactID"]},
        )
    assert _needs_push(world) == waiting + 1  # queued in the same transaction, by the database trigger
    world.pipeline.sandbox.admin.clear_journal()
    result = _drain(world, "crm-edit")
    assert world.org.contacts.get(contact["ContactID"])["EmailAddress"] == "from.crm@example.com"
    writes = [c for c in world.pipeline.sandbox.admin.journal() if c["method"] in ("POST", "PUT")]
    assert (
        len(writes) <= 2 and result.changes >= 1 and _needs_push(world) == 0
    )  # customers (+ products) batch
    # Xero's webhook for our own write comes back: recognised, not re-read.
    world.pipeline.sandbox.admin.clear_journal()
    echoed = world.process("echo")
    assert echoed.echoes >= 1 and world.api_calls("/Contacts") == []


def test_the_imports_own_writes_do_not_bounce_back(world: WebhookWorld) -> None:
    # A customer the CRM holds exactly as Xero does (nothing to push before the change).
    code = world.pipeline.scalar(
        "SELECT s.accounting_code FROM push_customer_mirror m JOIN sales_ledger s ON s.id = m.id "
        "WHERE m.mirror_hash = m.fields_hash ORDER BY s.id DESC LIMIT 1"
    )
    contact = world.org.contacts.get(code)
    assert _needs_push(world) == 0
    world.org.upsert_contacts([{"ContactID": contact["ContactID"], "Name": "Renamed For The Echo Test Ltd"}])
    world.process("import-writes")
    assert _ledger(world, contact["ContactID"])[0]["name"] == "Renamed For The Echo Test Ltd"
    with world.pipeline.engine.connect() as conn:
        queued = conn.execute(
            text(
                "SELECT COUNT(*) FROM crm_change_outbox o JOIN sales_ledger s ON s.id = o.record_id "
                "WHERE o.record_type = 'sales_ledger' AND s.accounting_code = :x"
            ),
            {"x": contact["ContactID"]},
        ).scalar()
    assert queued == 0  # the import's load queues nothing: what it wrote is what Xero holds
    assert _needs_push(world) == 0  # and no run starts
    world.pipeline.sandbox.admin.clear_journal()
    _drain(world, "import-writes-drain")
    assert [c for c in world.pipeline.sandbox.admin.journal() if c["method"] in ("POST", "PUT")] == []


def test_a_burst_of_crm_edits_costs_a_few_batched_calls(world: WebhookWorld) -> None:
    with world.pipeline.engine.begin() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT accounting_code FROM sales_ledger WHERE accounting_code IS NOT NULL ORDER BY id LIMIT 15"
                )
            )
            .scalars()
            .all()
        )
        for round_ in range(4):  # 60 edits of 15 customers
            conn.execute(
                text("UPDATE sales_ledger SET phone = :p WHERE accounting_code = :x"),
                [{"p": f"09 555 {round_}{n:03d}", "x": code} for n, code in enumerate(codes)],
            )
    world.pipeline.sandbox.admin.clear_journal()
    _drain(world, "crm-burst")
    writes = [c for c in world.pipeline.sandbox.admin.journal() if c["method"] in ("POST", "PUT")]
    assert len(writes) == 1, [w["path"] for w in writes]  # 15 customers: one batch of up to 50
    assert _needs_push(world) == 0


def test_a_retried_webhook_run_keeps_what_its_first_attempt_mirrored(world: WebhookWorld) -> None:
    """A retried task starts again at its first pass's run id and clears what that pass staged, but not the staged
    rows the mirror took: each mirrored invoice still finds its raw payload (the only copy of that version), and the
    invoice the retry reads is mirrored with its own lines, not the first attempt's."""
    editable = [
        i
        for i in world.org.invoices.values()
        if i["Type"] == "ACCREC" and i["Status"] in ("DRAFT", "AUTHORISED") and not i.get("AmountPaid")
    ]
    first, second = sorted(editable, key=lambda i: i["InvoiceID"])[-2:]
    for invoice, reference in ((first, "first attempt"), (second, "the retry")):
        assert world.org.upsert_invoices([{"InvoiceID": invoice["InvoiceID"], "Reference": reference}])[0].ok
        world.process("retried-run")
    ids = [first["InvoiceID"].lower(), second["InvoiceID"].lower()]
    mirrored = world.pipeline.rows(
        "SELECT v.xero_id, CAST(s.raw AS TEXT) AS raw FROM val_invoices v JOIN stg_invoices s "
        "ON s.stg_id = v.stg_id AND s.xero_id = v.xero_id WHERE v.xero_id IN (:a, :b) ORDER BY v.xero_id",
        a=ids[0],
        b=ids[1],
    )
    assert [(r["xero_id"], json.loads(r["raw"])["Reference"]) for r in mirrored] == [
        (ids[0], "first attempt"),
        (ids[1], "the retry"),
    ]
    for invoice in (first, second):
        lines = world.pipeline.rows(
            "SELECT description FROM val_invoice_lines WHERE parent_id = :p ORDER BY line_no",
            p=invoice["InvoiceID"].lower(),
        )
        expected = world.org.invoices.get(invoice["InvoiceID"])["LineItems"]
        assert [r["description"] for r in lines] == [line.get("Description") for line in expected]
