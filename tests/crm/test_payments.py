"""I8: payments, invoice payment status (paid / partially paid / overdue / unpaid), the CRM order it came from,
and one notification to the account manager when an invoice goes overdue."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from .helpers import T0, contact, gid, invoice, payment

DUE = date(2026, 3, 31)
AFTER_DUE = datetime(2026, 4, 2, 9, 0, 0)


def _status(crm, key):
    return crm.scalar(
        "SELECT payment_status FROM sales_invoice WHERE operating_company_id = :company_id AND accounting_code = :x",
        x=gid(key),
    )


def _notifications(crm):
    return crm.rows("SELECT * FROM notification WHERE operating_company_id = :company_id ORDER BY id")


def test_payment_status_from_amounts_and_due_date(crm):
    counts = crm.run(
        {
            "contacts": [contact("acme")],
            "invoices": [
                invoice("PAID", "acme", total=100, paid=100, status="PAID"),
                invoice("PART", "acme", total=100, paid=30),
                invoice("OPEN", "acme", total=100),
                invoice("LATE", "acme", total=100, due=date(2026, 2, 15)),
                invoice("DRAFT", "acme", total=100, status="DRAFT", due=date(2026, 2, 15)),
                invoice("VOID", "acme", total=100, status="VOIDED"),
            ],
            "payments": [payment("pay-paid", "PAID", 100), payment("pay-part", "PART", 30)],
        }
    )
    assert _status(crm, "PAID") == "paid"
    assert _status(crm, "PART") == "partially_paid"
    assert _status(crm, "OPEN") == "unpaid"
    assert _status(crm, "LATE") == "overdue"
    assert _status(crm, "DRAFT") == "unpaid"  # not issued yet: not overdue
    assert _status(crm, "VOID") is None
    # Each new invoice arrived with its status (090, by 130's rule): the payment-status step had nothing to change.
    assert counts["payment_status"] == 0
    payments = crm.rows(
        "SELECT p.amount, p.is_deleted, i.invoice_number FROM payment p JOIN sales_invoice i ON i.id = p.sales_invoice_id"
        " WHERE p.operating_company_id = :company_id ORDER BY p.amount"
    )
    assert [(p["invoice_number"], p["amount"]) for p in payments] == [("PART", 30), ("PAID", 100)]
    assert not any(p["is_deleted"] for p in payments)


def test_deleted_payment_is_kept_and_marked(crm):
    crm.run({"contacts": [contact("acme")], "invoices": [invoice("INV", "acme", paid=40)],
             "payments": [payment("pay", "INV", 40)]})  # fmt: skip
    crm.run({"invoices": [invoice("INV", "acme", paid=0, updated=T0 + timedelta(hours=1))],
             "payments": [payment("pay", "INV", 40, status="DELETED", updated=T0 + timedelta(hours=1))]})  # fmt: skip
    pay = crm.one("SELECT * FROM payment WHERE operating_company_id = :company_id")
    assert pay["is_deleted"] in (True, 1) and pay["xero_status"] == "DELETED"
    assert _status(crm, "INV") == "unpaid"


def test_invoice_going_overdue_flags_its_order_and_notifies_the_account_manager_once(crm):
    crm.settings(default_account_manager_id=crm.manager_id)
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    ledger_id = crm.ledger("acme")["id"]
    crm.execute(
        "INSERT INTO sales_order (operating_company_id, order_number, sales_ledger_id, status, xero_invoice_id)"
        " VALUES (:company_id, 'SO-1', :l, 'confirmed', :x)",
        l=ledger_id, x=gid("INV-1"),
    )  # fmt: skip
    crm.run({"invoices": [invoice("INV-1", "acme", total=100, paid=25, due=DUE)]})
    order = crm.one("SELECT * FROM sales_order WHERE operating_company_id = :company_id")
    assert (order["payment_status"], order["is_overdue"]) == ("partially_paid", order["is_overdue"])
    assert order["is_overdue"] in (False, 0)
    assert _notifications(crm) == []

    # Nothing changes in Xero; time passes the due date.
    crm.run({}, now=AFTER_DUE)
    order = crm.one("SELECT * FROM sales_order WHERE operating_company_id = :company_id")
    assert order["payment_status"] == "overdue" and order["is_overdue"] in (True, 1)
    [note] = _notifications(crm)
    assert (note["crm_user_id"], note["kind"], note["record_type"]) == (
        crm.manager_id,
        "invoice_overdue",
        "sales_invoice",
    )
    assert "INV-1" in note["title"] and "SO-1" in note["message"]

    # Reruns, later runs and a second overdue spell never notify twice.
    crm.run({}, now=AFTER_DUE, run_id=crm.last_run_id)
    crm.run({}, now=AFTER_DUE + timedelta(days=1))
    crm.run({"invoices": [invoice("INV-1", "acme", total=100, paid=50, due=DUE, updated=T0 + timedelta(days=40))]},
            now=AFTER_DUE + timedelta(days=2))  # fmt: skip
    assert len(_notifications(crm)) == 1

    # Paid in full: the order shows it and is no longer flagged.
    crm.run({"invoices": [invoice("INV-1", "acme", total=100, paid=100, status="PAID", due=DUE,
                                  updated=T0 + timedelta(days=41))]}, now=AFTER_DUE + timedelta(days=3))  # fmt: skip
    order = crm.one("SELECT * FROM sales_order WHERE operating_company_id = :company_id")
    assert order["payment_status"] == "paid" and order["is_overdue"] in (False, 0)


def test_invoice_already_overdue_at_first_import_notifies_nobody(crm):
    crm.settings(default_account_manager_id=crm.manager_id)
    crm.run({"contacts": [contact("acme")], "invoices": [invoice("OLD", "acme", due=date(2025, 1, 1))]})
    assert _status(crm, "OLD") == "overdue"
    assert _notifications(crm) == []
