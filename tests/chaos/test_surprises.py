"""Xero-side surprises, each with the CRM state it must leave (`tests/chaos/world.py` worlds, the DAGs' tasks):

- the daily call limit spent in the middle of an import, a push and the order outbox: each run stops cleanly
  (status partial, no failed task, no error against any record), the next day's runs resume, and the plan ends
  exactly as the uninterrupted reference;
- the access token revoked, and the organisation disconnected, in the middle of an import: the run stops, the
  connection asks for a reconnect, nothing the CRM had is lost and no watermark moves past unread data; after a
  reconnect the next run catches up;
- the accounts team in Xero: a contact archived then restored, an item's code changed, an invoice voided after
  its order was confirmed and invoiced, a payment deleted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.chaos import state
from tests.chaos.conftest import SCENARIO
from tests.chaos.world import PLAN, PlanStats, build_world, reconnect, restore, run_stage, sqlite_url
from xero_crm_sync import crashpoints, oauth

UNLIMITED = 10_000_000


def test_a_spent_daily_limit_stops_each_run_cleanly_and_the_next_day_resumes(reference, tmp_path: Path):
    world = build_world(SCENARIO, sqlite_url(tmp_path, "limited"))
    admin = world.sandbox.admin
    stats = PlanStats()
    try:
        runs = []
        for stage, dag_id in PLAN:
            if dag_id != "edits":
                admin.set_limits(day=2)  # two calls left today: every DAG run is cut short
                runs.append((stage, run_stage(world, stage, dag_id, stats)))
                admin.set_limits(day=UNLIMITED)  # the next day
                stage = f"{stage}-next-day"
            run_stage(world, stage, dag_id, stats)
        assert stats.failures == []  # stopping for the day is not a failure: no task failed or retried
        stopped = {stage: _stopped(xcom) for stage, xcom in runs}
        assert all("daily" in why for why in stopped.values() if why and why != "partial"), stopped
        assert stopped["import-1"] and stopped["push-1"] and stopped["orders-1"]
        partial = world.scalar("SELECT COUNT(*) FROM sync_run WHERE status = 'partial'")
        assert partial >= 3
        crm, xero = world.crm_state(), world.xero_state()
        assert state.diff(reference.end[0], crm) == {}, state.explain(reference.end[0], crm)
        assert state.diff(reference.end[1], xero) == {}, state.explain(reference.end[1], xero)
        assert state.duplicates(world.org) == {"Contacts": 0, "Items": 0, "Invoices": 0}
    finally:
        world.close()


def _stopped(xcom: dict) -> str | None:
    """Why the DAG run stopped early, from its tasks' results (None: it did not)."""
    for result in xcom.values():
        if result.get("stopped"):
            return result["stopped"]
        if result.get("status") == "partial":
            return "partial"
    return None


def _calls(world) -> int:
    counters = world.sandbox.admin.counters(world.env.tenant_id).get(world.env.tenant_id, {})
    return counters.get("totals", {}).get("calls", 0)


def _revoke(world) -> None:
    """The user revokes the app's access (what Xero's revocation endpoint does for a disconnecting app)."""
    store, connection_id = world.env.store, world.env.connection_id
    with store.engine.connect() as conn:
        refresh_token = store._blob(conn, connection_id, lock=False)["token"]["refresh_token"]
    oauth.revoke(world.env.settings.revocation_url, store.credentials(connection_id), refresh_token)


def _disconnect_organisation(world) -> None:
    """Settings > Connected Apps in Xero: this organisation only (the user keeps another one connected)."""
    [connection] = [c for c in world.sandbox.admin.connections() if c["tenantId"] == world.env.tenant_id]
    world.sandbox.admin.disconnect(connection["id"])


# What waits, unlost, for the reconnect: the import's partial run (watermarks only for what it read), the batch
# persisted but not sent (resent with its key), every order event.
WAITING = {
    "extract.page": ("SELECT COUNT(*) FROM sync_run WHERE kind = 'import' AND status = 'partial'", 1),
    "push.batch_saved": ("SELECT COUNT(*) FROM export_batch WHERE state = 'pending'", 1),
    "orders.key_saved": ("SELECT COUNT(*) FROM order_outbox WHERE state = 'pending'", SCENARIO.orders),
}


@pytest.mark.parametrize(
    ("surprise", "tenants", "point", "hit", "status"),
    [
        (_revoke, 1, "extract.page", 2, "needs_reconnect"),
        (_disconnect_organisation, 2, "push.batch_saved", 1, "disconnected"),
        (_disconnect_organisation, 2, "orders.key_saved", 1, "disconnected"),
    ],
    ids=[
        "token revoked mid-import",
        "organisation disconnected mid-push",
        "organisation disconnected mid-orders",
    ],
)
def test_access_lost_mid_run_stops_cleanly_and_a_reconnect_catches_up(
    reference, tmp_path: Path, surprise, tenants, point, hit, status
):
    """The user's other organisation keeps the grant alive when one is disconnected: Xero answers 403 for it,
    which the run tells apart from a missing scope by asking /connections once."""
    world = build_world(dataclasses.replace(SCENARIO, xero_tenants=tenants), sqlite_url(tmp_path, "lost"))
    stats = PlanStats()
    seen = []

    def midway(name: str) -> None:
        seen.append(name)
        if name == point and seen.count(point) == hit:
            surprise(world)

    try:
        stages = list(PLAN)
        while True:  # the plan, until the surprise
            stage, dag_id = stages.pop(0)
            with crashpoints.observe(midway):
                run_stage(world, stage, dag_id, stats)
            if seen.count(point) >= hit:
                break
        assert world.env.store.get(world.env.connection_id).status == status
        sql, waiting = WAITING[point]
        assert world.scalar(sql) == waiting
        # Nothing goes to that organisation until someone reconnects: no call, no failed task; nothing is lost.
        world.sandbox.admin.reset_counters()
        for other, other_dag in (
            ("import-x", "xero_import"),
            ("push-x", "xero_push"),
            ("orders-x", "xero_order_invoices"),
        ):
            run_stage(world, other, other_dag, stats)
        assert stats.failures == []
        assert _calls(world) == 0

        reconnect(world)
        run_stage(world, f"{stage}-again", dag_id, stats)  # the stage the surprise cut short, then the rest
        for stage, dag_id in stages:
            run_stage(world, stage, dag_id, stats)
        assert stats.failures == []
        crm, xero = world.crm_state(), world.xero_state()
        assert state.diff(reference.end[0], crm) == {}, state.explain(reference.end[0], crm)
        assert state.diff(reference.end[1], xero) == {}, state.explain(reference.end[1], xero)
        assert state.duplicates(world.org) == {"Contacts": 0, "Items": 0, "Invoices": 0}
    finally:
        world.close()


