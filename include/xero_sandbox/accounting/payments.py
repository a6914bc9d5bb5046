"""Payments against invoices and credit-note allocations, and what they do to the invoice.

A payment (or allocated credit) lowers the invoice's AmountDue and raises AmountPaid (AmountCredited); when
nothing is left to pay the invoice becomes PAID with a FullyPaidOnDate. Deleting a payment (Xero's only way to
undo one: ``POST /Payments/{id}`` with ``Status: DELETED``) gives the amount back and returns a PAID invoice
to AUTHORISED. Every one of these bumps the invoice's UpdatedDateUTC, so incremental reads see it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import validation as v
from .entities import PAYMENTS
from .matching import match_record
from .store import Changes
from .totals import dec, money, to_float
from .wire import BadDate, parse_date_input

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore


def match(store: OrgStore, element: dict[str, Any], *, method: str, path_id: str | None) -> Record | None:
    return match_record(store, PAYMENTS, store.payments, element, method=method, path_id=path_id)


def build(
    store: OrgStore,
    element: dict[str, Any],
    existing: Record | None,
    *,
    now: datetime,
    unitdp: int | None = None,
) -> Changes:
    if existing is not None:
        return _delete(store, element, existing, now)
    errors: list[str] = []
    invoice = _resolve_invoice(store, element.get("Invoice"))
    if "CreditNote" in element and invoice is None:
        # Refunds of credit notes are outside what the sandbox models.
        raise v.Invalid([v.payment_not_authorised()])
    if invoice is None:
        errors.append(v.invoice_not_found())
    account = _resolve_account(store, element.get("Account"))
    if account is None:
        errors.append(v.payment_account_invalid())
    try:
        amount = v.as_number(element.get("Amount"))
    except (TypeError, ValueError):
        amount = None
    if amount is None or amount <= 0:
        errors.append(v.payment_amount_required())
    try:
        paid_on = parse_date_input(element["Date"]) if element.get("Date") else now.date()
    except BadDate:
        errors.append(v.bad_date("Date"))
        paid_on = now.date()
    if invoice is not None and amount is not None and amount > 0:
        if invoice.get("Status") != "AUTHORISED":
            errors.append(v.payment_not_authorised())
        elif money(dec(amount)) > dec(invoice.get("AmountDue", 0.0)):
            errors.append(v.payment_exceeds())
    if errors:
        raise v.Invalid(errors)
    assert invoice is not None and account is not None and amount is not None

    amount_dec = money(dec(amount))
    payment: Record = {
        "PaymentID": store.new_id(),
        "Date": paid_on,
        "Amount": to_float(amount_dec),
        "BankAmount": to_float(amount_dec),
        "CurrencyRate": _rate(element, invoice),
        "Reference": str(element["Reference"]) if element.get("Reference") is not None else None,
        "IsReconciled": bool(element.get("IsReconciled") is True),
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT" if invoice.get("Type") == "ACCREC" else "ACCPAYPAYMENT",
        "UpdatedDateUTC": now,
        "HasAccount": True,
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"AccountID": account["AccountID"]},
    }
    if payment["Reference"] is None:
        del payment["Reference"]
    changes = Changes([("Payments", payment)])
    changes.add("Invoices", apply_payment(invoice, payment, now))
    return changes


def apply_payment(invoice: Record, payment: Record, now: datetime) -> Record:
    """The invoice after ``payment`` is applied (PAID when nothing remains)."""
    updated = dict(invoice)
    amount = dec(payment["Amount"])
    paid = dec(invoice.get("AmountPaid", 0.0)) + amount
    updated["AmountPaid"] = to_float(paid)
    due = dec(invoice.get("Total", 0.0)) - paid - dec(invoice.get("AmountCredited", 0.0))
    updated["AmountDue"] = to_float(due)
    updated["Payments"] = [
        *invoice.get("Payments", []),
        {
            "PaymentID": payment["PaymentID"],
            "Date": payment["Date"],
            "Amount": payment["Amount"],
            "CurrencyRate": payment["CurrencyRate"],
            **({"Reference": payment["Reference"]} if payment.get("Reference") else {}),
        },
    ]
    _settle(updated, due, payment["Date"])
    updated["UpdatedDateUTC"] = now
    return updated


def _delete(store: OrgStore, element: dict[str, Any], payment: Record, now: datetime) -> Changes:
    status = str(element.get("Status", "")).upper()
    if payment.get("Status") == "DELETED":
        raise v.Invalid([v.payment_already_deleted()])
    if status != "DELETED":
        # A payment cannot be edited in Xero; it can only be deleted and entered again.
        raise v.Invalid([v.payment_not_editable()])
    deleted = dict(payment)
    deleted["Status"] = "DELETED"
    deleted["UpdatedDateUTC"] = now
    changes = Changes([("Payments", deleted)])
    invoice = store.invoices.get(payment["Invoice"]["InvoiceID"])
    if invoice is not None:
        updated = dict(invoice)
        paid = dec(invoice.get("AmountPaid", 0.0)) - dec(payment["Amount"])
        updated["AmountPaid"] = to_float(paid)
        due = dec(invoice.get("Total", 0.0)) - paid - dec(invoice.get("AmountCredited", 0.0))
        updated["AmountDue"] = to_float(due)
        updated["Payments"] = [
            p for p in invoice.get("Payments", []) if p["PaymentID"] != payment["PaymentID"]
        ]
        _settle(updated, due, None)
        updated["UpdatedDateUTC"] = now
        changes.add("Invoices", updated)
    return changes


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Stored records never hold None (Xero omits absent fields; the encoder relies on it)."""
    return {key: value for key, value in values.items() if value is not None}


