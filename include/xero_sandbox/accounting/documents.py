"""Invoices, credit notes and purchase orders: lines, totals, numbering, status workflow and side effects.

The three share Xero's document model (a contact, dated, in a currency, with LineItems whose amounts are
Exclusive/Inclusive/NoTax of tax) and differ in types, numbering, statuses and what they do to other records:

* invoices: ACCREC numbered ``INV-0001`` (unique), ACCPAY free-form; AmountDue/AmountPaid/AmountCredited;
  DRAFT -> SUBMITTED -> AUTHORISED -> PAID (PAID only through payments/credit), DRAFT/SUBMITTED -> DELETED,
  AUTHORISED -> VOIDED (not once money is allocated); VOIDED/DELETED invoices owe nothing; approving moves
  tracked stock.
* credit notes: ACCRECCREDIT numbered ``CN-0001``, ACCPAYCREDIT; RemainingCredit; same workflow.
* purchase orders: numbered ``PO-0001``; DRAFT -> SUBMITTED -> AUTHORISED -> BILLED, DELETED before billing.

An ACCREC invoice makes its contact a customer; an ACCPAY invoice or a purchase order makes it a supplier.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from . import contacts as contact_rules
from . import validation as v
from .entities import CREDIT_NOTES, INVOICES, PURCHASE_ORDERS, EntitySpec
from .matching import match_record
from .store import Changes
from .totals import (
    EXCLUSIVE,
    INCLUSIVE,
    LINE_AMOUNT_TYPES,
    NO_TAX,
    LineTotals,
    dec,
    document_totals,
    line_totals,
    to_float,
)
from .wire import BadDate, parse_date_input

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore

FOUR_PLACES = Decimal("0.0001")
TWO_PLACES = Decimal("0.01")
UNUSABLE_SYSTEM_ACCOUNTS = {"DEBTORS", "CREDITORS", "GST", "RETAINEDEARNINGS", "GSTONIMPORTS", "HISTORICAL"}


@dataclass(frozen=True)
class DocumentKind:
    spec: EntitySpec
    collection: str
    types: tuple[str, ...]  # allowed Type values; empty for purchase orders (no Type)
    sales_types: frozenset[str]
    prefixes: dict[str, str]  # Type (or "" for POs) -> auto-number prefix
    unique_number_index: str
    statuses: tuple[str, ...]
    create_statuses: frozenset[str]
    transitions: dict[str, frozenset[str]]
    final_statuses: frozenset[str]  # no edits at all
    date_fields: tuple[str, ...]
    text_fields: tuple[str, ...]
    label: str
    has_amounts: bool = True
    extra_defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def id_field(self) -> str:
        return self.spec.id_field

    @property
    def number_field(self) -> str:
        return self.spec.number_field or ""


_INVOICE_FLOW = {
    "DRAFT": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"}),
    "AUTHORISED": frozenset({"AUTHORISED", "VOIDED"}),
    "PAID": frozenset({"PAID"}),
    "VOIDED": frozenset({"VOIDED"}),
    "DELETED": frozenset({"DELETED"}),
}

INVOICE = DocumentKind(
    spec=INVOICES,
    collection="Invoices",
    types=("ACCREC", "ACCPAY"),
    sales_types=frozenset({"ACCREC"}),
    prefixes={"ACCREC": "INV"},
    unique_number_index="accrec_number",
    statuses=("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"),
    create_statuses=frozenset({"DRAFT", "SUBMITTED", "AUTHORISED"}),
    transitions=_INVOICE_FLOW,
    final_statuses=frozenset({"PAID", "VOIDED", "DELETED"}),
    date_fields=("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"),
    text_fields=("Reference", "Url"),
    label="Invoice",
    extra_defaults={"Payments": [], "CreditNotes": [], "AmountPaid": 0.0, "AmountCredited": 0.0},
)
CREDIT_NOTE = DocumentKind(
    spec=CREDIT_NOTES,
    collection="CreditNotes",
    types=("ACCRECCREDIT", "ACCPAYCREDIT"),
    sales_types=frozenset({"ACCRECCREDIT"}),
    prefixes={"ACCRECCREDIT": "CN"},
    unique_number_index="accrec_number",
    statuses=("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"),
    create_statuses=frozenset({"DRAFT", "SUBMITTED", "AUTHORISED"}),
    transitions=_INVOICE_FLOW,
    final_statuses=frozenset({"PAID", "VOIDED", "DELETED"}),
    date_fields=("Date", "DueDate"),
    text_fields=("Reference",),
    label="Credit Note",
    extra_defaults={"Allocations": [], "Payments": []},
)
PURCHASE_ORDER = DocumentKind(
    spec=PURCHASE_ORDERS,
    collection="PurchaseOrders",
    types=(),
    sales_types=frozenset(),
    prefixes={"": "PO"},
    unique_number_index="number",
    statuses=("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"),
    create_statuses=frozenset({"DRAFT", "SUBMITTED", "AUTHORISED"}),
    transitions={
        "DRAFT": frozenset({"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"}),
        "SUBMITTED": frozenset({"SUBMITTED", "DRAFT", "AUTHORISED", "DELETED"}),
        "AUTHORISED": frozenset({"AUTHORISED", "BILLED", "DELETED"}),
        "BILLED": frozenset({"BILLED"}),
        "DELETED": frozenset({"DELETED"}),
    },
    final_statuses=frozenset({"BILLED", "DELETED"}),
    date_fields=("Date", "DeliveryDate", "ExpectedArrivalDate"),
    text_fields=("Reference", "DeliveryAddress", "AttentionTo", "Telephone", "DeliveryInstructions"),
    label="Purchase Order",
    has_amounts=False,
)
KINDS = {kind.collection: kind for kind in (INVOICE, CREDIT_NOTE, PURCHASE_ORDER)}

# Fields that change what a document is worth: refused once money has been allocated to it.
_FINANCIAL_FIELDS = ("LineItems", "Contact", "CurrencyCode", "CurrencyRate", "LineAmountTypes", "Date")
_READ_ONLY = {
    "SubTotal",
    "TotalTax",
    "Total",
    "TotalDiscount",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "RemainingCredit",
    "AppliedAmount",
    "UpdatedDateUTC",
    "UpdatedDateUTCString",
    "DateString",
    "DueDateString",
    "HasAttachments",
    "HasErrors",
    "IsDiscounted",
    "Payments",
    "CreditNotes",
    "Prepayments",
    "Overpayments",
    "Allocations",
    "FullyPaidOnDate",
    "ValidationErrors",
    "Warnings",
    "StatusAttributeString",
    "Attachments",
    "CISDeduction",
    "CISRate",
    "Type",
}


class Builder:
    """Write rules for one document kind (``match`` then ``build``, as ``OrgStore.write`` calls them)."""

    def __init__(self, kind: DocumentKind) -> None:
        self.kind = kind

    def match(
        self, store: OrgStore, element: dict[str, Any], *, method: str, path_id: str | None
    ) -> Record | None:
        collection = store.collection(self.kind.collection)
        return match_record(
            store,
            self.kind.spec,
            collection,
            element,
            method=method,
            path_id=path_id,
            number_index=self.kind.unique_number_index,
        )

    def build(
        self,
        store: OrgStore,
        element: dict[str, Any],
        existing: Record | None,
        *,
        now: datetime,
        unitdp: int | None = None,
    ) -> Changes:
        return _build_document(self.kind, store, element, existing, now=now, unitdp=unitdp)


def _build_document(
    kind: DocumentKind,
    store: OrgStore,
    element: dict[str, Any],
    existing: Record | None,
    *,
    now: datetime,
    unitdp: int | None,
) -> Changes:
    errors: list[str] = []
    changes = Changes()
    collection = store.collection(kind.collection)
    record: Record = dict(existing) if existing else _new_document(kind, store)

    # ------------------------------------------------------------------ type
    doc_type = record.get("Type", "")
    if kind.types:
        requested_type = element.get("Type")
        if existing is None:
            if not isinstance(requested_type, str) or requested_type.upper() not in kind.types:
                errors.append(
                    f"{kind.label} Type must be specified"
                    if not requested_type
                    else v.bad_value("Type", requested_type)
                )
                raise v.Invalid(errors)
            doc_type = requested_type.upper()
            record["Type"] = doc_type
        elif requested_type is not None and str(requested_type).upper() != doc_type:
            errors.append(v.bad_value("Type", requested_type))
    sales = doc_type in kind.sales_types

    # ------------------------------------------------------------------ workflow
    current = existing.get("Status") if existing else None
    requested = element.get("Status")
    if requested is not None:
        requested = str(requested).upper()
        if requested not in kind.statuses:
            errors.append(v.bad_value("Status", element.get("Status")))
            requested = None
    allocated = bool(existing) and (
        (existing.get("AmountPaid") or 0) > 0
        or (existing.get("AmountCredited") or 0) > 0
        or bool(existing.get("Allocations"))
    )
    editing = existing is not None and any(
        key not in _READ_ONLY
        and key not in (kind.id_field, "Status")
        and not (key == kind.number_field and existing.get(key) == element.get(key))
        for key in element
    )
    if existing is None:
        new_status = requested or "DRAFT"
        if new_status not in kind.create_statuses:
            raise v.Invalid([v.status_not_valid(kind.label)])
    else:
        new_status = requested or current
        if current in kind.final_statuses and (editing or new_status != current):
            raise v.Invalid([v.status_not_valid(kind.label)])
        if new_status not in kind.transitions.get(current, frozenset()):
            raise v.Invalid([v.status_not_valid(kind.label)])
        if allocated and (new_status != current or any(name in element for name in _FINANCIAL_FIELDS)):
            raise v.Invalid([v.has_allocations()])

    # ------------------------------------------------------------------ contact
    if "Contact" in element:
        contact = _resolve_contact(store, element["Contact"], changes, now, errors)
        if contact is not None:
            record["Contact"] = {"ContactID": contact["ContactID"]}
    elif existing is None:
        errors.append(v.contact_required())
    contact_record = _current_contact(store, record, changes)

    # ------------------------------------------------------------------ simple fields
    for name in kind.text_fields:
        if name in element:
            try:
                text = v.as_text(element[name])
            except TypeError:
                errors.append(v.bad_value(name, element[name]))
            else:
                if text is not None:
                    record[name] = text
    for name in kind.date_fields:
        if name in element:
            try:
                record[name] = parse_date_input(element[name])
            except BadDate:
                errors.append(v.bad_date(name))
    if existing is None and "Date" not in record:
        record["Date"] = now.date()
    if "SentToContact" in element:
        try:
            record["SentToContact"] = bool(v.as_bool(element["SentToContact"]))
        except TypeError:
            errors.append(v.bad_value("SentToContact", element["SentToContact"]))
    if "BrandingThemeID" in element:
        theme = store.branding_themes.get(str(element["BrandingThemeID"]))
        if theme is None:
            errors.append(v.branding_theme_invalid())
        else:
            record["BrandingThemeID"] = theme["BrandingThemeID"]
    if "LineAmountTypes" in element:
        lat = _line_amount_types(element["LineAmountTypes"])
        if lat is None:
            errors.append(v.bad_value("LineAmountTypes", element["LineAmountTypes"]))
        else:
            record["LineAmountTypes"] = lat
    lat = record.get("LineAmountTypes", EXCLUSIVE)

    # ------------------------------------------------------------------ currency
    if "CurrencyCode" in element:
        code = str(element["CurrencyCode"]).upper()
        if code not in store.currencies:
            errors.append(v.currency_invalid(code))
        else:
            record["CurrencyCode"] = code
    if "CurrencyCode" not in record:
        default = (contact_record or {}).get("DefaultCurrency") or store.base_currency
        record["CurrencyCode"] = default if default in store.currencies else store.base_currency
    if "CurrencyRate" in element:
        try:
            rate = v.as_number(element["CurrencyRate"])
        except (TypeError, ValueError):
            errors.append(v.bad_value("CurrencyRate", element["CurrencyRate"]))
        else:
            if rate is not None and rate > 0:
                record["CurrencyRate"] = rate
    if "CurrencyRate" not in record or ("CurrencyCode" in element and "CurrencyRate" not in element):
        record["CurrencyRate"] = store.currency_rate(record["CurrencyCode"])

    # ------------------------------------------------------------------ number
    _assign_number(kind, store, collection, record, element, existing, errors)

    # ------------------------------------------------------------------ due date from payment terms
    if kind is not PURCHASE_ORDER and "DueDate" not in record and "Date" in record:
        terms = _payment_terms(store, contact_record, sales)
        if terms:
            record["DueDate"] = due_date(record["Date"], terms)

    # ------------------------------------------------------------------ lines and totals
    require_accounts = new_status not in ("DRAFT", "DELETED")
    if "LineItems" in element:
        record["LineItems"] = build_lines(
            store,
            element["LineItems"],
            record.get("LineItems", []),
            sales=sales,
            purchase_order=kind is PURCHASE_ORDER,
            lat=lat,
            unitdp=unitdp,
            errors=errors,
        )
    elif existing is not None and lat != existing.get("LineAmountTypes"):
        record["LineItems"] = [recompute_line(store, line, lat) for line in record.get("LineItems", [])]
    lines = record.get("LineItems", [])
    if require_accounts and (new_status != current or "LineItems" in element):
        if not lines:
            errors.append(v.line_items_required())
        elif kind is not PURCHASE_ORDER and any(
            not line.get("AccountCode") and (line.get("LineAmount") or 0) != 0 for line in lines
        ):
            errors.append(v.account_code_required())

    if errors:
        raise v.Invalid(errors)

    record["Status"] = new_status
    apply_totals(record, lat)
    if kind.has_amounts:
        settle_amounts(kind, record, now)
    if existing is None or record != existing:
        record["UpdatedDateUTC"] = now
    changes.items.insert(0, (kind.collection, record))

    # ------------------------------------------------------------------ side effects
    contact_id = record["Contact"]["ContactID"]
    if kind is INVOICE:
        contact_rules.mark_role(store, contact_id, "IsCustomer" if sales else "IsSupplier", now, changes)
        move_stock(store, existing, record, now, changes)
    elif kind is PURCHASE_ORDER:
        contact_rules.mark_role(store, contact_id, "IsSupplier", now, changes)
    return changes


def _new_document(kind: DocumentKind, store: OrgStore) -> Record:
    record: Record = {
        kind.id_field: store.new_id(),
        "Status": "DRAFT",
        "LineAmountTypes": EXCLUSIVE,
        "LineItems": [],
        "HasAttachments": False,
    }
    for key, value in kind.extra_defaults.items():
        record[key] = list(value) if isinstance(value, list) else value
    return record


def _line_amount_types(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    for lat in LINE_AMOUNT_TYPES:
        if lat.lower() == value.strip().lower():
            return lat
    return None


def _resolve_contact(
    store: OrgStore, value: Any, changes: Changes, now: datetime, errors: list[str]
) -> Record | None:
    """A document's Contact by ContactID, ContactNumber or (active) Name; a new name creates the contact, as
    Xero does when an invoice names someone it has never seen."""
    if not isinstance(value, dict):
        errors.append(v.contact_required())
        return None
    contact_id = value.get("ContactID")
    if contact_id:
        found = store.contacts.get(str(contact_id))
        if found is None:
            errors.append(v.contact_not_found())
        return found
    number = value.get("ContactNumber")
    if number:
        found = store.contacts.by("number", str(number))
        if found is not None:
            return found
    name = value.get("Name")
    if isinstance(name, str) and name.strip():
        found = store.contacts.by("active_name", name)
        if found is not None:
            return found
        try:
            created = contact_rules.build(
                store, {k: value[k] for k in value if k != "ContactID"}, None, now=now
            )
        except v.Invalid as exc:
            errors.extend(exc.messages)
            return None
        changes.items.extend(created.items)
        return created.primary
    if number:
        errors.append(v.contact_not_found())
    else:
        errors.append(v.contact_required())
    return None


def _current_contact(store: OrgStore, record: Record, changes: Changes) -> Record | None:
    contact_id = (record.get("Contact") or {}).get("ContactID")
    if not contact_id:
        return None
    for name, candidate in reversed(changes.items):
        if name == "Contacts" and candidate["ContactID"] == contact_id:
            return candidate
    return store.contacts.get(contact_id)


def _assign_number(
    kind: DocumentKind,
    store: OrgStore,
    collection: Any,
    record: Record,
    element: dict[str, Any],
    existing: Record | None,
    errors: list[str],
) -> None:
    number_field = kind.number_field
    prefix = kind.prefixes.get(record.get("Type", ""))
    unique = prefix is not None
    if number_field in element:
        try:
            number = v.as_text(element[number_field])
        except TypeError:
            errors.append(v.bad_value(number_field, element[number_field]))
            return
        if number:
            number = number.strip()
            if unique:
                other = collection.by(kind.unique_number_index, number)
                if other is not None and other[kind.id_field] != record[kind.id_field]:
                    errors.append(
                        v.credit_note_number_taken() if kind is CREDIT_NOTE else v.invoice_number_taken()
                    )
                    return
                store.note_number(prefix, number)
            record[number_field] = number
            return
    if existing is None and unique and not record.get(number_field):
        record[number_field] = store.next_number(
            prefix, lambda n: collection.by(kind.unique_number_index, n) is not None
        )


def _payment_terms(store: OrgStore, contact: Record | None, sales: bool) -> dict[str, Any] | None:
    side = "Sales" if sales else "Bills"
    terms = ((contact or {}).get("PaymentTerms") or {}).get(side)
    return terms or (store.organisation.get("PaymentTerms") or {}).get(side)


def due_date(issued: date, terms: dict[str, Any]) -> date:
    """Xero's payment terms: N days after the bill date / after the end of its month, or day N of this/next month."""
    day, kind = int(terms.get("Day", 0)), terms.get("Type")
    if kind == "DAYSAFTERBILLDATE":
        return issued + timedelta(days=day)
    month_end = issued.replace(day=calendar.monthrange(issued.year, issued.month)[1])
    if kind == "DAYSAFTERBILLMONTH":
        return month_end + timedelta(days=day)
    if kind == "OFCURRENTMONTH":
        return issued.replace(day=max(1, min(day, month_end.day)))
    following = month_end + timedelta(days=1)
    last = calendar.monthrange(following.year, following.month)[1]
    return following.replace(day=max(1, min(day, last)))


