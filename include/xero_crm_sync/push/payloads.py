"""CRM rows -> the Xero elements the push sends (pure functions; the field lists are the requirements').

Contacts (P1): name, email, default currency, contact status, tax type (AccountsReceivableTaxType), tax number,
phone and mobile, billing address (POBOX, the one the import reads first) and the contact person's name. On
creation only: ContactNumber = the CRM id (so later matching and retries find it, P9) and the template ledger's
defaults (S8, P2). Updates name the ContactID and send only the P1 fields, so what the accounts team set in Xero
(payment terms, tracking, branding theme, discount) is never overwritten.

Items (P3): code, name, description, sales unit price, sales account code, sales tax type, purchase unit price and
purchase account code (a tracked item's purchase account is its COGS account, as the import reads it).

Invoices (P6): ACCREC, status DRAFT, customer by ContactID, currency, customer reference, one line per order line,
plus a delivery line when the order has a delivery charge.

Empty CRM values: omitted on creation; on update a cleared text field is sent as "" so Xero clears it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# What a new contact copies from the template ledger (P2). Xero's API treats Contact.Discount as read-only
# (xero_accounting.yaml: "The default discount rate for the contact (read only)"), so it cannot be copied.
TEMPLATE_FIELDS = (
    "BrandingTheme",
    "PaymentTerms",
    "SalesTrackingCategories",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
)
DELIVERY_DESCRIPTION = "Delivery"


@dataclass(frozen=True)
class CustomerFields:
    """One row of the push_customer_fields view."""

    id: int
    accounting_code: str | None
    fields_hash: str
    name: str
    email: str | None = None
    currency_code: str | None = None
    contact_status: str = "ACTIVE"
    tax_type: str | None = None
    tax_number: str | None = None
    phone: str | None = None
    mobile: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    has_person: bool = False
    first_name: str | None = None
    last_name: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CustomerFields:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def is_new(self) -> bool:
        return self.accounting_code is None

    @property
    def contact_number(self) -> str:
        """What the push writes to ContactNumber on creation; the import's matching looks for it (I12)."""
        return str(self.id)


@dataclass(frozen=True)
class ProductFields:
    """One row of the push_product_fields view."""

    id: int
    accounting_code: str | None
    fields_hash: str
    code: str
    name: str | None = None
    description: str | None = None
    sell_price: Any = None
    sales_account_code: str | None = None
    sales_tax_type: str | None = None
    cost_price: Any = None
    purchase_account_code: str | None = None
    is_tracked: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProductFields:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def is_new(self) -> bool:
        return self.accounting_code is None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def number(value: Any) -> float | None:
    """A CRM NUMERIC (Decimal on PostgreSQL, float on SQLite) as a JSON number with at most 4 places."""
    if value is None:
        return None
    return float(round(Decimal(str(value)), 4))


def _put(element: dict[str, Any], key: str, value: Any, *, clear: bool) -> None:
    """Set a text field: omitted when empty on creation, sent as "" (clear it in Xero) on update."""
    value = _text(value)
    if value is not None:
        element[key] = value
    elif clear:
        element[key] = ""


def template_defaults(template_contact: Mapping[str, Any] | None) -> dict[str, Any]:
    """The P2 fields of the template contact (S8) as a new contact's element expects them."""
    if not template_contact:
        return {}
    out: dict[str, Any] = {}
    theme = template_contact.get("BrandingTheme")
    if isinstance(theme, Mapping) and theme.get("BrandingThemeID"):
        out["BrandingTheme"] = {"BrandingThemeID": theme["BrandingThemeID"]}
    terms = template_contact.get("PaymentTerms")
    if isinstance(terms, Mapping):
        kept = {
            side: {"Day": term["Day"], "Type": term["Type"]}
            for side, term in terms.items()
            if side in ("Sales", "Bills") and isinstance(term, Mapping) and "Day" in term and "Type" in term
        }
        if kept:
            out["PaymentTerms"] = kept
    tracking = template_contact.get("SalesTrackingCategories")
    if isinstance(tracking, list) and tracking:
        out["SalesTrackingCategories"] = [
            {"TrackingCategoryName": t["TrackingCategoryName"], "TrackingOptionName": t["TrackingOptionName"]}
            for t in tracking
            if isinstance(t, Mapping) and t.get("TrackingCategoryName") and t.get("TrackingOptionName")
        ]
    for key in ("SalesDefaultAccountCode", "PurchasesDefaultAccountCode"):
        if _text(template_contact.get(key)):
            out[key] = template_contact[key]
    return out