def _settle(invoice: Record, due: Decimal, paid_on: date | None) -> None:
    if due <= 0 and dec(invoice.get("Total", 0.0)) > 0:
        invoice["Status"] = "PAID"
        if paid_on is not None:
            invoice["FullyPaidOnDate"] = paid_on
    elif invoice.get("Status") == "PAID":
        invoice["Status"] = "AUTHORISED"
        invoice.pop("FullyPaidOnDate", None)


def _rate(element: dict[str, Any], invoice: Record) -> float:
    try:
        rate = v.as_number(element.get("CurrencyRate"))
    except (TypeError, ValueError):
        rate = None
    return rate if rate and rate > 0 else float(invoice.get("CurrencyRate", 1.0))


def _resolve_invoice(store: OrgStore, value: Any) -> Record | None:
    if not isinstance(value, dict):
        return None
    if value.get("InvoiceID"):
        return store.invoices.get(str(value["InvoiceID"]))
    if value.get("InvoiceNumber"):
        matches = store.invoices.all_by("number", str(value["InvoiceNumber"]))
        return (
            matches[0]
            if len(matches) == 1
            else store.invoices.by("accrec_number", str(value["InvoiceNumber"]))
        )
    return None


def _resolve_account(store: OrgStore, value: Any) -> Record | None:
    if not isinstance(value, dict):
        return None
    account = None
    if value.get("AccountID"):
        account = store.accounts.get(str(value["AccountID"]))
    elif value.get("Code"):
        account = store.account_by_code(str(value["Code"]))
    if account is None or account.get("Status") != "ACTIVE":
        return None
    if account.get("Type") != "BANK" and not account.get("EnablePaymentsToAccount"):
        return None
    return account


# -------------------------------------------------------------------------------------------- allocations
def build_allocation(
    store: OrgStore, credit_note_id: str, element: dict[str, Any], *, now: datetime
) -> tuple[Changes, Record]:
    """Allocate part of an AUTHORISED credit note to an AUTHORISED invoice of the same side and currency."""
    credit_note = store.credit_notes.get(credit_note_id)
    assert credit_note is not None
    invoice = _resolve_invoice(store, element.get("Invoice"))
    errors: list[str] = []
    if invoice is None:
        errors.append(v.invoice_not_found())
    try:
        amount = v.as_number(element.get("Amount"))
    except (TypeError, ValueError):
        amount = None
    if amount is None or amount <= 0:
        errors.append(v.payment_amount_required())
    try:
        allocated_on = parse_date_input(element["Date"]) if element.get("Date") else now.date()
    except BadDate:
        errors.append(v.bad_date("Date"))
        allocated_on = now.date()
    if credit_note.get("Status") != "AUTHORISED" or (
        invoice is not None and invoice.get("Status") != "AUTHORISED"
    ):
        errors.append(v.payment_not_authorised())
    if invoice is not None:
        side = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}[credit_note["Type"]]
        if invoice.get("Type") != side or invoice.get("CurrencyCode") != credit_note.get("CurrencyCode"):
            errors.append(v.bad_value("Invoice", invoice.get("InvoiceNumber") or invoice["InvoiceID"]))
    if not errors and invoice is not None and amount is not None:
        value = money(dec(amount))
        if value > dec(credit_note.get("RemainingCredit", 0.0)) or value > dec(invoice.get("AmountDue", 0.0)):
            errors.append(v.allocation_exceeds())
    if errors:
        raise v.Invalid(errors)
    assert invoice is not None and amount is not None

    value = money(dec(amount))
    allocation_id = store.new_id()
    allocation: Record = {
        "AllocationID": allocation_id,
        "Amount": to_float(value),
        "Date": allocated_on,
        "Invoice": _compact(
            {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber")}
        ),
        "CreditNote": _compact(
            {
                "CreditNoteID": credit_note["CreditNoteID"],
                "CreditNoteNumber": credit_note.get("CreditNoteNumber"),
            }
        ),
    }
    cn = dict(credit_note)
    cn["Allocations"] = [
        *credit_note.get("Allocations", []),
        {k: allocation[k] for k in ("AllocationID", "Amount", "Date", "Invoice")},
    ]
    remaining = dec(credit_note.get("RemainingCredit", 0.0)) - value
    cn["RemainingCredit"] = to_float(remaining)
    cn["AppliedAmount"] = to_float(dec(credit_note.get("AppliedAmount", 0.0)) + value)
    if remaining <= 0:
        cn["Status"] = "PAID"
        cn["FullyPaidOnDate"] = allocated_on
    cn["UpdatedDateUTC"] = now

    inv = dict(invoice)
    credited = dec(invoice.get("AmountCredited", 0.0)) + value
    inv["AmountCredited"] = to_float(credited)
    due = dec(invoice.get("Total", 0.0)) - dec(invoice.get("AmountPaid", 0.0)) - credited
    inv["AmountDue"] = to_float(due)
    inv["CreditNotes"] = [
        *invoice.get("CreditNotes", []),
        _compact(
            {
                "CreditNoteID": credit_note["CreditNoteID"],
                "CreditNoteNumber": credit_note.get("CreditNoteNumber"),
                "AppliedAmount": to_float(value),
                "Date": allocated_on,
                "Total": credit_note.get("Total"),
            }
        ),
    ]
    _settle(inv, due, allocated_on)
    inv["UpdatedDateUTC"] = now
    return Changes([("CreditNotes", cn), ("Invoices", inv)]), allocation