def test_accounts_team_changes_in_xero_reach_the_crm_without_duplicates(reference, tmp_path: Path):
    """After the first import, push and orders: a contact archived (then restored), an item's code changed, the
    Draft invoice of a confirmed order authorised then voided, a payment deleted."""
    world = restore(reference.snapshots["edits"], sqlite_url(tmp_path, "team"))
    org, stats = world.org, PlanStats()
    try:
        archived = next(
            c
            for c in sorted(org.contacts.values(), key=lambda c: c.get("ContactNumber") or "")
            if c.get("IsCustomer")
            and c.get("ContactStatus") == "ACTIVE"
            and not str(c.get("ContactNumber")).isdigit()
        )
        item = next(i for i in org.items.values() if i["Code"] == "CHAOS-P001")
        order = world.ids["orders"][1]
        invoice_id = world.scalar("SELECT xero_invoice_id FROM sales_order WHERE id = :o", o=order)
        payment = next(
            p
            for p in sorted(org.payments.values(), key=lambda p: p["PaymentID"])
            if p.get("Status") == "AUTHORISED"
            and org.invoices.get((p.get("Invoice") or {}).get("InvoiceID", "")) is not None
            and org.invoices.get(p["Invoice"]["InvoiceID"])["Type"] == "ACCREC"
        )
        paid_invoice = payment["Invoice"]["InvoiceID"]
        paid_before = float(
            world.scalar("SELECT amount_paid FROM sales_invoice WHERE accounting_code = :x", x=paid_invoice)
        )
        _team(org, "Contacts", {"ContactID": archived["ContactID"], "ContactStatus": "ARCHIVED"})
        # The accounts team completes the draft (an account code on lines the order left without one), approves it.
        lines = [
            {**line, "AccountCode": line.get("AccountCode") or "200"}
            for line in org.invoices.get(invoice_id)["LineItems"]
        ]
        _team(org, "Invoices", {"InvoiceID": invoice_id, "LineItems": lines, "Status": "AUTHORISED"})
        _team(org, "Invoices", {"InvoiceID": invoice_id, "Status": "VOIDED"})
        _team(org, "Items", {"ItemID": item["ItemID"], "Code": "CHAOS-P001-RENAMED"})
        assert org.delete_payment(payment["PaymentID"]).ok

        run_stage(world, "import-2", "xero_import", stats)
        ledger = world.rows(
            "SELECT status, on_stop_source FROM sales_ledger WHERE accounting_code = :x",
            x=archived["ContactID"],
        )
        assert [tuple(r) for r in ledger] == [("On Stop", "xero_archived")]
        product = world.ids["products"][1]
        assert world.scalar("SELECT code FROM product WHERE id = :i", i=product) == "CHAOS-P001-RENAMED"
        assert (
            world.scalar("SELECT status FROM sales_invoice WHERE accounting_code = :x", x=invoice_id) == "D"
        )
        assert world.scalar("SELECT status FROM sales_order WHERE id = :o", o=order) == "confirmed"
        deleted = world.scalar(
            "SELECT is_deleted FROM payment WHERE accounting_code = :x", x=payment["PaymentID"]
        )
        assert deleted in (True, 1)
        paid_now = float(
            world.scalar("SELECT amount_paid FROM sales_invoice WHERE accounting_code = :x", x=paid_invoice)
        )
        assert paid_now == pytest.approx(paid_before - float(payment["Amount"]))

        _team(org, "Contacts", {"ContactID": archived["ContactID"], "ContactStatus": "ACTIVE"})
        run_stage(world, "import-3", "xero_import", stats)
        ledger = world.rows(
            "SELECT status, on_stop_source FROM sales_ledger WHERE accounting_code = :x",
            x=archived["ContactID"],
        )
        assert [tuple(r) for r in ledger] == [("Active", None)]

        items_before, invoices_before = len(org.items), len(org.invoices)
        run_stage(world, "push-2", "xero_push", stats)
        run_stage(world, "orders-2", "xero_order_invoices", stats)
        assert stats.failures == []
        assert (
            len(org.items) == items_before and org.items.get(item["ItemID"])["Code"] == "CHAOS-P001-RENAMED"
        )
        assert len(org.invoices) == invoices_before  # the voided order invoice is not sent again
        assert [i["Status"] for i in org.invoices.values() if i.get("Reference") == "CHAOS-REF-1"] == [
            "VOIDED"
        ]
        assert state.duplicates(org) == {"Contacts": 0, "Items": 0, "Invoices": 0}
    finally:
        world.close()


def _team(org, entity: str, element: dict) -> None:
    [result] = org.write(entity, [element])
    assert result.ok, result.errors
