"""One declarative description of each Xero entity the import reads.

This table drives everything generic about the import, the way dlt's rest_api source declares resources:
- extract: the path, whether Xero pages it, whether it honours If-Modified-Since, the query it needs;
- stage: the staging table `stg_<name>` (typed columns + the raw JSON payload) and one table per kind of line;
- validate: the `val_<name>` mirror (latest valid version of each Xero record) and the key/required checks.
Entity-specific *rules* (B2C, On Stop, status "D", ...) are not here: they live in `sql/transform/*.sql`.

Adding an entity is adding an `Entity(...)` below; nothing else in extract or stage changes. A document's
LineItems that name their CRM tables (`line_items(name, crm_document_table)`) are also loaded by the one line
template, `sql/transform/templates/upsert_document_lines.sql`, right after the step that loads the documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ColumnType = Literal["text", "int", "numeric", "bool", "timestamp", "date", "json"]
Getter = Callable[[dict[str, Any]], Any]

MISSING = object()
# Xero rounds unit prices to 2 decimals unless asked for 4; the CRM keeps 4 (and the push writes 4), so reading
# them rounded would overwrite 10.1234 with 10.12 (getItems, getInvoices and getCreditNotes take it).
UNITDP_4 = {"unitdp": "4"}


def path_getter(path: str) -> Getter:
    """`"SalesDetails.UnitPrice"` -> a function reading that nested key (MISSING when any step is absent)."""
    parts = path.split(".")

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
        return value

    return get


def _pick(items_key: str, type_key: str, wanted: tuple[str, ...]) -> Callable[[dict[str, Any]], dict | None]:
    """The first element of a typed list (Addresses, Phones) whose type is in `wanted`, in that order."""

    def pick(record: dict[str, Any]) -> dict | None:
        items = record.get(items_key)
        if not isinstance(items, list):
            return None
        for wanted_type in wanted:
            for item in items:
                if isinstance(item, dict) and item.get(type_key) == wanted_type:
                    return item
        return None

    return pick


_billing_address = _pick("Addresses", "AddressType", ("POBOX", "STREET"))
_default_phone = _pick("Phones", "PhoneType", ("DEFAULT",))
_mobile_phone = _pick("Phones", "PhoneType", ("MOBILE",))


def address_part(key: str) -> Getter:
    def get(record: dict[str, Any]) -> Any:
        address = _billing_address(record)
        return MISSING if address is None else address.get(key, MISSING)

    return get


def phone_number(which: Callable[[dict[str, Any]], dict | None]) -> Getter:
    """Xero splits phones into country, area and number; the CRM keeps one dialable string."""

    def get(record: dict[str, Any]) -> Any:
        phone = which(record)
        if phone is None:
            return MISSING
        parts = [phone.get(k) for k in ("PhoneCountryCode", "PhoneAreaCode", "PhoneNumber")]
        text = " ".join(str(p).strip() for p in parts if isinstance(p, str | int) and str(p).strip())
        return text or MISSING

    return get


@dataclass(frozen=True)
class Column:
    """A typed staging column read from each Xero record."""

    name: str
    source: str | Getter
    type: ColumnType = "text"
    required: bool = False  # validation: the value must be present and parse
    allowed: tuple[str, ...] = ()  # validation: the values Xero documents for this field (empty: any)

    @property
    def getter(self) -> Getter:
        return path_getter(self.source) if isinstance(self.source, str) else self.source


@dataclass(frozen=True)
class Lines:
    """A list inside each record (LineItems, ContactPersons) staged into its own table."""

    name: str  # table suffix: stg_<name>
    source: str  # the JSON list key, e.g. "LineItems"
    columns: tuple[Column, ...]
    # Where the import loads these lines in the CRM: the document table (keyed on operating_company_id and
    # accounting_code = the Xero id) and its line table (keyed on (<document table>_id, line_no)). Set for
    # LineItems loaded by sql/transform/templates/upsert_document_lines.sql; None: the lines are not loaded as such.
    crm_document_table: str | None = None
    crm_line_table: str | None = None

    @property
    def staging_table(self) -> str:
        return f"stg_{self.name}"

    @property
    def validated_table(self) -> str:
        return f"val_{self.name}"


@dataclass(frozen=True)
class Entity:
    name: str  # snake_case plural: staging table stg_<name>, mirror val_<name>
    path: str  # path under /api.xro/2.0
    key: str  # the Xero key field (ContactID, TaxType, Code)
    columns: tuple[Column, ...]
    paged: bool = False  # Xero pages it: page/pageSize=1000 and the pagination block
    modified_since: bool = False  # honours If-Modified-Since (incremental reads)
    include_archived: bool = False  # send includeArchived=true (Contacts: see archived ones to put On Stop)
    lines: tuple[Lines, ...] = ()
    # Incremental reads go newest-first, so a record changed while we page moves to a page already read and is
    # picked up by the next run (its UpdatedDateUTC is above the watermark) instead of shifting an unread record
    # into a page we already read (which "oldest first" would do, losing it).
    order: str | None = None
    scope_hint: str = ""  # the scope family the read needs (documentation and the connect command)
    # The secondary organisation reads it too: it only enriches CRM customers from its contacts (I13, C2).
    secondary: bool = False
    extra_params: dict[str, str] = field(default_factory=dict)

    @property
    def collection(self) -> str:
        """The JSON key of the list in Xero's response (the last path segment)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def staging_table(self) -> str:
        return f"stg_{self.name}"

    @property
    def validated_table(self) -> str:
        return f"val_{self.name}"

    @property
    def key_column(self) -> Column:
        return next(c for c in self.columns if c.source == self.key)


