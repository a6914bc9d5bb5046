"""``OrgStore``: one Xero organisation in memory, with a small Python API for tests, the generator and admins.

The HTTP routes, the demo generator and tests all go through the same write path (``write``), so every record in
the store passed Xero's validation, got its totals computed and had its side effects applied (a contact becoming
a customer, a payment paying an invoice, stock moving). Only ``bulk_load`` bypasses it, for the generator's
already-consistent records at scale.

Thread safety: one re-entrant lock around every write. Records are immutable once stored (a write stores a new
dict), so reads take snapshots without the lock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from . import defaults
from .collection import Collection, Record
from .entities import BY_COLLECTION, READ_ONLY
from .validation import Invalid
from .wire import to_millis


def utc_now() -> datetime:
    """Default clock: real aware UTC time (the platform passes its movable ``Clock.now`` instead)."""
    return datetime.now(UTC)


class NotFound(LookupError):
    """The record a URL names does not exist (routes answer Xero's 404)."""


@dataclass
class ElementResult:
    """The outcome of one element of a write: the stored record, or Xero's validation messages."""

    element: dict[str, Any]
    record: Record | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Changes:
    """Records one element's write produces, committed together: ``(collection name, record)``, primary first."""

    items: list[tuple[str, Record]] = field(default_factory=list)

    def add(self, collection: str, record: Record) -> Record:
        self.items.append((collection, record))
        return record

    @property
    def primary(self) -> Record:
        return self.items[0][1]


def _contact_active_name(record: Record) -> str | None:
    return record.get("Name") if record.get("ContactStatus", "ACTIVE") == "ACTIVE" else None


def _contact_id_of(record: Record) -> str | None:
    contact = record.get("Contact")
    return contact.get("ContactID") if isinstance(contact, dict) else None


# Index key functions live at module level (not lambdas) so an OrgStore can be pickled with its indexes.
def _code(record: Record) -> str | None:
    return record.get("Code")


def _name(record: Record) -> str | None:
    return record.get("Name")


def _contact_number(record: Record) -> str | None:
    return record.get("ContactNumber")


def _invoice_number(record: Record) -> str | None:
    return record.get("InvoiceNumber")


def _accrec_invoice_number(record: Record) -> str | None:
    return record.get("InvoiceNumber") if record.get("Type") == "ACCREC" else None


def _credit_note_number(record: Record) -> str | None:
    return record.get("CreditNoteNumber")


def _accrec_credit_note_number(record: Record) -> str | None:
    return record.get("CreditNoteNumber") if record.get("Type") == "ACCRECCREDIT" else None


def _purchase_order_number(record: Record) -> str | None:
    return record.get("PurchaseOrderNumber")


def _payment_invoice_id(record: Record) -> str | None:
    return (record.get("Invoice") or {}).get("InvoiceID")


class OrgStore:
    """One Xero organisation (tenant), in memory.

    Public API (all thread-safe):

    * collections, each a :class:`Collection` (``get(id)``, ``by(index, key)``, ``values()``, ``len()``):
      ``contacts``, ``items``, ``invoices``, ``credit_notes``, ``purchase_orders``, ``payments``,
      ``accounts``, ``tax_rates``, ``currencies``, ``branding_themes``, ``tracking_categories``;
      ``organisation`` is the Organisation record.
    * ``count(entity)`` -> number of records of a wire collection (``"Contacts"``, ``"Invoices"``, ...).
    * ``write(entity, elements, method="POST"|"PUT", path_id=None, unitdp=None)`` -> ``list[ElementResult]``:
      Xero's create/update semantics and validation for wire-shaped elements (dicts as a client sends them);
      valid elements are saved even when others fail. Shortcuts: ``upsert_contacts``, ``create_contacts``,
      ``upsert_items``, ``create_invoices``, ``upsert_invoices``, ``create_credit_notes``,
      ``create_purchase_orders``, ``create_payments``.
    * ``delete_payment(payment_id)``, ``allocate_credit_note(credit_note_id, allocations)``,
      ``delete_item(item_id)``, ``add_currency(code)``, ``add_tracking_category(name, options)``.
    * ``bulk_load(entity, records)``: insert already-valid native records (the generator's fast path).

    Timestamps come from ``clock()`` (aware UTC), truncated to milliseconds as Xero's are.
    """

    def __init__(
        self,
        tenant_id: str,
        name: str,
        base_currency: str = "NZD",
        clock: Callable[[], datetime] = utc_now,
        country_code: str = "NZ",
    ) -> None:
        self.tenant_id = str(tenant_id).lower()
        self.name = name
        self.base_currency = base_currency.upper()
        self.country_code = "GB" if country_code.upper() == "UK" else country_code.upper()
        self.clock = clock
        self.template = defaults.country_template(self.country_code)
        self.lock = threading.RLock()
        self._id_namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"xero-sandbox:{self.tenant_id}")
        self._sequences: dict[str, int] = {}

        self.currencies = Collection("Currencies", "Code")
        self.tax_rates = Collection("TaxRates", "TaxType")
        self.accounts = Collection("Accounts", "AccountID", unique={"code": _code})
        self.branding_themes = Collection("BrandingThemes", "BrandingThemeID")
        self.tracking_categories = Collection(
            "TrackingCategories", "TrackingCategoryID", unique={"name": _name}
        )
        self.contacts = Collection(
            "Contacts",
            "ContactID",
            unique={"number": _contact_number, "active_name": _contact_active_name},
        )
        self.items = Collection("Items", "ItemID", unique={"code": _code})
        self.invoices = Collection(
            "Invoices",
            "InvoiceID",
            unique={"accrec_number": _accrec_invoice_number},
            multi={"number": _invoice_number, "contact": _contact_id_of},
        )
        self.credit_notes = Collection(
            "CreditNotes",
            "CreditNoteID",
            unique={"accrec_number": _accrec_credit_note_number},
            multi={"number": _credit_note_number, "contact": _contact_id_of},
        )
        self.purchase_orders = Collection(
            "PurchaseOrders",
            "PurchaseOrderID",
            unique={"number": _purchase_order_number},
            multi={"contact": _contact_id_of},
        )
        self.payments = Collection("Payments", "PaymentID", multi={"invoice": _payment_invoice_id})
        self._collections: dict[str, Collection] = {
            c.name: c
            for c in (
                self.currencies,
                self.tax_rates,
                self.accounts,
                self.branding_themes,
                self.tracking_categories,
                self.contacts,
                self.items,
                self.invoices,
                self.credit_notes,
                self.purchase_orders,
                self.payments,
            )
        }
        self._add_read_only_collections()
        self._seed_settings()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["lock"]  # locks cannot be pickled; a restored store gets a fresh one
        state.pop("listener", None)  # the webhook hub re-attaches itself to a restored state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()
        self._add_read_only_collections()  # a state file saved before they existed

    def _add_read_only_collections(self) -> None:
        for spec in READ_ONLY:
            self._collections.setdefault(spec.collection, Collection(spec.collection, spec.id_field))

    def put_user(self, user_id: str, email: str, first_name: str, last_name: str) -> Record:
        """The organisation's user as ``GET /Users`` shows it (the sandbox's login users who may connect it)."""
        record: Record = {
            "UserID": str(user_id).lower(),
            "EmailAddress": email,
            "FirstName": first_name,
            "LastName": last_name,
            "UpdatedDateUTC": self.now(),
            "IsSubscriber": False,
            "OrganisationRole": "STANDARD",
        }
        with self.lock:
            users = self.collection("Users")
            if users.get(record["UserID"]) is None:
                users.put(record)
            return users.get(record["UserID"]) or record

    # ---------------------------------------------------------------------------------------------- basics
    def now(self) -> datetime:
        """The organisation's clock, aware UTC, truncated to milliseconds."""
        value = self.clock()
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return to_millis(value.astimezone(UTC))

    def today(self) -> date:
        return self.now().date()

    def stable_id(self, *parts: object) -> str:
        """A GUID derived from the tenant and ``parts``: settings get the same IDs every time an org is built."""
        return str(uuid.uuid5(self._id_namespace, "/".join(str(p) for p in parts)))

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    def collection(self, entity: str) -> Collection:
        """The collection for a wire collection name (``"Contacts"``...)."""
        try:
            return self._collections[entity]
        except KeyError as exc:
            raise KeyError(f"unknown entity {entity!r}") from exc

    def count(self, entity: str) -> int:
        """How many records of a wire collection the organisation holds (``org.count("Invoices")``)."""
        return len(self.collection(entity))

    def lookup(self, model: str, stub: Any) -> Any:
        """Resolve a stored reference to the live record (an invoice's ``Contact`` -> the contact)."""
        if not isinstance(stub, dict):
            return stub
        if model == "Contact":
            return self.contacts.get(stub.get("ContactID")) or stub
        if model == "Invoice":
            return self.invoices.get(stub.get("InvoiceID")) or stub
        if model == "CreditNote":
            return self.credit_notes.get(stub.get("CreditNoteID")) or stub
        if model == "Account":
            return self.accounts.get(stub.get("AccountID")) or stub
        return stub

    def next_number(self, prefix: str, taken: Callable[[str], bool]) -> str:
        """The next free ``PREFIX-0001``-style number (Xero's organisation invoice/credit/PO settings)."""
        with self.lock:
            value = self._sequences.get(prefix, 0)
            while True:
                value += 1
                candidate = f"{prefix}-{value:04d}"
                if not taken(candidate):
                    self._sequences[prefix] = value
                    return candidate

    def note_number(self, prefix: str, number: str | None) -> None:
        """Keep the sequence ahead of numbers a client or the generator assigned explicitly."""
        if not number or not number.startswith(prefix + "-"):
            return
        tail = number[len(prefix) + 1 :]
        if tail.isdigit():
            self._sequences[prefix] = max(self._sequences.get(prefix, 0), int(tail))

    # ------------------------------------------------------------------------------------------- settings
    def _seed_settings(self) -> None:
        now = self.now()
        template = self.template
        self.organisation: Record = {
            "OrganisationID": self.tenant_id,
            "APIKey": self.stable_id("apikey").replace("-", "").upper()[:30],
            "Name": self.name,
            "LegalName": self.name,
            "PaysTax": True,
            "Version": template.version,
            "OrganisationType": "COMPANY",
            "BaseCurrency": self.base_currency,
            "CountryCode": self.country_code,
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 3,
            "SalesTaxBasis": template.sales_tax_basis,
            "SalesTaxPeriod": template.sales_tax_period,
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "CreatedDateUTC": now,
            "Timezone": template.timezone,
            "OrganisationEntityType": "COMPANY",
            "ShortCode": "!" + self.stable_id("shortcode")[:5],
            "Class": "PREMIUM",
            "Edition": "BUSINESS",
            "LineOfBusiness": "Wholesale trade",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {
                "Bills": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
                "Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
            },
        }
        self.add_currency(self.base_currency)
        for rate in template.tax_rates:
            self.tax_rates.put(
                {
                    "Name": rate.name,
                    "TaxType": rate.tax_type,
                    "TaxComponents": [
                        {"Name": rate.name, "Rate": rate.rate, "IsCompound": False, "IsNonRecoverable": False}
                    ],
                    "Status": "ACTIVE",
                    "ReportTaxType": rate.report_tax_type,
                    "CanApplyToAssets": rate.assets,
                    "CanApplyToEquity": rate.equity,
                    "CanApplyToExpenses": rate.expenses,
                    "CanApplyToLiabilities": rate.liabilities,
                    "CanApplyToRevenue": rate.revenue,
                    "DisplayTaxRate": rate.rate,
                    "EffectiveRate": rate.rate,
                }
            )
        for code, name, kind, tax, system, description in defaults.ACCOUNTS:
            tax_type = {"S": template.sales_tax, "P": template.purchases_tax}.get(tax, tax)
            if tax_type not in self.tax_rates:
                tax_type = "NONE" if "NONE" in self.tax_rates else template.sales_tax
            account: Record = {
                "AccountID": self.stable_id("account", code),
                "Code": code,
                "Name": name,
                "Status": "ACTIVE",
                "Type": kind,
                "TaxType": tax_type,
                "Description": description,
                "Class": defaults.ACCOUNT_CLASS[kind],
                "EnablePaymentsToAccount": kind == "BANK",
                "ShowInExpenseClaims": kind in ("OVERHEADS", "EXPENSE"),
                "ReportingCode": defaults.ACCOUNT_CLASS[kind][:3],
                "ReportingCodeName": defaults.ACCOUNT_CLASS[kind].title(),
                "HasAttachments": False,
                "UpdatedDateUTC": now,
                "AddToWatchlist": False,
            }
            if system:
                account["SystemAccount"] = system
            if kind == "BANK":
                account["BankAccountType"] = "BANK"
                account["BankAccountNumber"] = f"12-3456-{int(code):07d}-00"
                account["CurrencyCode"] = self.base_currency
            self.accounts.put(account)
        for theme_name, order in defaults.BRANDING_THEMES:
            self.branding_themes.put(
                {
                    "BrandingThemeID": self.stable_id("theme", theme_name),
                    "Name": theme_name,
                    "Type": "INVOICE",
                    "SortOrder": order,
                    "CreatedDateUTC": now,
                }
            )

    def add_currency(self, code: str) -> Record:
        """Enable a currency in the organisation (``GET /Currencies`` lists it; documents may use it)."""
        code = code.upper()
        record = {"Code": code, "Description": defaults.CURRENCY_NAMES.get(code, code)}
        with self.lock:
            self.currencies.put(record)
        return record

    def add_tracking_category(self, name: str, options: Iterable[str]) -> Record:
        """Create an ACTIVE tracking category with ACTIVE options (IDs stable per tenant and name)."""
        category_id = self.stable_id("tracking", name)
        record = {
            "TrackingCategoryID": category_id,
            "Name": name,
            "Status": "ACTIVE",
            "Options": [
                {
                    "TrackingOptionID": self.stable_id("tracking", name, option),
                    "Name": option,
                    "Status": "ACTIVE",
                    "TrackingCategoryID": category_id,
                }
                for option in options
            ],
        }
        with self.lock:
            self.tracking_categories.put(record)
        return record

    def account_by_code(self, code: str | None) -> Record | None:
        return self.accounts.by("code", code)

    def tax_rate(self, tax_type: str | None) -> Record | None:
        if not tax_type:
            return None
        rate = self.tax_rates.get(tax_type)
        if rate is None:
            # Tax types are upper-case codes; clients sometimes send them in other cases.
            rate = self.tax_rates.get(tax_type.upper())
        return rate

    def currency_rate(self, code: str) -> float:
        return 1.0 if code == self.base_currency else defaults.currency_rate(self.base_currency, code)

    # --------------------------------------------------------------------------------------------- writes
    def write(
        self,
        entity: str,
        elements: Iterable[Mapping[str, Any]],
        *,
        method: str = "POST",
        path_id: str | None = None,
        unitdp: int | None = None,
    ) -> list[ElementResult]:
        """Create/update wire-shaped elements with Xero's rules; each element succeeds or fails on its own.

        ``method="PUT"`` creates (an element naming an existing ID updates it); ``"POST"`` creates or updates,
        matching by ID and then by number/code. ``path_id`` targets one record (``POST /Contacts/{id}``) and
        raises :class:`NotFound` if it does not exist.
        """
        from . import writers  # the entity builders import this module

        builder = writers.builder_for(entity)
        results: list[ElementResult] = []
        with self.lock:
            for raw in elements:
                element = dict(raw)
                now = self.now()
                try:
                    existing = builder.match(self, element, method=method, path_id=path_id)
                    changes = builder.build(self, element, existing, now=now, unitdp=unitdp)
                except Invalid as exc:
                    results.append(ElementResult(element, None, exc.messages))
                    continue
                self.commit(changes)
                results.append(ElementResult(element, changes.primary))
        return results

    def commit(self, changes: Changes) -> None:
        """Store every record of one element's write (caller holds the lock); tell the webhook listener."""
        with self.lock:
            written = []
            for collection_name, record in changes.items:
                collection = self._collections[collection_name]
                written.append((collection_name, record, record.get(collection.id_field) not in collection))
                collection.put(record)
            listener = getattr(self, "listener", None)
            if listener is not None:
                listener(self.tenant_id, written)

    def create_contacts(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("Contacts", elements, method="PUT")

    def upsert_contacts(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("Contacts", elements, method="POST")

    def upsert_items(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("Items", elements, method="POST")

    def create_invoices(
        self, elements: Iterable[Mapping[str, Any]], unitdp: int | None = None
    ) -> list[ElementResult]:
        return self.write("Invoices", elements, method="PUT", unitdp=unitdp)

    def upsert_invoices(
        self, elements: Iterable[Mapping[str, Any]], unitdp: int | None = None
    ) -> list[ElementResult]:
        return self.write("Invoices", elements, method="POST", unitdp=unitdp)

    def create_credit_notes(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("CreditNotes", elements, method="PUT")

    def create_purchase_orders(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("PurchaseOrders", elements, method="PUT")

    def create_payments(self, elements: Iterable[Mapping[str, Any]]) -> list[ElementResult]:
        return self.write("Payments", elements, method="PUT")

    def delete_payment(self, payment_id: str) -> ElementResult:
        """Xero's ``POST /Payments/{id} {"Status": "DELETED"}``: the invoice gets its amount due back."""
        if self.payments.get(payment_id) is None:
            raise NotFound(payment_id)
        return self.write("Payments", [{"PaymentID": payment_id, "Status": "DELETED"}], path_id=payment_id)[0]

    def allocate_credit_note(
        self, credit_note_id: str, allocations: Iterable[Mapping[str, Any]]
    ) -> list[ElementResult]:
        """``PUT /CreditNotes/{id}/Allocations``: apply credit to invoices (each allocation on its own)."""
        from . import payments

        credit_note = self.credit_notes.get(credit_note_id)
        if credit_note is None:
            raise NotFound(credit_note_id)
        results: list[ElementResult] = []
        with self.lock:
            for raw in allocations:
                element = dict(raw)
                try:
                    changes, allocation = payments.build_allocation(
                        self, credit_note_id, element, now=self.now()
                    )
                except Invalid as exc:
                    results.append(ElementResult(element, None, exc.messages))
                    continue
                self.commit(changes)
                results.append(ElementResult(element, allocation))
        return results

    def delete_item(self, item_id: str) -> Record:
        """``DELETE /Items/{id}`` (items are the one entity Xero deletes outright)."""
        with self.lock:
            record = self.items.get(item_id) or self.items.by("code", item_id)
            if record is None:
                raise NotFound(item_id)
            self.items.remove(record["ItemID"])
            return record

    # ------------------------------------------------------------------------------------------- bulk load
    def bulk_load(self, entity: str, records: list[Record]) -> None:
        """Insert native, already-consistent records without validation (the generator's path at scale).

        Records must carry every field the write path would have computed (totals, AmountDue, flags...).
        """
        with self.lock:
            self.collection(entity).put_many(records)
            spec = BY_COLLECTION.get(entity)
            number_field = spec.number_field if spec else None
            prefix = {"InvoiceNumber": "INV", "CreditNoteNumber": "CN", "PurchaseOrderNumber": "PO"}.get(
                number_field or ""
            )
            if prefix:
                # Only the auto-numbered kinds share the sequence (ACCPAY bills carry suppliers' own numbers).
                numbered_type = {"INV": "ACCREC", "CN": "ACCRECCREDIT"}.get(prefix)
                for record in records:
                    if numbered_type is None or record.get("Type") == numbered_type:
                        self.note_number(prefix, record.get(number_field))
