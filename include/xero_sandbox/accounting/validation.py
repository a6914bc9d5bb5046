"""Xero's validation messages and the small checks shared by every entity's write path.

Messages are Xero's own where they are known (from Xero's documentation, its OpenAPI examples and answers
developers have quoted); each builder collects them per element, so one element can carry several, as Xero's do.
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import EmailNotValidError, validate_email

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Invalid(Exception):
    """An element failed validation; ``messages`` are Xero's ValidationError messages."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID_RE.match(value))


# ---------------------------------------------------------------------------------------------------- messages
def contact_name_empty() -> str:
    return "Contact Name cannot be empty."


def contact_name_taken(name: str) -> str:
    return (
        f"The contact name {name} is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )


def contact_number_taken() -> str:
    return "Another contact has this contact number. Please enter a different contact number."


def email_invalid() -> str:
    return "Email address must be valid."


def account_code_invalid(code: str) -> str:
    return f"Account code '{code}' is not a valid code for this document."


def account_code_required() -> str:
    return "Account code must be specified"


def tax_type_invalid(tax_type: str) -> str:
    return f"The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."


def item_code_invalid(code: str) -> str:
    return f"Item code '{code}' is not valid"


def item_code_required() -> str:
    return "Item Code must be specified"


def item_code_taken(code: str) -> str:
    return f"Item code '{code}' already exists"


def invoice_number_taken() -> str:
    return "Invoice # must be unique."


def credit_note_number_taken() -> str:
    return "Credit Note # must be unique."


def line_items_required() -> str:
    return "One or more line items must be specified"


def contact_required() -> str:
    return "A Contact must be specified for this type of transaction"


def contact_not_found() -> str:
    return "The contact specified could not be found"


def not_found(entity: str, id_field: str, value: str) -> str:
    return f"{entity} with {id_field} '{value}' could not be found"


def put_existing(entity: str, id_field: str, value: str) -> str:
    return f"{entity} with {id_field} '{value}' already exists: PUT only creates, use POST to update it"


def status_not_valid(document: str) -> str:
    """Xero's answer to a status change the document's workflow does not allow (e.g. PAID -> DRAFT)."""
    return f"{document} not of valid status for modification"


def has_allocations() -> str:
    return "This document cannot be edited as it has a payment or credit note allocated to it."


def currency_invalid(code: str) -> str:
    return f"The currency code '{code}' is not a valid currency for this organisation."


def payment_not_authorised() -> str:
    return "Payments can only be made against Authorised documents."


def payment_exceeds() -> str:
    return "Payment amount exceeds the amount outstanding on this document."


def payment_amount_required() -> str:
    return "Payment amount must be greater than zero."


def invoice_not_found() -> str:
    return "Invoice could not be found."


def payment_account_invalid() -> str:
    return "Account could not be found, or does not allow payments to be made to it."


def payment_not_editable() -> str:
    return "A payment can only be deleted (Status DELETED); enter a new payment to change it."


def payment_already_deleted() -> str:
    return "This Payment has already been deleted."


def allocation_exceeds() -> str:
    return "The amount to allocate exceeds the remaining credit or the amount outstanding on the invoice."


def bad_value(field: str, value: Any) -> str:
    return f"The value '{value}' is not valid for {field}."


def bad_date(field: str) -> str:
    return f"{field} must be a valid date."


def tracking_invalid(name: str, option: str | None) -> str:
    if option is None:
        return f"Tracking category '{name}' does not exist."
    return f"Tracking option '{option}' does not exist in tracking category '{name}'."


def branding_theme_invalid() -> str:
    return "The BrandingThemeID is not valid."


# ------------------------------------------------------------------------------------------------------ checks
def valid_email(address: str) -> bool:
    """Syntax-only email check (no DNS): Xero refuses malformed addresses, not unknown domains."""
    if not address:
        return True  # an empty address clears the field
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def as_text(value: Any) -> str | None:
    """A client value for a string field: numbers become their text (Xero's JSON reader coerces them)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise TypeError(f"not text: {value!r}")


def as_number(value: Any) -> float | None:
    """A client value for a numeric field (numbers, or numeric strings as Xero's reader accepts)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"not a number: {value!r}")


def as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise TypeError(f"not a boolean: {value!r}")