def line_items(name: str, crm_document_table: str) -> Lines:
    """Invoice, credit note and purchase order lines share Xero's LineItem shape (and the CRM's line shape)."""
    return Lines(
        name=name,
        source="LineItems",
        crm_document_table=crm_document_table,
        crm_line_table=f"{crm_document_table}_line",
        columns=(
            Column("line_item_id", "LineItemID"),
            Column("item_code", "ItemCode"),
            Column("description", "Description"),
            Column("quantity", "Quantity", "numeric"),
            Column("unit_amount", "UnitAmount", "numeric"),
            Column("discount_rate", "DiscountRate", "numeric"),
            Column("account_code", "AccountCode"),
            Column("tax_type", "TaxType"),
            Column("tax_amount", "TaxAmount", "numeric"),
            Column("line_amount", "LineAmount", "numeric"),
            Column("tracking", "Tracking", "json"),
        ),
    )


UPDATED = Column("updated_date_utc", "UpdatedDateUTC", "timestamp", required=True)
# Xero's documented enumerations (xero_accounting.yaml: Invoice.Status, LineAmountTypes, ...); validation holds
# back a record carrying any other value.
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
DOCUMENT_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")

ENTITIES: tuple[Entity, ...] = (
    Entity(
        name="tax_rates",
        path="TaxRates",
        key="TaxType",
        scope_hint="accounting.settings.read",
        columns=(
            Column("tax_type", "TaxType", required=True),
            Column("name", "Name", required=True),
            Column("status", "Status"),
            Column("effective_rate", "EffectiveRate", "numeric"),
            Column("display_tax_rate", "DisplayTaxRate", "numeric"),
            Column("report_tax_type", "ReportTaxType"),
        ),
    ),
    Entity(
        name="currencies",
        path="Currencies",
        key="Code",
        scope_hint="accounting.settings.read",
        columns=(
            Column("code", "Code", required=True),
            Column("description", "Description"),
        ),
    ),
    Entity(
        name="accounts",
        path="Accounts",
        key="AccountID",
        modified_since=True,
        scope_hint="accounting.settings.read",
        columns=(
            Column("account_id", "AccountID", required=True),
            Column("code", "Code"),
            Column("name", "Name"),
            Column("type", "Type"),
            Column("status", "Status"),
            Column("tax_type", "TaxType"),
            UPDATED,
        ),
    ),
    Entity(
        name="tracking_categories",
        path="TrackingCategories",
        key="TrackingCategoryID",
        scope_hint="accounting.settings.read",
        secondary=True,
        columns=(
            Column("tracking_category_id", "TrackingCategoryID", required=True),
            Column("name", "Name", required=True),
            Column("status", "Status"),
            Column("options", "Options", "json"),
        ),
    ),
    Entity(
        name="contacts",
        path="Contacts",
        key="ContactID",
        paged=True,
        modified_since=True,
        include_archived=True,
        order="UpdatedDateUTC DESC",
        scope_hint="accounting.contacts.read",
        secondary=True,
        columns=(
            Column("contact_id", "ContactID", required=True),
            Column("contact_number", "ContactNumber"),
            Column("account_number", "AccountNumber"),
            Column(
                "contact_status",
                "ContactStatus",
                required=True,
                allowed=("ACTIVE", "ARCHIVED", "GDPRREQUEST"),
            ),
            Column("name", "Name", required=True),
            Column("first_name", "FirstName"),
            Column("last_name", "LastName"),
            Column("email_address", "EmailAddress"),
            Column("is_customer", "IsCustomer", "bool"),
            Column("is_supplier", "IsSupplier", "bool"),
            Column("default_currency", "DefaultCurrency"),
            Column("tax_number", "TaxNumber"),
            Column("accounts_receivable_tax_type", "AccountsReceivableTaxType"),
            Column("accounts_payable_tax_type", "AccountsPayableTaxType"),
            Column("phone", phone_number(_default_phone)),
            Column("mobile", phone_number(_mobile_phone)),
            Column("address_line1", address_part("AddressLine1")),
            Column("address_line2", address_part("AddressLine2")),
            Column("city", address_part("City")),
            Column("region", address_part("Region")),
            Column("postal_code", address_part("PostalCode")),
            Column("country", address_part("Country")),
            Column("sales_default_account_code", "SalesDefaultAccountCode"),
            Column("purchases_default_account_code", "PurchasesDefaultAccountCode"),
            Column("discount", "Discount", "numeric"),
            Column("branding_theme_id", "BrandingTheme.BrandingThemeID"),
            Column("payment_terms", "PaymentTerms", "json"),
            Column("sales_tracking_categories", "SalesTrackingCategories", "json"),
            Column("purchases_tracking_categories", "PurchasesTrackingCategories", "json"),
            UPDATED,
        ),
        lines=(
            Lines(
                name="contact_persons",
                source="ContactPersons",
                columns=(
                    Column("first_name", "FirstName"),
                    Column("last_name", "LastName"),
                    Column("email_address", "EmailAddress"),
                    Column("include_in_emails", "IncludeInEmails", "bool"),
                ),
            ),
        ),
    ),
    Entity(
        name="items",
        path="Items",
        key="ItemID",
        modified_since=True,
        scope_hint="accounting.settings.read",
        extra_params=UNITDP_4,
        columns=(
            Column("item_id", "ItemID", required=True),
            Column("code", "Code", required=True),
            Column("name", "Name"),
            Column("description", "Description"),
            Column("purchase_description", "PurchaseDescription"),
            Column("sales_unit_price", "SalesDetails.UnitPrice", "numeric"),
            Column("sales_account_code", "SalesDetails.AccountCode"),
            Column("sales_tax_type", "SalesDetails.TaxType"),
            Column("purchase_unit_price", "PurchaseDetails.UnitPrice", "numeric"),
            Column("purchase_account_code", "PurchaseDetails.AccountCode"),
            # Tracked items carry their purchase account as the cost-of-goods-sold account instead.
            Column("purchase_cogs_account_code", "PurchaseDetails.COGSAccountCode"),
            Column("purchase_tax_type", "PurchaseDetails.TaxType"),
            Column("is_tracked", "IsTrackedAsInventory", "bool"),
            Column("inventory_asset_account_code", "InventoryAssetAccountCode"),
            Column("quantity_on_hand", "QuantityOnHand", "numeric"),
            Column("total_cost_pool", "TotalCostPool", "numeric"),
            Column("is_sold", "IsSold", "bool"),
            Column("is_purchased", "IsPurchased", "bool"),
            UPDATED,
        ),
    ),
    Entity(
        name="invoices",
        path="Invoices",
        key="InvoiceID",
        paged=True,
        modified_since=True,
        order="UpdatedDateUTC DESC",
        scope_hint="accounting.invoices.read",
        extra_params=UNITDP_4,
        columns=(
            Column("invoice_id", "InvoiceID", required=True),
            Column("invoice_number", "InvoiceNumber"),
            Column("type", "Type", required=True, allowed=("ACCREC", "ACCPAY")),
            Column("contact_id", "Contact.ContactID", required=True),
            Column("status", "Status", required=True, allowed=DOCUMENT_STATUSES),
            Column("line_amount_types", "LineAmountTypes", allowed=LINE_AMOUNT_TYPES),
            Column("date", "Date", "date"),
            Column("due_date", "DueDate", "date"),
            Column("reference", "Reference"),
            Column("currency_code", "CurrencyCode"),
            Column("currency_rate", "CurrencyRate", "numeric"),
            Column("sub_total", "SubTotal", "numeric"),
            Column("total_tax", "TotalTax", "numeric"),
            Column("total", "Total", "numeric"),
            Column("total_discount", "TotalDiscount", "numeric"),
            Column("amount_due", "AmountDue", "numeric"),
            Column("amount_paid", "AmountPaid", "numeric"),
            Column("amount_credited", "AmountCredited", "numeric"),
            Column("fully_paid_on_date", "FullyPaidOnDate", "date"),
            UPDATED,
        ),
        lines=(line_items("invoice_lines", "sales_invoice"),),
    ),
    Entity(
        name="credit_notes",
        path="CreditNotes",
        key="CreditNoteID",
        paged=True,
        modified_since=True,
        order="UpdatedDateUTC DESC",
        scope_hint="accounting.invoices.read",
        extra_params=UNITDP_4,
        columns=(
            Column("credit_note_id", "CreditNoteID", required=True),
            Column("credit_note_number", "CreditNoteNumber"),
            Column("type", "Type", required=True, allowed=("ACCRECCREDIT", "ACCPAYCREDIT")),
            Column("contact_id", "Contact.ContactID", required=True),
            Column("status", "Status", required=True, allowed=DOCUMENT_STATUSES),
            Column("line_amount_types", "LineAmountTypes", allowed=LINE_AMOUNT_TYPES),
            Column("date", "Date", "date"),
            Column("reference", "Reference"),
            Column("currency_code", "CurrencyCode"),
            Column("currency_rate", "CurrencyRate", "numeric"),
            Column("sub_total", "SubTotal", "numeric"),
            Column("total_tax", "TotalTax", "numeric"),
            Column("total", "Total", "numeric"),
            Column("remaining_credit", "RemainingCredit", "numeric"),
            UPDATED,
        ),
        lines=(line_items("credit_note_lines", "credit_note"),),
    ),
    Entity(
        name="purchase_orders",
        path="PurchaseOrders",
        key="PurchaseOrderID",
        paged=True,
        modified_since=True,
        order="UpdatedDateUTC DESC",
        scope_hint="accounting.invoices.read",
        columns=(
            Column("purchase_order_id", "PurchaseOrderID", required=True),
            Column("purchase_order_number", "PurchaseOrderNumber"),
            Column("contact_id", "Contact.ContactID", required=True),
            Column(
                "status",
                "Status",
                required=True,
                allowed=("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"),
            ),
            Column("line_amount_types", "LineAmountTypes", allowed=LINE_AMOUNT_TYPES),
            Column("date", "Date", "date"),
            Column("delivery_date", "DeliveryDate", "date"),
            Column("reference", "Reference"),
            Column("currency_code", "CurrencyCode"),
            Column("currency_rate", "CurrencyRate", "numeric"),
            Column("sub_total", "SubTotal", "numeric"),
            Column("total_tax", "TotalTax", "numeric"),
            Column("total", "Total", "numeric"),
            UPDATED,
        ),
        lines=(line_items("purchase_order_lines", "purchase_order"),),
    ),
    Entity(
        name="payments",
        path="Payments",
        key="PaymentID",
        paged=True,
        modified_since=True,
        order="UpdatedDateUTC DESC",
        scope_hint="accounting.payments.read",
        columns=(
            Column("payment_id", "PaymentID", required=True),
            Column("invoice_id", "Invoice.InvoiceID"),
            Column("credit_note_id", "CreditNote.CreditNoteID"),
            Column("date", "Date", "date"),
            Column("amount", "Amount", "numeric", required=True),
            Column("currency_rate", "CurrencyRate", "numeric"),
            Column("payment_type", "PaymentType"),
            Column("status", "Status", required=True, allowed=("AUTHORISED", "DELETED")),
            Column("reference", "Reference"),
            Column("is_reconciled", "IsReconciled", "bool"),
            UPDATED,
        ),
    ),
)

BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}


def entity(name: str) -> Entity:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown Xero entity {name!r}; known: {', '.join(BY_NAME)}") from None