# ------------------------------------------------------------------------------------------------------ lines
def build_lines(
    store: OrgStore,
    incoming: Any,
    current: list[dict[str, Any]],
    *,
    sales: bool,
    purchase_order: bool = False,
    lat: str,
    unitdp: int | None,
    errors: list[str],
) -> list[dict[str, Any]]:
    """A document's new LineItems: the sent lines replace the old ones; a sent LineItemID updates that line."""
    if not isinstance(incoming, list):
        errors.append(v.bad_value("LineItems", incoming))
        return current
    by_id = {line["LineItemID"]: line for line in current}
    lines = []
    for entry in incoming:
        if not isinstance(entry, dict):
            errors.append(v.bad_value("LineItems", entry))
            continue
        line_id = str(entry.get("LineItemID") or "").lower()
        base = dict(by_id[line_id]) if line_id in by_id else {"LineItemID": store.new_id()}
        line = _build_line(store, entry, base, sales=sales, lat=lat, unitdp=unitdp, errors=errors)
        if line is not None:
            lines.append(line)
    return lines


def _build_line(
    store: OrgStore,
    entry: dict[str, Any],
    line: dict[str, Any],
    *,
    sales: bool,
    lat: str,
    unitdp: int | None,
    errors: list[str],
) -> dict[str, Any] | None:
    count = len(errors)
    for name in ("Description", "ItemCode", "AccountCode", "TaxType"):
        if name in entry:
            try:
                text = v.as_text(entry[name])
            except TypeError:
                errors.append(v.bad_value(name, entry[name]))
                continue
            if text:
                line[name] = text.strip() if name != "Description" else text
            else:
                line.pop(name, None)
    numbers: dict[str, float | None] = {}
    for name in ("Quantity", "UnitAmount", "LineAmount", "DiscountRate", "DiscountAmount"):
        if name in entry:
            try:
                numbers[name] = v.as_number(entry[name])
            except (TypeError, ValueError):
                errors.append(v.bad_value(name, entry[name]))
    if "AccountID" in entry and "AccountCode" not in entry:
        account = store.accounts.get(str(entry["AccountID"]))
        if account is None:
            errors.append(v.account_code_invalid(str(entry["AccountID"])))
        else:
            line["AccountCode"] = account["Code"]

    # Item defaults: description, price, account and tax type come from the item unless the line says otherwise.
    if "ItemCode" in line:
        item = store.items.by("code", line["ItemCode"])
        if item is None:
            errors.append(v.item_code_invalid(line["ItemCode"]))
        else:
            line["ItemCode"] = item["Code"]
            line["Item"] = {
                "ItemID": item["ItemID"],
                "Name": item.get("Name", item["Code"]),
                "Code": item["Code"],
            }
            details = item.get("SalesDetails" if sales else "PurchaseDetails") or {}
            description = (
                item.get("Description")
                if sales
                else item.get("PurchaseDescription") or item.get("Description")
            )
            if "Description" not in line and description:
                line["Description"] = description
            if "UnitAmount" not in numbers and "LineAmount" not in numbers and "UnitAmount" not in line:
                if details.get("UnitPrice") is not None:
                    numbers["UnitAmount"] = details["UnitPrice"]
            if "AccountCode" not in line:
                code = details.get("AccountCode")
                if not sales and item.get("IsTrackedAsInventory"):
                    code = item.get("InventoryAssetAccountCode") or code
                if code:
                    line["AccountCode"] = code
            if "TaxType" not in line and details.get("TaxType"):
                line["TaxType"] = details["TaxType"]
    else:
        line.pop("Item", None)

    if "AccountCode" in line:
        account = store.account_by_code(line["AccountCode"])
        if (
            account is None
            or account.get("Status") != "ACTIVE"
            or account.get("SystemAccount") in UNUSABLE_SYSTEM_ACCOUNTS
            or account.get("Type") == "BANK"
        ):
            errors.append(v.account_code_invalid(line["AccountCode"]))
        else:
            line["AccountCode"] = account["Code"]
            line["AccountID"] = account["AccountID"]
    else:
        line.pop("AccountID", None)

    if lat == NO_TAX and "TaxType" not in entry:
        line["TaxType"] = "NONE" if store.tax_rate("NONE") else line.get("TaxType")
    if not line.get("TaxType"):
        account = store.account_by_code(line.get("AccountCode"))
        line["TaxType"] = (account or {}).get("TaxType") or (
            store.template.sales_tax if sales else store.template.purchases_tax
        )
    rate = store.tax_rate(line["TaxType"])
    if rate is None or rate.get("Status") != "ACTIVE":
        errors.append(v.tax_type_invalid(line["TaxType"]))
    else:
        line["TaxType"] = rate["TaxType"]

    if "Tracking" in entry:
        line["Tracking"] = _line_tracking(store, entry["Tracking"], errors)
    line.setdefault("Tracking", [])

    places = FOUR_PLACES if unitdp == 4 else TWO_PLACES
    for name in ("DiscountRate", "DiscountAmount"):
        if name in numbers:
            if numbers[name]:
                line[name] = numbers[name]
            else:
                line.pop(name, None)
    if "Quantity" in numbers:
        if numbers["Quantity"] is None:
            line.pop("Quantity", None)
        else:
            line["Quantity"] = float(dec(numbers["Quantity"]).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP))
    if "UnitAmount" in numbers and numbers["UnitAmount"] is not None:
        line["UnitAmount"] = float(dec(numbers["UnitAmount"]).quantize(places, rounding=ROUND_HALF_UP))
    given_amount = numbers.get("LineAmount")
    if given_amount is not None and "UnitAmount" not in numbers:
        # A line sent with only LineAmount: Xero derives the unit amount (quantity defaults to 1).
        quantity = dec(line.get("Quantity", 1.0)) or Decimal(1)
        factor = Decimal(1) - dec(line.get("DiscountRate")) / Decimal(100)
        unit = dec(given_amount) / (quantity * factor) if factor else Decimal(0)
        line["UnitAmount"] = float(unit.quantize(places, rounding=ROUND_HALF_UP))
        line.setdefault("Quantity", float(quantity))
    if "UnitAmount" in line and "Quantity" not in line:
        line["Quantity"] = 1.0
    if len(errors) > count:
        return None
    computed = recompute_line(store, line, lat)
    if given_amount is not None and "UnitAmount" in numbers:
        if abs(dec(given_amount) - dec(computed["LineAmount"])) > TWO_PLACES:
            errors.append(
                f"The line total {given_amount:.2f} does not match the expected line total {computed['LineAmount']:.2f}"
            )
            return None
    elif given_amount is not None:
        # Derived unit amounts can be a cent off the amount the client meant; keep the client's line total.
        computed = recompute_line(store, computed, lat, line_amount=dec(given_amount))
    return computed


