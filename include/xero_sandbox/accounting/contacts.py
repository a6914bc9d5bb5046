"""Contacts: create/update with Xero's partial-update semantics and validation, and the derived customer flags.

A contact is a customer once it has an ACCREC invoice and a supplier once it has an ACCPAY invoice or a purchase
order; clients cannot set either (``IsCustomer``/``IsSupplier`` are read-only, like ``Discount``, ``Website``,
``Balances`` and ``UpdatedDateUTC``, which are ignored on writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import validation as v
from .entities import CONTACTS
from .matching import match_record
from .store import Changes

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore

TEXT_FIELDS = (
    "Name",
    "FirstName",
    "LastName",
    "ContactNumber",
    "AccountNumber",
    "CompanyNumber",
    "EmailAddress",
    "BankAccountDetails",
    "TaxNumber",
    "XeroNetworkKey",
)
STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
TAX_NUMBER_TYPES = ("SSN", "EIN", "ITIN", "ATIN")
DEFAULT_LINE_AMOUNT_TYPES = ("INCLUSIVE", "EXCLUSIVE", "NONE")
ADDRESS_TYPES = ("POBOX", "STREET")
ADDRESS_FIELDS = (
    "AddressLine1",
    "AddressLine2",
    "AddressLine3",
    "AddressLine4",
    "City",
    "Region",
    "PostalCode",
    "Country",
    "AttentionTo",
)
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")
PHONE_FIELDS = ("PhoneNumber", "PhoneAreaCode", "PhoneCountryCode")
PAYMENT_TERM_TYPES = ("DAYSAFTERBILLDATE", "DAYSAFTERBILLMONTH", "OFCURRENTMONTH", "OFFOLLOWINGMONTH")


def match(store: OrgStore, element: dict[str, Any], *, method: str, path_id: str | None) -> Record | None:
    return match_record(
        store, CONTACTS, store.contacts, element, method=method, path_id=path_id, number_index="number"
    )


def new_contact(contact_id: str) -> Record:
    return {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Addresses": [],
        "Phones": [],
        "ContactPersons": [],
        "ContactGroups": [],
        "SalesTrackingCategories": [],
        "PurchasesTrackingCategories": [],
        "IsSupplier": False,
        "IsCustomer": False,
        "HasAttachments": False,
    }


def build(
    store: OrgStore,
    element: dict[str, Any],
    existing: Record | None,
    *,
    now: datetime,
    unitdp: int | None = None,
) -> Changes:
    """Apply one Contact element to ``existing`` (or a new contact); raise Invalid with Xero's messages."""
    errors: list[str] = []
    record = dict(existing) if existing else new_contact(store.new_id())

    for name in TEXT_FIELDS:
        if name in element:
            _set_text(record, name, element[name], errors)
    if isinstance(record.get("Name"), str):
        record["Name"] = record["Name"].strip()
    for name in ("AccountsReceivableTaxType", "AccountsPayableTaxType"):
        if name in element:
            value = _text(element[name], name, errors)
            if value and store.tax_rate(value) is None:
                errors.append(v.tax_type_invalid(value))
            elif value:
                record[name] = store.tax_rate(value)["TaxType"]
            else:
                record.pop(name, None)
    for name in ("SalesDefaultAccountCode", "PurchasesDefaultAccountCode"):
        if name in element:
            value = _text(element[name], name, errors)
            if value and store.account_by_code(value) is None:
                errors.append(v.account_code_invalid(value))
            elif value:
                record[name] = value
            else:
                record.pop(name, None)
    _set_enum(record, element, "ContactStatus", STATUSES, errors)
    _set_enum(record, element, "TaxNumberType", TAX_NUMBER_TYPES, errors)
    _set_enum(record, element, "SalesDefaultLineAmountType", DEFAULT_LINE_AMOUNT_TYPES, errors)
    _set_enum(record, element, "PurchasesDefaultLineAmountType", DEFAULT_LINE_AMOUNT_TYPES, errors)
    if "DefaultCurrency" in element:
        code = (_text(element["DefaultCurrency"], "DefaultCurrency", errors) or "").upper()
        if code and code not in store.currencies:
            errors.append(v.currency_invalid(code))
        elif code:
            record["DefaultCurrency"] = code
    if "Addresses" in element:
        record["Addresses"] = _merge_typed(
            record.get("Addresses", []),
            element["Addresses"],
            "AddressType",
            ADDRESS_TYPES,
            ADDRESS_FIELDS,
            errors,
        )
    if "Phones" in element:
        record["Phones"] = _merge_typed(
            record.get("Phones", []), element["Phones"], "PhoneType", PHONE_TYPES, PHONE_FIELDS, errors
        )
    if "ContactPersons" in element:
        record["ContactPersons"] = _contact_persons(element["ContactPersons"], errors)
    if "PaymentTerms" in element:
        record["PaymentTerms"] = _payment_terms(record.get("PaymentTerms"), element["PaymentTerms"], errors)
    for name in ("SalesTrackingCategories", "PurchasesTrackingCategories"):
        if name in element:
            record[name] = _tracking(store, element[name], errors)
    if "BrandingTheme" in element:
        theme = element["BrandingTheme"]
        theme_id = theme.get("BrandingThemeID") if isinstance(theme, dict) else None
        stored = store.branding_themes.get(theme_id) if theme_id else None
        if stored is None:
            errors.append(v.branding_theme_invalid())
        else:
            record["BrandingTheme"] = {"BrandingThemeID": stored["BrandingThemeID"], "Name": stored["Name"]}

    _validate(store, record, existing, errors)
    if errors:
        raise v.Invalid(errors)
    if existing is None or record != existing:
        record["UpdatedDateUTC"] = now
    return Changes([("Contacts", record)])


