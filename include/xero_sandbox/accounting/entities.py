"""The entities the sandbox serves: wire collection name, SDK model, ID and number fields, paging, error flag."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntitySpec:
    collection: str  # wire collection and URL segment, e.g. "Contacts"
    model: str  # xero-python model name (schema for where/order), e.g. "Contact"
    id_field: str  # e.g. "ContactID"
    number_field: str | None = None  # second key usable in the URL and for POST matching
    paged: bool = False  # the spec pages it (page/pageSize, pagination block)
    error_flag: str | None = None  # the element's "has errors" boolean in write responses
    label: str = ""  # how Xero names it in messages ("Invoice", "Credit Note", ...)


CONTACTS = EntitySpec(
    "Contacts", "Contact", "ContactID", "ContactNumber", True, "HasValidationErrors", "Contact"
)
ITEMS = EntitySpec("Items", "Item", "ItemID", "Code", False, None, "Item")
INVOICES = EntitySpec("Invoices", "Invoice", "InvoiceID", "InvoiceNumber", True, "HasErrors", "Invoice")
CREDIT_NOTES = EntitySpec(
    "CreditNotes", "CreditNote", "CreditNoteID", "CreditNoteNumber", True, "HasErrors", "Credit Note"
)
PURCHASE_ORDERS = EntitySpec(
    "PurchaseOrders", "PurchaseOrder", "PurchaseOrderID", "PurchaseOrderNumber", True, None, "Purchase Order"
)
PAYMENTS = EntitySpec("Payments", "Payment", "PaymentID", None, True, "HasValidationErrors", "Payment")
ACCOUNTS = EntitySpec("Accounts", "Account", "AccountID", "Code", label="Account")
TAX_RATES = EntitySpec("TaxRates", "TaxRate", "TaxType", label="Tax Rate")
CURRENCIES = EntitySpec("Currencies", "Currency", "Code", label="Currency")
BRANDING_THEMES = EntitySpec("BrandingThemes", "BrandingTheme", "BrandingThemeID", label="Branding Theme")
TRACKING_CATEGORIES = EntitySpec(
    "TrackingCategories", "TrackingCategory", "TrackingCategoryID", label="Tracking Category"
)
ORGANISATIONS = EntitySpec("Organisations", "Organisation", "OrganisationID", label="Organisation")

TRANSACTIONAL = (CONTACTS, ITEMS, INVOICES, CREDIT_NOTES, PURCHASE_ORDERS, PAYMENTS)
SETTINGS = (ACCOUNTS, TAX_RATES, CURRENCIES, BRANDING_THEMES, TRACKING_CATEGORIES)
BY_COLLECTION = {spec.collection: spec for spec in (*TRANSACTIONAL, *SETTINGS)}

# URL segments served under /api.xro/2.0 (the Organisation endpoint is singular on the wire).
ROUTE_SEGMENTS: frozenset[str] = frozenset(
    {spec.collection for spec in (*TRANSACTIONAL, *SETTINGS)} | {"Organisation", "Allocations"}
)