def recompute_line(
    store: OrgStore, line: dict[str, Any], lat: str, line_amount: Decimal | None = None
) -> dict[str, Any]:
    """A line with LineAmount and TaxAmount computed from its quantity, unit amount, discount and tax rate."""
    out = dict(line)
    rate = store.tax_rate(out.get("TaxType"))
    tax_rate = dec((rate or {}).get("EffectiveRate", 0))
    if "UnitAmount" not in out and line_amount is None:
        out["LineAmount"] = 0.0
        out["TaxAmount"] = 0.0
        return out
    totals = line_totals(
        dec(out.get("Quantity", 1.0)),
        dec(out.get("UnitAmount", 0.0)),
        tax_rate,
        lat,
        dec(out.get("DiscountRate")) if out.get("DiscountRate") else None,
        dec(out.get("DiscountAmount")) if out.get("DiscountAmount") else None,
    )
    amount = totals.line_amount if line_amount is None else line_amount
    if line_amount is not None:
        # Tax follows the (client's) amount, with the same rounding.
        totals = line_totals(Decimal(1), amount, tax_rate, lat)
    out["LineAmount"] = to_float(amount)
    out["TaxAmount"] = to_float(totals.tax_amount)
    return out


def _line_tracking(store: OrgStore, incoming: Any, errors: list[str]) -> list[dict[str, Any]]:
    if not isinstance(incoming, list):
        errors.append(v.bad_value("Tracking", incoming))
        return []
    out = []
    for entry in incoming:
        if not isinstance(entry, dict):
            errors.append(v.bad_value("Tracking", entry))
            continue
        category = None
        if entry.get("TrackingCategoryID"):
            category = store.tracking_categories.get(str(entry["TrackingCategoryID"]))
        elif entry.get("Name"):
            category = store.tracking_categories.by("name", str(entry["Name"]))
        if category is None:
            errors.append(v.tracking_invalid(str(entry.get("Name") or entry.get("TrackingCategoryID")), None))
            continue
        option = None
        for candidate in category["Options"]:
            if (
                entry.get("TrackingOptionID")
                and candidate["TrackingOptionID"] == str(entry["TrackingOptionID"]).lower()
            ):
                option = candidate
            elif entry.get("Option") and candidate["Name"].casefold() == str(entry["Option"]).casefold():
                option = candidate
        if option is None:
            errors.append(
                v.tracking_invalid(
                    category["Name"], str(entry.get("Option") or entry.get("TrackingOptionID"))
                )
            )
            continue
        out.append(
            {
                "TrackingCategoryID": category["TrackingCategoryID"],
                "TrackingOptionID": option["TrackingOptionID"],
                "Name": category["Name"],
                "Option": option["Name"],
            }
        )
    return out