def contact_element(customer: CustomerFields, template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Contact element for one customer: a creation (with the template's defaults) or an update."""
    update = not customer.is_new
    element: dict[str, Any] = {}
    if update:
        element["ContactID"] = customer.accounting_code
    else:
        element["ContactNumber"] = customer.contact_number
    element["Name"] = (customer.name or "").strip()
    _put(element, "EmailAddress", customer.email, clear=update)
    if _text(customer.currency_code):  # Xero cannot clear a default currency
        element["DefaultCurrency"] = customer.currency_code.strip().upper()
    element["ContactStatus"] = customer.contact_status
    _put(element, "AccountsReceivableTaxType", customer.tax_type, clear=update)
    _put(element, "TaxNumber", customer.tax_number, clear=update)
    if customer.has_person:
        _put(element, "FirstName", customer.first_name, clear=update)
        _put(element, "LastName", customer.last_name, clear=update)
    phones = []
    # The CRM keeps one dialable string (the import joins country, area and number); sending it as the number
    # with the other parts emptied keeps the round trip stable.
    for phone_type, value in (("DEFAULT", customer.phone), ("MOBILE", customer.mobile)):
        if _text(value) or update:
            phones.append(
                {
                    "PhoneType": phone_type,
                    "PhoneNumber": _text(value) or "",
                    "PhoneAreaCode": "",
                    "PhoneCountryCode": "",
                }
            )
    if phones:
        element["Phones"] = phones
    address_parts = {
        "AddressLine1": customer.address_line1,
        "AddressLine2": customer.address_line2,
        "City": customer.city,
        "Region": customer.region,
        "PostalCode": customer.postal_code,
        "Country": customer.country,
    }
    if update or any(_text(v) for v in address_parts.values()):
        address: dict[str, Any] = {"AddressType": "POBOX"}
        for key, value in address_parts.items():
            _put(address, key, value, clear=update)
        element["Addresses"] = [address]
    if not update and template:
        element.update({key: value for key, value in template.items() if key in TEMPLATE_FIELDS})
    return element


def item_element(product: ProductFields) -> dict[str, Any]:
    """The Item element for one product (creation or update; Xero matches a POSTed Code to its item)."""
    update = not product.is_new
    element: dict[str, Any] = {}
    if update:
        element["ItemID"] = product.accounting_code
    element["Code"] = (product.code or "").strip()
    _put(element, "Name", product.name, clear=update)
    _put(element, "Description", product.description, clear=update)
    sales: dict[str, Any] = {}
    if product.sell_price is not None:
        sales["UnitPrice"] = number(product.sell_price)
    if _text(product.sales_account_code):
        sales["AccountCode"] = product.sales_account_code.strip()
    if _text(product.sales_tax_type):
        sales["TaxType"] = product.sales_tax_type.strip()
    if sales:
        element["SalesDetails"] = sales
    purchase: dict[str, Any] = {}
    if product.cost_price is not None:
        purchase["UnitPrice"] = number(product.cost_price)
    if _text(product.purchase_account_code):
        key = "COGSAccountCode" if product.is_tracked and update else "AccountCode"
        purchase[key] = product.purchase_account_code.strip()
    if purchase:
        element["PurchaseDetails"] = purchase
    return element


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    item_code: str | None
    description: str | None
    quantity: Any
    unit_price: Any
    tax_type: str | None
    discount_rate: Any
    account_code: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OrderLine:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class OrderHeader:
    id: int
    order_number: str | None
    contact_id: str
    currency_code: str | None
    customer_reference: str | None
    delivery_charge: Any
    order_date: Any


def invoice_number(order: OrderHeader) -> str:
    """The invoice's number in Xero, set by us: the CRM order number (else `SO-<order id>`). It is the natural key
    that finds the order's invoice again when a create's answer was lost and its Idempotency-Key may have expired
    (Xero keeps a key 6 minutes), and Xero refuses a second ACCREC invoice with the same number."""
    return _text(order.order_number) or f"SO-{order.id}"


def _date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def invoice_element(
    order: OrderHeader,
    lines: list[OrderLine],
    *,
    delivery_account_code: str | None = None,
    delivery_tax_type: str | None = None,
) -> dict[str, Any]:
    """The Draft ACCREC invoice for a confirmed order (P6)."""
    element: dict[str, Any] = {
        "Type": "ACCREC",
        "Status": "DRAFT",
        "Contact": {"ContactID": order.contact_id},
        "InvoiceNumber": invoice_number(order),
        "LineAmountTypes": "Exclusive",
    }
    if _text(order.currency_code):
        element["CurrencyCode"] = order.currency_code.strip().upper()
    if _text(order.customer_reference):
        element["Reference"] = order.customer_reference.strip()
    if _date(order.order_date):
        element["Date"] = _date(order.order_date)
    items = []
    for line in lines:
        item: dict[str, Any] = {}
        if _text(line.item_code):
            item["ItemCode"] = line.item_code.strip()
        item["Description"] = _text(line.description) or _text(line.item_code) or f"Line {line.line_no}"
        item["Quantity"] = number(line.quantity)
        item["UnitAmount"] = number(line.unit_price)
        if _text(line.tax_type):
            item["TaxType"] = line.tax_type.strip()
        if line.discount_rate is not None and number(line.discount_rate):
            item["DiscountRate"] = number(line.discount_rate)
        if _text(line.account_code):
            item["AccountCode"] = line.account_code.strip()
        items.append(item)
    charge = number(order.delivery_charge) or 0.0
    if charge:
        delivery: dict[str, Any] = {
            "Description": DELIVERY_DESCRIPTION,
            "Quantity": 1.0,
            "UnitAmount": charge,
        }
        if delivery_account_code:
            delivery["AccountCode"] = delivery_account_code
        if delivery_tax_type:
            delivery["TaxType"] = delivery_tax_type
        items.append(delivery)
    element["LineItems"] = items
    return element