def _validate(store: OrgStore, record: Record, existing: Record | None, errors: list[str]) -> None:
    name = record.get("Name")
    if not name:
        errors.append(v.contact_name_empty())
    elif record.get("ContactStatus") == "ACTIVE":
        other = store.contacts.by("active_name", name)
        if other is not None and other["ContactID"] != record["ContactID"]:
            errors.append(v.contact_name_taken(name))
    number = record.get("ContactNumber")
    if number:
        other = store.contacts.by("number", number)
        if other is not None and other["ContactID"] != record["ContactID"]:
            errors.append(v.contact_number_taken())
    email = record.get("EmailAddress")
    if email and (existing is None or email != existing.get("EmailAddress")) and not v.valid_email(email):
        errors.append(v.email_invalid())


def _text(value: Any, name: str, errors: list[str]) -> str | None:
    try:
        return v.as_text(value)
    except TypeError:
        errors.append(v.bad_value(name, value))
        return None


def _set_text(record: Record, name: str, value: Any, errors: list[str]) -> None:
    text = _text(value, name, errors)
    if text is None:
        return
    record[name] = text


def _set_enum(
    record: Record, element: dict[str, Any], name: str, allowed: tuple[str, ...], errors: list[str]
) -> None:
    if name not in element:
        return
    value = element[name]
    if isinstance(value, str) and value.upper() in allowed:
        record[name] = value.upper()
    else:
        errors.append(v.bad_value(name, value))


def _merge_typed(
    current: list[dict[str, Any]],
    incoming: Any,
    type_field: str,
    allowed: tuple[str, ...],
    fields: tuple[str, ...],
    errors: list[str],
) -> list[dict[str, Any]]:
    """Addresses and phones update per type: sending a STREET address leaves the POBOX one as it was."""
    if not isinstance(incoming, list):
        errors.append(v.bad_value(type_field, incoming))
        return current
    merged = {entry[type_field]: dict(entry) for entry in current}
    for entry in incoming:
        if not isinstance(entry, dict):
            errors.append(v.bad_value(type_field, entry))
            continue
        kind = str(entry.get(type_field, "")).upper()
        if kind not in allowed:
            errors.append(v.bad_value(type_field, entry.get(type_field)))
            continue
        target = merged.setdefault(kind, {type_field: kind})
        for name in fields:
            if name in entry:
                text = _text(entry[name], name, errors)
                if text is not None:
                    target[name] = text
    return [merged[kind] for kind in allowed if kind in merged]