# ----------------------------------------------------------------------------------------------------- totals
def apply_totals(record: Record, lat: str) -> None:
    """Set SubTotal/TotalTax/Total/TotalDiscount/IsDiscounted from the (already computed) lines."""
    lines = record.get("LineItems", [])
    totals = document_totals(
        (
            LineTotals(
                dec(line.get("LineAmount", 0.0)),
                dec(line.get("TaxAmount", 0.0)),
                _line_discount(line),
            )
            for line in lines
        ),
        lat,
    )
    record["SubTotal"] = to_float(totals.sub_total)
    record["TotalTax"] = to_float(totals.total_tax)
    record["Total"] = to_float(totals.total)
    record["TotalDiscount"] = to_float(totals.total_discount)
    record["IsDiscounted"] = any(line.get("DiscountRate") or line.get("DiscountAmount") for line in lines)


def _line_discount(line: dict[str, Any]) -> Decimal:
    if "UnitAmount" not in line:
        return Decimal(0)
    gross = (dec(line.get("Quantity", 1.0)) * dec(line.get("UnitAmount"))).quantize(
        TWO_PLACES, rounding=ROUND_HALF_UP
    )
    if not (line.get("DiscountRate") or line.get("DiscountAmount")):
        return Decimal(0)
    return gross - dec(line.get("LineAmount", 0.0))


