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
    page_size: bool = True  # the spec takes pageSize (Quotes and LinkedTransactions page by 100 only)
    modified_since: bool = True  # the spec takes If-Modified-Since (ContactGroups, ... do not: ignored)


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

# Read-only collections extractors read (Singer's tap-xero, Airbyte's source-xero): served with Xero's query
# semantics from collections that start empty but for Users (the organisation's users). Paged per the spec.
BANK_TRANSACTIONS = EntitySpec("BankTransactions", "BankTransaction", "BankTransactionID", paged=True)
BANK_TRANSFERS = EntitySpec("BankTransfers", "BankTransfer", "BankTransferID")
BATCH_PAYMENTS = EntitySpec("BatchPayments", "BatchPayment", "BatchPaymentID")
CONTACT_GROUPS = EntitySpec("ContactGroups", "ContactGroup", "ContactGroupID", modified_since=False)
EXPENSE_CLAIMS = EntitySpec("ExpenseClaims", "ExpenseClaim", "ExpenseClaimID")
JOURNALS = EntitySpec("Journals", "Journal", "JournalID")
LINKED_TRANSACTIONS = EntitySpec(
    "LinkedTransactions",
    "LinkedTransaction",
    "LinkedTransactionID",
    paged=True,
    page_size=False,
    modified_since=False,
)
MANUAL_JOURNALS = EntitySpec("ManualJournals", "ManualJournal", "ManualJournalID", paged=True)
OVERPAYMENTS = EntitySpec("Overpayments", "Overpayment", "OverpaymentID", paged=True)
PREPAYMENTS = EntitySpec("Prepayments", "Prepayment", "PrepaymentID", paged=True)
QUOTES = EntitySpec("Quotes", "Quote", "QuoteID", paged=True, page_size=False)
RECEIPTS = EntitySpec("Receipts", "Receipt", "ReceiptID")
REPEATING_INVOICES = EntitySpec(
    "RepeatingInvoices", "RepeatingInvoice", "RepeatingInvoiceID", modified_since=False
)
USERS = EntitySpec("Users", "User", "UserID")
READ_ONLY = (
    BANK_TRANSACTIONS,
    BANK_TRANSFERS,
    BATCH_PAYMENTS,
    CONTACT_GROUPS,
    EXPENSE_CLAIMS,
    JOURNALS,
    LINKED_TRANSACTIONS,
    MANUAL_JOURNALS,
    OVERPAYMENTS,
    PREPAYMENTS,
    QUOTES,
    RECEIPTS,
    REPEATING_INVOICES,
    USERS,
)

TRANSACTIONAL = (CONTACTS, ITEMS, INVOICES, CREDIT_NOTES, PURCHASE_ORDERS, PAYMENTS)
SETTINGS = (ACCOUNTS, TAX_RATES, CURRENCIES, BRANDING_THEMES, TRACKING_CATEGORIES)
BY_COLLECTION = {spec.collection: spec for spec in (*TRANSACTIONAL, *SETTINGS, *READ_ONLY)}

# URL segments served under /api.xro/2.0 (Xero documents /Organisation and answers /Organisations too).
ROUTE_SEGMENTS: frozenset[str] = frozenset(
    {spec.collection for spec in (*TRANSACTIONAL, *SETTINGS, *READ_ONLY)}
    | {"Organisation", "Organisations", "Allocations"}
)