def _contact_persons(incoming: Any, errors: list[str]) -> list[dict[str, Any]]:
    if not isinstance(incoming, list):
        errors.append(v.bad_value("ContactPersons", incoming))
        return []
    persons = []
    for entry in incoming:
        if not isinstance(entry, dict):
            errors.append(v.bad_value("ContactPersons", entry))
            continue
        person: dict[str, Any] = {}
        for name in ("FirstName", "LastName", "EmailAddress"):
            if name in entry:
                text = _text(entry[name], name, errors)
                if text is not None:
                    person[name] = text
        if person.get("EmailAddress") and not v.valid_email(person["EmailAddress"]):
            errors.append(v.email_invalid())
        try:
            include = v.as_bool(entry.get("IncludeInEmails"))
        except TypeError:
            errors.append(v.bad_value("IncludeInEmails", entry.get("IncludeInEmails")))
            include = None
        person["IncludeInEmails"] = bool(include)
        persons.append(person)
    return persons


def _payment_terms(current: dict[str, Any] | None, incoming: Any, errors: list[str]) -> dict[str, Any] | None:
    if not isinstance(incoming, dict):
        errors.append(v.bad_value("PaymentTerms", incoming))
        return current
    terms = {key: dict(value) for key, value in (current or {}).items()}
    for side in ("Bills", "Sales"):
        if side not in incoming:
            continue
        term = incoming[side]
        if not isinstance(term, dict):
            errors.append(v.bad_value(f"PaymentTerms.{side}", term))
            continue
        day, kind = term.get("Day"), str(term.get("Type", "")).upper()
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 31:
            errors.append(v.bad_value(f"PaymentTerms.{side}.Day", day))
            continue
        if kind not in PAYMENT_TERM_TYPES:
            errors.append(v.bad_value(f"PaymentTerms.{side}.Type", term.get("Type")))
            continue
        terms[side] = {"Day": day, "Type": kind}
    return terms


def _tracking(store: OrgStore, incoming: Any, errors: list[str]) -> list[dict[str, Any]]:
    if not isinstance(incoming, list):
        errors.append(v.bad_value("TrackingCategories", incoming))
        return []
    out = []
    for entry in incoming:
        if not isinstance(entry, dict):
            errors.append(v.bad_value("TrackingCategories", entry))
            continue
        name, option = entry.get("TrackingCategoryName"), entry.get("TrackingOptionName")
        category = store.tracking_categories.by("name", name) if isinstance(name, str) else None
        if category is None:
            errors.append(v.tracking_invalid(str(name), None))
            continue
        chosen = next(
            (o for o in category["Options"] if o["Name"].casefold() == str(option).casefold()), None
        )
        if chosen is None:
            errors.append(v.tracking_invalid(category["Name"], str(option)))
            continue
        out.append({"TrackingCategoryName": category["Name"], "TrackingOptionName": chosen["Name"]})
    return out


def mark_role(store: OrgStore, contact_id: str, flag: str, now: datetime, changes: Changes) -> None:
    """Set IsCustomer/IsSupplier once a transaction names the contact, without touching its UpdatedDateUTC: the
    flags are derived by Xero ("automatically set when an accounts receivable invoice is generated against this
    contact", https://developer.xero.com/documentation/api/accounting/contacts), not an edit of the contact, so
    an If-Modified-Since read of Contacts does not return it. Incremental readers must derive the role from the
    transactions they read. Earlier changes of the same element are respected."""
    current = next(
        (r for name, r in reversed(changes.items) if name == "Contacts" and r["ContactID"] == contact_id),
        None,
    ) or store.contacts.get(contact_id)
    if current is None or current.get(flag):
        return
    updated = dict(current)
    updated[flag] = True
    changes.add("Contacts", updated)