def settle_amounts(kind: DocumentKind, record: Record, now: datetime) -> None:
    """AmountDue / RemainingCredit from the total and the money allocated; VOIDED and DELETED owe nothing."""
    total = dec(record["Total"])
    status = record["Status"]
    if kind is INVOICE:
        paid, credited = dec(record.get("AmountPaid", 0.0)), dec(record.get("AmountCredited", 0.0))
        due = Decimal(0) if status in ("VOIDED", "DELETED") else total - paid - credited
        record["AmountDue"] = to_float(due)
    elif kind is CREDIT_NOTE:
        applied = sum((dec(a.get("Amount", 0.0)) for a in record.get("Allocations", [])), Decimal(0))
        remaining = Decimal(0) if status in ("VOIDED", "DELETED") else total - applied
        record["RemainingCredit"] = to_float(remaining)
        record["AppliedAmount"] = to_float(applied)


# ------------------------------------------------------------------------------------------------------ stock
def move_stock(store: OrgStore, old: Record | None, new: Record, now: datetime, changes: Changes) -> None:
    """Tracked items' QuantityOnHand and TotalCostPool follow approved invoices (and reverse when voided)."""
    deltas: dict[str, tuple[Decimal, Decimal]] = {}
    for record, sign in ((old, -1), (new, 1)):
        if record is None or record.get("Status") not in ("AUTHORISED", "PAID"):
            continue
        for line in record.get("LineItems", []):
            code = line.get("ItemCode")
            if not code:
                continue
            quantity, amount = deltas.get(code.casefold(), (Decimal(0), Decimal(0)))
            net = dec(line.get("LineAmount", 0.0))
            if record.get("LineAmountTypes") == INCLUSIVE:
                net -= dec(line.get("TaxAmount", 0.0))
            deltas[code.casefold()] = (quantity + sign * dec(line.get("Quantity", 0.0)), amount + sign * net)
    purchase = new.get("Type") == "ACCPAY"
    for code, (quantity, amount) in deltas.items():
        if not quantity and not amount:
            continue
        item = store.items.by("code", code)
        if item is None or not item.get("IsTrackedAsInventory"):
            continue
        on_hand, pool = dec(item.get("QuantityOnHand", 0.0)), dec(item.get("TotalCostPool", 0.0))
        if purchase:
            on_hand += quantity
            pool += amount
        else:
            average = (pool / on_hand) if on_hand > 0 else Decimal(0)
            on_hand -= quantity
            pool = max(Decimal(0), pool - (average * quantity).quantize(TWO_PLACES, rounding=ROUND_HALF_UP))
        updated = dict(item)
        updated["QuantityOnHand"] = float(on_hand)
        updated["TotalCostPool"] = to_float(pool.quantize(TWO_PLACES, rounding=ROUND_HALF_UP))
        updated["UpdatedDateUTC"] = now
        changes.add("Items", updated)


INVOICE_BUILDER = Builder(INVOICE)
CREDIT_NOTE_BUILDER = Builder(CREDIT_NOTE)
PURCHASE_ORDER_BUILDER = Builder(PURCHASE_ORDER)
