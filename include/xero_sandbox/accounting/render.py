"""Stored records -> what Xero sends for them, per view.

Views (as Xero varies its payloads):

* ``FULL``: a single record (``GET /Invoices/{id}``) and write responses: everything.
* ``PAGE``: paged lists (``?page=N``): everything, documents with their LineItems.
* ``LIST``: unpaged lists: documents without LineItems (Xero's compact form, to keep responses small).
* ``SUMMARY``: ``summaryOnly=true``: lightweight fields only (no lines, payments, addresses...).

Renderers return shallow copies that still hold ``date``/``datetime`` values: ``wire.dumps`` turns those into
``/Date()/`` while orjson encodes (in C, much faster than walking every record in Python). They must never
put ``None`` in their output: Xero omits absent fields rather than sending null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xero_python.accounting import models as sdk_models

from . import schema
from .entities import READ_ONLY
from .validation import ZERO_GUID
from .wire import BadDate, date_string, ms_date, parse_date_input, parse_datetime_input, utc_string

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore

FULL, PAGE, LIST, SUMMARY = "full", "page", "list", "summary"

_CONTACT_HEAVY = (
    "Addresses",
    "Phones",
    "ContactPersons",
    "PaymentTerms",
    "SalesTrackingCategories",
    "PurchasesTrackingCategories",
    "BrandingTheme",
    "Balances",
    "ContactGroups",
)
# Left out of unpaged GET /Contacts (Xero sends them with paging, summaryOnly or a single contact): the spec says
# so for MergedToContactID and the default line amount types; SDK issue threads show Xero leaving out
# PaymentTerms (XeroAPI/xero-php-oauth2#121) and the tracking categories (XeroAPI/Xero-Java#298,
# XeroAPI/Xero-NetStandard#317); ContactPersons likewise (the stricter reading). docs/SANDBOX.md.
_CONTACT_PAGED_ONLY = (
    "ContactPersons",
    "PaymentTerms",
    "SalesTrackingCategories",
    "PurchasesTrackingCategories",
    "MergedToContactID",
    "SalesDefaultLineAmountType",
    "PurchasesDefaultLineAmountType",
)
_DOCUMENT_HEAVY = ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments", "Allocations")


def contact(record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None) -> dict[str, Any]:
    out = dict(record)
    out["HasValidationErrors"] = False
    if view == SUMMARY:
        for name in _CONTACT_HEAVY:
            out.pop(name, None)
    elif view == LIST:
        for name in _CONTACT_PAGED_ONLY:
            out.pop(name, None)
    return out


def contact_summary(store: OrgStore, stub: dict[str, Any] | None) -> dict[str, Any]:
    """The contact as Xero embeds it in documents and payments: its current name and number."""
    contact_id = (stub or {}).get("ContactID")
    live = store.contacts.get(contact_id) if contact_id else None
    out: dict[str, Any] = {"ContactID": contact_id or ZERO_GUID}
    if live is not None:
        for name in ("ContactNumber", "Name", "ContactStatus"):
            if live.get(name) is not None:
                out[name] = live[name]
    out.update(
        {
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasValidationErrors": False,
        }
    )
    return out


def _lines(lines: list[dict[str, Any]], unitdp: int | None) -> list[dict[str, Any]]:
    if unitdp == 4:
        return lines
    out = []
    for line in lines:
        unit = line.get("UnitAmount")
        if unit is not None and round(unit, 2) != unit:
            line = {**line, "UnitAmount": round(unit, 2)}
        out.append(line)
    return out


def _document(
    record: Record, store: OrgStore, view: str, unitdp: int | None, dates: tuple[str, ...]
) -> dict[str, Any]:
    out = dict(record)
    out["Contact"] = contact_summary(store, record.get("Contact"))
    for name in dates:
        if record.get(name) is not None:
            out[f"{name}String"] = date_string(record[name])
    if view in (LIST, SUMMARY):
        out.pop("LineItems", None)
        if view == SUMMARY:
            for name in _DOCUMENT_HEAVY:
                out.pop(name, None)
    elif "LineItems" in record:
        out["LineItems"] = _lines(record["LineItems"], unitdp)
    out["HasErrors"] = False
    return out


def invoice(record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None) -> dict[str, Any]:
    out = _document(record, store, view, unitdp, ("Date", "DueDate"))
    if view != SUMMARY:
        out["Payments"] = [
            {**payment, "HasAccount": False, "HasValidationErrors": False}
            for payment in record.get("Payments", [])
        ]
        out["CreditNotes"] = [dict(note) for note in record.get("CreditNotes", [])]
        out["Prepayments"] = []
        out["Overpayments"] = []
    if record.get("UpdatedDateUTC") is not None:
        out["UpdatedDateUTCString"] = utc_string(record["UpdatedDateUTC"])
    return out


def credit_note(
    record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None
) -> dict[str, Any]:
    out = _document(record, store, view, unitdp, ("Date", "DueDate"))
    if view != SUMMARY:
        out["Allocations"] = [
            {**allocation, "Invoice": _invoice_reference(store, allocation.get("Invoice"))}
            for allocation in record.get("Allocations", [])
        ]
        out["Payments"] = []
    if record.get("UpdatedDateUTC") is not None:
        out["UpdatedDateUTCString"] = utc_string(record["UpdatedDateUTC"])
    return out


def purchase_order(
    record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None
) -> dict[str, Any]:
    out = _document(record, store, view, unitdp, ("Date", "DeliveryDate", "ExpectedArrivalDate"))
    out["Type"] = "PURCHASEORDER"
    return out


def _invoice_reference(store: OrgStore, stub: dict[str, Any] | None) -> dict[str, Any]:
    invoice_id = (stub or {}).get("InvoiceID")
    live = store.invoices.get(invoice_id) if invoice_id else None
    if live is None:
        return {key: value for key, value in (stub or {}).items() if value is not None}
    reference = {
        "Type": live.get("Type"),
        "InvoiceID": live["InvoiceID"],
        "InvoiceNumber": live.get("InvoiceNumber"),
        "Contact": contact_summary(store, live.get("Contact")),
        "CurrencyCode": live.get("CurrencyCode"),
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "LineItems": [],
        "HasErrors": False,
        "IsDiscounted": False,
    }
    return {key: value for key, value in reference.items() if value is not None}


def payment(record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None) -> dict[str, Any]:
    out = dict(record)
    out["Invoice"] = _invoice_reference(store, record.get("Invoice"))
    account = store.accounts.get((record.get("Account") or {}).get("AccountID"))
    if account is not None:
        out["Account"] = {"AccountID": account["AccountID"], "Code": account["Code"]}
    if record.get("UpdatedDateUTC") is not None:
        out["UpdatedDateUTCString"] = utc_string(record["UpdatedDateUTC"])
    out["HasValidationErrors"] = False
    return out


def item(record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None) -> dict[str, Any]:
    out = dict(record)
    if unitdp != 4:
        for name in ("SalesDetails", "PurchaseDetails"):
            details = record.get(name)
            if details and "UnitPrice" in details:
                out[name] = {**details, "UnitPrice": round(details["UnitPrice"], 2)}
    return out


def plain(record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None) -> dict[str, Any]:
    return record


def allocation(
    record: Record, store: OrgStore, view: str = FULL, unitdp: int | None = None
) -> dict[str, Any]:
    out = dict(record)
    out["Invoice"] = _invoice_reference(store, record.get("Invoice"))
    return out


RENDERERS: dict[str, Callable[..., dict[str, Any]]] = {
    "Contacts": contact,
    "Invoices": invoice,
    "CreditNotes": credit_note,
    "PurchaseOrders": purchase_order,
    "Payments": payment,
    "Items": item,
    "Accounts": plain,
    "TaxRates": plain,
    "Currencies": plain,
    "BrandingThemes": plain,
    "TrackingCategories": plain,
    "Allocations": allocation,
    **{spec.collection: plain for spec in READ_ONLY},
}


# -------------------------------------------------------------------------------------- failed-element echo
def echo_element(model_name: str, element: dict[str, Any]) -> dict[str, Any]:
    """A failed element as Xero echoes it: the client's fields, typed as the model has them.

    Only values the model could hold survive (a date the client sent as ``"2020-01-31"`` comes back as
    ``/Date(...)/``, an unknown enum value or field is dropped), so SDKs can deserialise the echo.
    """
    fields = schema.fields_of(model_name)
    model = getattr(sdk_models, model_name)
    reverse = {wire: attr for attr, wire in model.attribute_map.items()}
    out: dict[str, Any] = {}
    for key, value in element.items():
        field = fields.get(str(key).lower())
        if field is None or value is None:
            continue
        converted = _echo_value(field, value)
        if converted is _DROP:
            continue
        if field.kind == schema.STRING and not _accepted(model, reverse[field.name], converted):
            continue
        out[field.name] = converted
    return out


_DROP = object()


def _echo_value(field: schema.FieldType, value: Any) -> Any:
    kind = field.kind
    try:
        if kind in (schema.STRING, schema.GUID):
            return (
                value if isinstance(value, str) else str(value) if isinstance(value, int | float) else _DROP
            )
        if kind == schema.BOOL:
            return value if isinstance(value, bool) else _DROP
        if kind == schema.NUMBER:
            return value if isinstance(value, int | float) and not isinstance(value, bool) else _DROP
        if kind == schema.DATE:
            return ms_date(parse_date_input(value))
        if kind == schema.DATETIME:
            return ms_date(parse_datetime_input(value))
        if kind == schema.ENUM:
            getattr(sdk_models, field.model or "")(value)
            return value
        if kind == schema.OBJECT and field.model:
            return echo_element(field.model, value) if isinstance(value, dict) else _DROP
        if kind == schema.LIST and field.model:
            if not isinstance(value, list):
                return _DROP
            if hasattr(sdk_models, field.model) and hasattr(
                getattr(sdk_models, field.model), "attribute_map"
            ):
                return [echo_element(field.model, entry) for entry in value if isinstance(entry, dict)]
            return _DROP
    except (BadDate, ValueError, TypeError):
        return _DROP
    return _DROP


def _accepted(model: type, attr: str, value: Any) -> bool:
    """Would the SDK model accept ``value`` for this string attribute (its setters check enums)?"""
    try:
        instance = model.__new__(model)
        setattr(instance, attr, value)
    except (ValueError, TypeError):
        return False
    except AttributeError:
        return True
    return True
