"""A seeded demo organisation: customers and suppliers, items, invoices in every state, payments, credit notes
and purchase orders, from a few dozen records up to 100,000+ contacts in seconds.

Same seed and same clock day -> the same organisation, byte for byte: every random choice comes from a
``random.Random`` seeded per entity family, GUIDs included, and every date is an offset from the clock's current
day (midnight UTC), so nothing is in the future and regenerating on the same day reproduces it exactly.

Records are built directly in the store's native shape and bulk-loaded (no per-record validation pass: that
would take minutes at 200,000 invoices). Money uses integer cents with the same half-up rounding as
``accounting.totals`` (a test proves the two agree), and every derived field is set the way the write path sets
it: totals, AmountDue/AmountPaid/AmountCredited, PAID/FullyPaidOnDate, RemainingCredit, IsCustomer/IsSupplier,
UpdatedDateUTC as the time of the record's last change.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from xero_sandbox.accounting.documents import due_date
from xero_sandbox.accounting.store import OrgStore, utc_now

Record = dict[str, Any]
FREEZE_AT_CONTACTS = 20_000

FIRST_NAMES = (
    "Jane", "John", "Aroha", "Liam", "Olivia", "Noah", "Amelia", "Oliver", "Isla", "Jack", "Charlotte", "William",
    "Mia", "James", "Harper", "Lucas", "Ella", "Hunter", "Sophie", "Mason", "Ruby", "Leo", "Grace", "Arlo", "Zoe",
    "Tama", "Emily", "George", "Ava", "Henry", "Lily", "Theo", "Chloe", "Hemi", "Maia", "Samuel", "Hannah", "Ethan",
    "Aria", "Max", "Lucy", "Thomas", "Ivy", "Daniel", "Sienna", "Benjamin", "Georgia", "Finn", "Anika", "Ravi",
    "Priya", "Wei", "Mei", "Sione", "Losa", "Mateo", "Sofia", "Omar", "Fatima", "Kenji", "Yuki", "Connor", "Erin",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Williams", "Brown", "Wilson", "Taylor", "Jones", "Walker", "Thompson", "Anderson", "White",
    "Harris", "Martin", "Clarke", "Young", "King", "Wright", "Scott", "Green", "Baker", "Hall", "Robinson",
    "Campbell", "Stewart", "Turner", "Parker", "Collins", "Edwards", "Morris", "Murphy", "Cook", "Rogers",
    "Ngata", "Parata", "Tuhoe", "Kaur", "Singh", "Patel", "Chen", "Wang", "Li", "Nguyen", "Tanaka", "Kim",
    "Fonoti", "Tupou", "O'Brien", "McDonald", "MacKenzie", "Fraser", "Reid", "Ross", "Hughes", "Price", "Bell",
    "Ward", "Cox", "Gray", "James", "Watson", "Brooks", "Kelly", "Sanders", "Bennett", "Wood", "Barnes",
)  # fmt: skip
BUSINESS_FIRST = (
    "Acme", "Harbour", "Kowhai", "Summit", "Pacific", "Southern", "Northern", "Coastal", "Alpine", "Totara",
    "Rimu", "Kauri", "Silver", "Golden", "Blue", "Red", "Green", "Evergreen", "Pinnacle", "Horizon", "Bright",
    "Swift", "Precision", "Urban", "Rural", "Central", "Capital", "Metro", "Island", "Tasman", "Matai", "Orchard",
    "Riverside", "Lakeside", "Hillside", "Oak", "Cedar", "Maple", "Willow", "Falcon", "Kea", "Tui", "Kiwi",
    "Pioneer", "Heritage", "Modern", "Classic", "Prime", "Apex", "Vertex", "Nova", "Stellar", "Atlas", "Titan",
    "Phoenix", "Sterling", "Royal", "Crown", "Anchor", "Beacon", "Compass", "Keystone", "Lighthouse", "Meridian",
    "Orbit", "Quantum", "Ripple", "Sapphire", "Thistle", "Unity", "Vista", "Wattle", "Zenith", "Ember", "Fern",
    "Glacier", "Haven", "Ironbark", "Jade", "Kingfisher",
)  # fmt: skip
BUSINESS_NOUN = (
    "Widgets", "Plumbing", "Electrical", "Design", "Builders", "Landscaping", "Engineering", "Consulting",
    "Logistics", "Freight", "Catering", "Bakery", "Coffee", "Print", "Media", "Software", "Systems", "Solutions",
    "Supplies", "Traders", "Imports", "Exports", "Motors", "Automotive", "Joinery", "Glass", "Paints", "Roofing",
    "Flooring", "Cleaning", "Security", "Travel", "Fitness", "Health", "Dental", "Veterinary", "Accounting",
    "Legal", "Property", "Realty", "Hospitality", "Events", "Florist", "Nursery", "Hardware", "Timber", "Steel",
    "Concrete", "Drainage", "Irrigation", "Dairy", "Orchards", "Vineyards", "Brewing", "Distillers", "Fisheries",
    "Apparel", "Textiles", "Furniture", "Appliances", "Electronics", "Telecom", "Networks", "Labs", "Studio",
    "Workshop", "Garage", "Marine", "Aviation", "Education", "Tutoring", "Childcare", "Pharmacy", "Optometry",
    "Photography", "Signs", "Packaging", "Recycling", "Energy", "Solar",
)  # fmt: skip
BUSINESS_SUFFIX = ("Ltd", "Limited", "Co", "Group", "Holdings", "& Sons", "Partners", "Trust")
CITIES = (
    ("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011"), ("Christchurch", "Canterbury", "8011"),
    ("Hamilton", "Waikato", "3204"), ("Tauranga", "Bay of Plenty", "3110"), ("Dunedin", "Otago", "9016"),
    ("Napier", "Hawke's Bay", "4110"), ("Nelson", "Nelson", "7010"), ("Rotorua", "Bay of Plenty", "3010"),
    ("Palmerston North", "Manawatu", "4410"), ("Whangarei", "Northland", "0110"), ("Queenstown", "Otago", "9300"),
    ("Sydney", "NSW", "2000"), ("Melbourne", "VIC", "3000"), ("Brisbane", "QLD", "4000"), ("London", "", "EC1A"),
    ("Manchester", "", "M1"), ("New York", "NY", "10001"), ("San Francisco", "CA", "94105"),
)  # fmt: skip
COUNTRY_OF_CITY = {
    "Sydney": "Australia", "Melbourne": "Australia", "Brisbane": "Australia", "London": "United Kingdom",
    "Manchester": "United Kingdom", "New York": "United States", "San Francisco": "United States",
}  # fmt: skip
STREETS = (
    "Queen St",
    "High St",
    "Victoria Rd",
    "Lambton Quay",
    "Cuba St",
    "Ponsonby Rd",
    "Colombo St",
    "Main Rd",
)
MAIL_DOMAINS = (
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "icloud.com",
)
ITEM_FAMILIES = (
    ("WID", "Widget", ("Small", "Medium", "Large", "Deluxe", "Mini", "Pro")),
    ("BOLT", "Bolt", ("M6", "M8", "M10", "M12", "Galvanised", "Stainless")),
    ("CBL", "Cable", ("1m", "2m", "5m", "10m", "Armoured", "Flat")),
    ("SVC", "Service", ("Installation", "Call-out", "Maintenance", "Consulting hour", "Training", "Support")),
    ("PNT", "Paint", ("White 4L", "Grey 4L", "Primer 10L", "Varnish 1L", "Black 4L", "Blue 4L")),
    ("TMB", "Timber", ("90x45 2.4m", "140x45 3.6m", "Decking 4.8m", "Plywood 12mm", "MDF 18mm", "Batten 3m")),
)  # fmt: skip
FREE_TEXT_LINES = (
    "Freight", "Delivery charge", "Labour", "Site visit", "Design work", "Project management",
    "Consumables", "Travel time", "Rush fee", "Packaging",
)  # fmt: skip


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class _Rand:
    """``random.Random`` with the few draws the generator makes, minus the stdlib's per-call overhead.

    GUIDs come from a buffer of random bytes (version-4 layout), which at a million lines matters.
    """

    def __init__(self, seed: str) -> None:
        self._random = random.Random(seed)
        self.random = self._random.random
        self._hex = ""
        self._pos = 0

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high)``."""
        return low + int(self.random() * (high - low))

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.random() * len(options))]

    def weighted(self, options: Sequence[Any], weights: Sequence[float]) -> Any:
        total = sum(weights)
        point = self.random() * total
        for option, weight in zip(options, weights, strict=True):
            point -= weight
            if point < 0:
                return option
        return options[-1]

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def guid(self) -> str:
        if self._pos >= len(self._hex):
            self._hex = self._random.randbytes(16 * 4096).hex()
            self._pos = 0
        h = self._hex[self._pos : self._pos + 32]
        self._pos += 32
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


@dataclass(frozen=True)
class DemoSpec:
    """Sizes of a demo organisation; ``None`` means "proportional to contacts" (see ``resolved``)."""

    contacts: int
    items: int | None = None  # default: one per 10 contacts, at least 10
    invoices: int | None = None  # default: two per contact
    lines_per_invoice: int = 5  # average; each invoice has 3..7 by default
    payments: int | None = None  # default: about half the invoices are (fully or partly) paid
    credit_notes: int | None = None  # default: one per 20 contacts, at least 2
    purchase_orders: int | None = None  # default: one per 10 contacts, at least 2
    archived_fraction: float = 0.05
    currencies: tuple[str, ...] = ("AUD", "GBP", "USD")
    history_days: int = 730

    def resolved(self) -> DemoSpec:
        n = max(0, self.contacts)
        return replace(
            self,
            items=self.items if self.items is not None else max(10, n // 10),
            invoices=self.invoices if self.invoices is not None else 2 * n,
            payments=self.payments,
            credit_notes=self.credit_notes if self.credit_notes is not None else max(2, n // 20) if n else 0,
            purchase_orders=self.purchase_orders
            if self.purchase_orders is not None
            else max(2, n // 10)
            if n
            else 0,
        )


def generate_org(
    tenant_id: str,
    name: str,
    *,
    seed: int,
    contacts: int,
    clock: Callable[[], datetime] = utc_now,
    base_currency: str = "NZD",
    country_code: str = "NZ",
    spec: DemoSpec | None = None,
    **sizes: Any,
) -> OrgStore:
    """Build a demo organisation of ``contacts`` contacts (other sizes proportional unless given).

    ``sizes`` accepts DemoSpec's fields by name (``items=``, ``invoices=``, ``payments=``, ``credit_notes=``,
    ``purchase_orders=``, ``lines_per_invoice=``, ``archived_fraction=``...).
    """
    demo = (spec or DemoSpec(contacts=contacts, **sizes)).resolved()
    store = OrgStore(tenant_id, name, base_currency=base_currency, clock=clock, country_code=country_code)
    # Millions of new dicts trigger the cyclic GC over and over (half the run time at 100,000 contacts), yet
    # records hold no cycles: pause it while building.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _Generator(store, demo, seed).run()
    finally:
        if was_enabled:
            gc.enable()
    if demo.contacts >= FREEZE_AT_CONTACTS:
        # A big org's objects would make every later full collection walk millions of records; freezing moves
        # them (and anything else alive now) out of the collector's sight. Process-wide, so only when it pays.
        gc.freeze()
    return store


class _Generator:
    def __init__(self, store: OrgStore, demo: DemoSpec, seed: int) -> None:
        self.store = store
        self.demo = demo
        self.seed = seed
        now = store.now()
        # Everything is dated relative to today's midnight UTC: reproducible for a day, never in the future.
        self.anchor = datetime.combine(now.date(), time(), tzinfo=UTC)
        self.today = now.date()
        self.sales_tax = store.template.sales_tax
        self.purchase_tax = store.template.purchases_tax
        self.rates = {r["TaxType"]: r["EffectiveRate"] for r in store.tax_rates.values()}
        self.accounts = {a["Code"]: a for a in store.accounts.values()}
        self.currencies = [store.base_currency] + [c for c in demo.currencies if c != store.base_currency]
        self.theme_standard = store.stable_id("theme", "Standard")
        self.theme_special = store.stable_id("theme", "Special Projects")
        self.rate_of = {code: store.currency_rate(code) for code in self.currencies}
        self._day_starts: dict[date, datetime] = {}
        self._due_dates: dict[tuple[date, int, str], date] = {}
        self._template_cache: dict[tuple[int, bool], list[tuple]] = {}
        self.account_ids = {code: account["AccountID"] for code, account in self.accounts.items()}
        self.rate_millis = {tax_type: round(rate * 1000) for tax_type, rate in self.rates.items()}
        self.small_floats = {n: float(n) for n in range(0, 101)}
        self.no_tracking: list[Record] = []
        self.contact_flags: dict[str, set[str]] = {}
        self.contact_touched: dict[str, datetime] = {}

    def rng(self, family: str) -> _Rand:
        return _Rand(f"{self.seed}:{family}")

    def run(self) -> None:
        store = self.store
        for code in self.currencies[1:]:
            store.add_currency(code)
        store.add_tracking_category("Region", ("North", "South", "East", "West"))
        store.add_tracking_category("Sales Channel", ("Online", "Retail", "Wholesale"))
        self.tracking = [c for c in store.tracking_categories.values()]
        region = self.tracking[0]
        self.tracking_entries = [
            [{"TrackingCategoryID": region["TrackingCategoryID"], "TrackingOptionID": option["TrackingOptionID"],
              "Name": region["Name"], "Option": option["Name"]}]
            for option in region["Options"]
        ]  # fmt: skip
        contacts = self.contacts()
        items = self.items()
        invoices, payments = self.invoices(contacts, items)
        credit_notes = self.credit_notes(contacts, invoices)
        purchase_orders = self.purchase_orders(contacts, items)
        self.finish_contacts(contacts)
        store.bulk_load("Contacts", contacts)
        store.bulk_load("Items", items)
        store.bulk_load("Invoices", invoices)
        store.bulk_load("Payments", payments)
        store.bulk_load("CreditNotes", credit_notes)
        store.bulk_load("PurchaseOrders", purchase_orders)

    # --------------------------------------------------------------------------------------------- helpers
    def moment(self, rng: _Rand, day: date) -> datetime:
        """A time during ``day`` (business hours), never after the anchor."""
        start = self._day_starts.get(day)
        if start is None:
            start = self._day_starts[day] = datetime.combine(day, time(), tzinfo=UTC)
        stamp = start + timedelta(milliseconds=rng.between(8 * 3_600_000, 18 * 3_600_000))
        return stamp if stamp < self.anchor else self.anchor

    def due(self, issued: date, terms: dict[str, Any]) -> date:
        key = (issued, terms["Day"], terms["Type"])
        value = self._due_dates.get(key)
        if value is None:
            value = self._due_dates[key] = due_date(issued, terms)
        return value

    def past_day(self, rng: _Rand, max_days: int | None = None) -> date:
        return self.today - timedelta(days=rng.between(1, (max_days or self.demo.history_days) + 1))

    # -------------------------------------------------------------------------------------------- contacts
    def contacts(self) -> list[Record]:
        rng = self.rng("contacts")
        demo = self.demo
        names: set[str] = set()
        numbers_width = max(6, len(str(demo.contacts)))
        out: list[Record] = []
        for index in range(demo.contacts):
            consumer = rng.random() < 0.4
            role_roll = rng.random()
            role = "customer" if role_roll < 0.7 else "supplier" if role_roll < 0.9 else "both"
            if consumer:
                role = "customer"
            city, region, postcode = rng.pick(CITIES)
            country = COUNTRY_OF_CITY.get(city, "New Zealand")
            record: Record = {"ContactID": rng.guid(), "ContactStatus": "ACTIVE"}
            if consumer:
                first, last = rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)
                name = f"{first} {last}"
                if name.casefold() in names:
                    name = f"{first} {rng.pick('ABCDEFGHJKLMNPRSTW')}. {last}"
                suffix = 2
                base = name
                while name.casefold() in names:
                    name, suffix = f"{base} ({suffix})", suffix + 1
                local = f"{first}.{last}".lower().replace("'", "")
                email = f"{local}{rng.between(1, 999) if rng.random() < 0.6 else ''}@{rng.pick(MAIL_DOMAINS)}"
                record.update({"Name": name, "FirstName": first, "LastName": last, "EmailAddress": email})
                phones = [
                    {"PhoneType": "MOBILE", "PhoneNumber": f"{rng.between(200, 999)} {rng.between(1000, 9999)}",
                     "PhoneAreaCode": "021", "PhoneCountryCode": "64"},
                ]  # fmt: skip
            else:
                head = rng.pick(BUSINESS_FIRST) if rng.random() < 0.8 else rng.pick(CITIES)[0]
                name = f"{head} {rng.pick(BUSINESS_NOUN)} {rng.pick(BUSINESS_SUFFIX)}"
                suffix = 2
                base = name
                while name.casefold() in names:
                    name, suffix = f"{base} ({suffix})", suffix + 1
                slug = "".join(ch for ch in base.split(" ")[0] + base.split(" ")[1] if ch.isalnum()).lower()
                record.update({"Name": name, "EmailAddress": f"accounts@{slug}.co.nz"})
                if rng.random() < 0.6:
                    person_first, person_last = rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)
                    record["FirstName"], record["LastName"] = person_first, person_last
                    record["ContactPersons"] = [
                        {"FirstName": person_first, "LastName": person_last,
                         "EmailAddress": f"{person_first.lower()}@{slug}.co.nz", "IncludeInEmails": True},
                    ]  # fmt: skip
                if rng.random() < 0.5:
                    record["TaxNumber"] = (
                        f"{rng.between(10, 99)}-{rng.between(100, 999)}-{rng.between(100, 999)}"
                    )
                if rng.random() < 0.4:
                    record["Website"] = f"https://www.{slug}.co.nz"
                if rng.random() < 0.3:
                    record["CompanyNumber"] = str(rng.between(1_000_000, 9_999_999))
                phones = [
                    {"PhoneType": "DEFAULT", "PhoneNumber": f"{rng.between(200, 999)} {rng.between(1000, 9999)}",
                     "PhoneAreaCode": "09", "PhoneCountryCode": "64"},
                ]  # fmt: skip
            names.add(name.casefold())
            record["Addresses"] = [
                {"AddressType": "POBOX", "AddressLine1": f"PO Box {rng.between(1, 99999)}", "City": city,
                 "Region": region, "PostalCode": postcode, "Country": country},
                {"AddressType": "STREET", "AddressLine1": f"{rng.between(1, 400)} {rng.pick(STREETS)}",
                 "City": city, "Region": region, "PostalCode": postcode, "Country": country},
            ]  # fmt: skip
            record["Phones"] = phones
            record.setdefault("ContactPersons", [])
            record["ContactGroups"] = []
            record["SalesTrackingCategories"] = []
            record["PurchasesTrackingCategories"] = []
            if rng.random() < 0.7:
                record["ContactNumber"] = f"C{index + 1:0{numbers_width}d}"
            if rng.random() < 0.3:
                record["AccountNumber"] = f"ACC{rng.between(10000, 99999)}"
            if role in ("customer", "both"):
                if rng.random() < 0.4:
                    record["SalesDefaultAccountCode"] = "200"
                if rng.random() < 0.3:
                    record["AccountsReceivableTaxType"] = self.sales_tax
                if rng.random() < 0.25:
                    day, kind = rng.pick(
                        ((20, "OFFOLLOWINGMONTH"), (14, "DAYSAFTERBILLDATE"), (30, "DAYSAFTERBILLDATE"))
                    )
                    record["PaymentTerms"] = {"Sales": {"Day": day, "Type": kind}}
                if rng.random() < 0.2:
                    option = rng.pick(self.tracking[0]["Options"])["Name"]
                    record["SalesTrackingCategories"] = [
                        {"TrackingCategoryName": self.tracking[0]["Name"], "TrackingOptionName": option}
                    ]
                if not consumer and rng.random() < 0.15:
                    record["Discount"] = float(rng.pick((2.5, 5.0, 10.0)))
            if role in ("supplier", "both"):
                if rng.random() < 0.5:
                    record["PurchasesDefaultAccountCode"] = rng.pick(("300", "429", "453"))
                if rng.random() < 0.3:
                    record["AccountsPayableTaxType"] = self.purchase_tax
                if rng.random() < 0.3:
                    terms = record.setdefault("PaymentTerms", {})
                    terms["Bills"] = {"Day": 20, "Type": "OFFOLLOWINGMONTH"}
            if rng.random() < 0.1:
                record["DefaultCurrency"] = rng.pick(self.currencies[1:] or self.currencies)
            if rng.random() < 0.1:
                theme = self.theme_special
                record["BrandingTheme"] = {"BrandingThemeID": theme, "Name": "Special Projects"}
            if rng.random() < demo.archived_fraction:
                record["ContactStatus"] = "ARCHIVED"
            record["IsSupplier"] = False
            record["IsCustomer"] = False
            record["HasAttachments"] = False
            record["UpdatedDateUTC"] = self.moment(rng, self.past_day(rng, demo.history_days + 30))
            record["_role"] = role
            out.append(record)
        return out

    def finish_contacts(self, contacts: list[Record]) -> None:
        for record in contacts:
            del record["_role"]
            flags = self.contact_flags.get(record["ContactID"], ())
            record["IsCustomer"] = "IsCustomer" in flags
            record["IsSupplier"] = "IsSupplier" in flags
            touched = self.contact_touched.get(record["ContactID"])
            if touched is not None and touched > record["UpdatedDateUTC"]:
                # Becoming a customer/supplier is a change Xero stamps on the contact.
                record["UpdatedDateUTC"] = touched

    def _flag(self, contact_id: str, flag: str, when: datetime) -> None:
        flags = self.contact_flags.setdefault(contact_id, set())
        if flag not in flags:
            flags.add(flag)
            previous = self.contact_touched.get(contact_id)
            if previous is None or when < previous:
                # The flag flips with the contact's first transaction of that kind.
                self.contact_touched[contact_id] = when

    # ----------------------------------------------------------------------------------------------- items
    def items(self) -> list[Record]:
        rng = self.rng("items")
        out: list[Record] = []
        for index in range(self.demo.items or 0):
            prefix, noun, variants = ITEM_FAMILIES[index % len(ITEM_FAMILIES)]
            variant = variants[(index // len(ITEM_FAMILIES)) % len(variants)]
            number = index // len(ITEM_FAMILIES) + 1
            code = f"{prefix}-{number:04d}"
            price_cents = (
                rng.between(250, 50_000) if prefix != "SVC" else rng.pick((9500, 12000, 15000, 18500))
            )
            cost_cents = int(price_cents * rng.uniform(0.45, 0.75))
            record: Record = {
                "ItemID": rng.guid(),
                "Code": code,
                "Name": f"{noun} {variant} {number}",
                "Description": f"{noun} {variant.lower()} (series {number})",
                "IsSold": True,
                "IsPurchased": prefix != "SVC",
                "IsTrackedAsInventory": False,
                "SalesDetails": {
                    "UnitPrice": price_cents / 100,
                    "AccountCode": "200",
                    "TaxType": self.sales_tax,
                },
            }
            if prefix != "SVC":
                record["PurchaseDescription"] = f"{noun} {variant.lower()} from supplier"
                record["PurchaseDetails"] = {
                    "UnitPrice": cost_cents / 100,
                    "AccountCode": "300",
                    "TaxType": self.purchase_tax,
                }
                if rng.random() < 0.35:
                    on_hand = rng.between(0, 500)
                    record["IsTrackedAsInventory"] = True
                    record["InventoryAssetAccountCode"] = "630"
                    record["PurchaseDetails"] = {
                        "UnitPrice": cost_cents / 100,
                        "COGSAccountCode": "310",
                        "TaxType": self.purchase_tax,
                    }
                    record["QuantityOnHand"] = float(on_hand)
                    record["TotalCostPool"] = on_hand * cost_cents / 100
            record["UpdatedDateUTC"] = self.moment(rng, self.past_day(rng))
            out.append(record)
        return out

    # -------------------------------------------------------------------------------------------- invoices
    def _templates(self, items: list[Record], sales: bool) -> list[tuple]:
        """Per item, what its lines share: code, item stub, description, price, account, tax type."""
        key = (id(items), sales)
        cached = self._template_cache.get(key)
        if cached is not None:
            return cached
        default_tax = self.sales_tax if sales else self.purchase_tax
        templates = []
        for item in items:
            details = item.get("SalesDetails" if sales else "PurchaseDetails") or item["SalesDetails"]
            account = details.get("AccountCode") or (
                "200" if sales else item.get("InventoryAssetAccountCode") or "300"
            )
            description = (
                item["Description"] if sales else item.get("PurchaseDescription", item["Description"])
            )
            stub = {"ItemID": item["ItemID"], "Name": item["Name"], "Code": item["Code"]}
            templates.append(
                (
                    item["Code"],
                    stub,
                    description,
                    round(details["UnitPrice"] * 100),
                    account,
                    details.get("TaxType", default_tax),
                )
            )
        self._template_cache[key] = templates
        return templates

    def _lines(
        self,
        rng: _Rand,
        items: list[Record],
        count: int,
        *,
        sales: bool,
        lat: str,
    ) -> tuple[list[Record], int, int, int]:
        """Lines with integer-cent arithmetic; returns (lines, sum of amounts, sum of taxes, sum of discounts).

        Immutable parts (item stubs, tracking entries, empty lists, small floats) are shared between lines:
        records are never mutated in place, and at a million lines the memory saved is most of the run time.
        """
        lines: list[Record] = []
        amount_sum = tax_sum = discount_sum = 0
        default_tax = self.sales_tax if sales else self.purchase_tax
        templates = self._templates(items, sales) if items else ()
        random_ = rng.random
        account_ids, rate_millis, floats = self.account_ids, self.rate_millis, self.small_floats
        tracking_entries, no_tracking = self.tracking_entries, self.no_tracking
        free_accounts = ("200",) if sales else ("300", "429", "453", "489")
        for _ in range(count):
            if templates and random_() < 0.7:
                code, stub, description, unit_cents, account, tax_type = templates[
                    int(random_() * len(templates))
                ]
                line: Record = {
                    "LineItemID": rng.guid(),
                    "ItemCode": code,
                    "Item": stub,
                    "Description": description,
                }
            else:
                line = {
                    "LineItemID": rng.guid(),
                    "Description": FREE_TEXT_LINES[int(random_() * len(FREE_TEXT_LINES))],
                }
                unit_cents = 500 + int(random_() * 79_500)
                account = free_accounts[int(random_() * len(free_accounts))]
                tax_type = default_tax
            if lat == "NoTax" or random_() < 0.05:
                tax_type = "NONE"
            quantity = 1 + int(random_() * 10) if random_() < 0.8 else 1
            discount = (5, 10, 15)[int(random_() * 3)] if sales and random_() < 0.1 else 0
            gross = quantity * unit_cents
            amount = (2 * gross * (100 - discount) + 100) // 200 if discount else gross
            rate_milli = rate_millis.get(tax_type, 0)
            if lat == "NoTax" or not rate_milli:
                tax = 0
            elif lat == "Inclusive":
                denominator = 100_000 + rate_milli
                tax = (2 * amount * rate_milli + denominator) // (2 * denominator)
            else:
                tax = (2 * amount * rate_milli + 100_000) // 200_000
            line["AccountCode"] = account
            line["AccountID"] = account_ids[account]
            line["TaxType"] = tax_type
            line["Tracking"] = (
                tracking_entries[int(random_() * len(tracking_entries))] if random_() < 0.3 else no_tracking
            )
            if discount:
                line["DiscountRate"] = floats[discount]
            line["Quantity"] = floats[quantity]
            line["UnitAmount"] = unit_cents / 100
            line["LineAmount"] = amount / 100
            line["TaxAmount"] = tax / 100
            amount_sum += amount
            tax_sum += tax
            discount_sum += gross - amount
            lines.append(line)
        return lines, amount_sum, tax_sum, discount_sum

    def _line_count(self, rng: _Rand) -> int:
        mean = max(1, self.demo.lines_per_invoice)
        return rng.between(max(1, mean - 2), mean + 3)

    def invoices(self, contacts: list[Record], items: list[Record]) -> tuple[list[Record], list[Record]]:
        rng = self.rng("invoices")
        demo = self.demo
        total = demo.invoices or 0
        customers = [c for c in contacts if c["_role"] in ("customer", "both")]
        suppliers = [c for c in contacts if c["_role"] in ("supplier", "both")]
        sold_items = [i for i in items if i.get("IsSold")]
        bought_items = [i for i in items if i.get("IsPurchased")]
        pay_fraction = 0.5 if demo.payments is None else min(1.0, demo.payments / max(1, total))
        bank = self.accounts["090"]["AccountID"]
        invoices: list[Record] = []
        payments: list[Record] = []
        sequence = 0
        for _ in range(total):
            sales = bool(customers) and (not suppliers or rng.random() < 0.8)
            if not customers and not suppliers:
                break
            contact = rng.pick(customers if sales else suppliers)
            lat = rng.weighted(("Exclusive", "Inclusive", "NoTax"), (80, 15, 5))
            issued = self.past_day(rng)
            created = self.moment(rng, issued)
            lines, amount, tax, discount = self._lines(
                rng, sold_items if sales else bought_items, self._line_count(rng), sales=sales, lat=lat
            )
            currency = contact.get("DefaultCurrency") or self.store.base_currency
            if lat == "Inclusive":
                sub_total, total_tax, grand = amount - tax, tax, amount
            else:
                sub_total, total_tax, grand = amount, tax, amount + tax
            terms = (contact.get("PaymentTerms") or {}).get("Sales" if sales else "Bills") or (
                self.store.organisation["PaymentTerms"]["Sales" if sales else "Bills"]
            )
            record: Record = {
                "Type": "ACCREC" if sales else "ACCPAY",
                "InvoiceID": rng.guid(),
                "Contact": {"ContactID": contact["ContactID"]},
                "Date": issued,
                "DueDate": self.due(issued, terms),
                "LineAmountTypes": lat,
                "LineItems": lines,
                "CurrencyCode": currency,
                "CurrencyRate": self.rate_of.get(currency) or self.store.currency_rate(currency),
                "SubTotal": sub_total / 100,
                "TotalTax": total_tax / 100,
                "Total": grand / 100,
                "TotalDiscount": discount / 100,
                "IsDiscounted": discount > 0 or any("DiscountRate" in line for line in lines),
                "HasAttachments": False,
                "Payments": [],
                "CreditNotes": [],
                "AmountPaid": 0.0,
                "AmountCredited": 0.0,
            }
            if sales:
                sequence += 1
                record["InvoiceNumber"] = f"INV-{sequence:04d}"
                record["BrandingThemeID"] = self.theme_standard
                if rng.random() < 0.4:
                    record["Reference"] = f"PO {rng.between(1000, 99999)}"
            else:
                record["InvoiceNumber"] = f"{rng.pick(('BILL', 'SI', 'TAX'))}-{rng.between(10000, 999999)}"
                if rng.random() < 0.5:
                    record["Reference"] = f"Order {rng.between(100, 9999)}"
            updated = created
            paid_cents = 0
            if rng.random() < pay_fraction:
                status = "AUTHORISED"
                full = rng.random() < 0.85
                paid_cents = grand if full else max(1, grand * rng.between(20, 80) // 100)
                if grand <= 0:
                    paid_cents = 0
                pay_day = min(self.today - timedelta(days=1), issued + timedelta(days=rng.between(0, 60)))
                pay_day = max(pay_day, issued)
                paid_at = max(created, self.moment(rng, pay_day))
                if paid_cents:
                    payment = self._payment(rng, record, paid_cents, pay_day, paid_at, bank, sales)
                    payments.append(payment)
                    record["Payments"].append(
                        {"PaymentID": payment["PaymentID"], "Date": pay_day, "Amount": paid_cents / 100,
                         "CurrencyRate": record["CurrencyRate"]}
                    )  # fmt: skip
                    updated = paid_at
                    if paid_cents >= grand:
                        status = "PAID"
                        record["FullyPaidOnDate"] = pay_day
            else:
                status = rng.weighted(
                    ("DRAFT", "SUBMITTED", "AUTHORISED", "VOIDED", "DELETED"), (16, 8, 60, 10, 6)
                )
                if status in ("VOIDED", "DELETED"):
                    updated = max(
                        created,
                        self.moment(rng, min(self.today, issued + timedelta(days=rng.between(0, 30)))),
                    )
                elif status == "AUTHORISED" and pay_fraction > 0 and rng.random() < 0.04:
                    # A payment entered and later deleted: the invoice owes everything again.
                    pay_day = max(issued, min(self.today - timedelta(days=1), issued + timedelta(days=7)))
                    paid_at = max(created, self.moment(rng, pay_day))
                    payment = self._payment(rng, record, grand, pay_day, paid_at, bank, sales)
                    payment["Status"] = "DELETED"
                    deleted_at = min(self.anchor, paid_at + timedelta(days=1))
                    payment["UpdatedDateUTC"] = deleted_at
                    payments.append(payment)
                    updated = deleted_at
            record["Status"] = status
            record["AmountPaid"] = paid_cents / 100
            record["AmountDue"] = 0.0 if status in ("VOIDED", "DELETED") else (grand - paid_cents) / 100
            if sales and status in ("AUTHORISED", "PAID") and rng.random() < 0.7:
                record["SentToContact"] = True
            record["UpdatedDateUTC"] = updated
            self._flag(contact["ContactID"], "IsCustomer" if sales else "IsSupplier", created)
            invoices.append(record)
        return invoices, payments

    def _payment(
        self,
        rng: _Rand,
        invoice: Record,
        cents: int,
        day: date,
        at: datetime,
        bank: str,
        sales: bool,
    ) -> Record:
        payment: Record = {
            "PaymentID": rng.guid(),
            "Date": day,
            "Amount": cents / 100,
            "BankAmount": cents / 100,
            "CurrencyRate": invoice["CurrencyRate"],
            "IsReconciled": rng.random() < 0.6,
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT" if sales else "ACCPAYPAYMENT",
            "UpdatedDateUTC": at,
            "HasAccount": True,
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"AccountID": bank},
        }
        if rng.random() < 0.5:
            payment["Reference"] = f"Payment {invoice.get('InvoiceNumber', '')}".strip()
        return payment

    # ---------------------------------------------------------------------------------------- credit notes
    def credit_notes(self, contacts: list[Record], invoices: list[Record]) -> list[Record]:
        rng = self.rng("credit_notes")
        by_contact: dict[str, list[Record]] = {}
        for invoice in invoices:
            by_contact.setdefault(invoice["Contact"]["ContactID"], []).append(invoice)
        candidates = [c for c in contacts if c["ContactID"] in by_contact]
        out: list[Record] = []
        sequence = 0
        for _ in range(self.demo.credit_notes or 0):
            if not candidates:
                break
            contact = rng.pick(candidates)
            own = by_contact[contact["ContactID"]]
            source = rng.pick(own)
            sales = source["Type"] == "ACCREC"
            lat = source["LineAmountTypes"]
            issued = min(self.today - timedelta(days=1), source["Date"] + timedelta(days=rng.between(1, 45)))
            created = self.moment(rng, issued)
            lines, amount, tax, discount = self._lines(rng, [], rng.between(1, 3), sales=sales, lat=lat)
            grand = amount if lat == "Inclusive" else amount + tax
            record: Record = {
                "Type": "ACCRECCREDIT" if sales else "ACCPAYCREDIT",
                "CreditNoteID": rng.guid(),
                "Contact": {"ContactID": contact["ContactID"]},
                "Date": issued,
                "LineAmountTypes": lat,
                "LineItems": lines,
                "CurrencyCode": source["CurrencyCode"],
                "CurrencyRate": source["CurrencyRate"],
                "SubTotal": (amount - tax if lat == "Inclusive" else amount) / 100,
                "TotalTax": tax / 100,
                "Total": grand / 100,
                "TotalDiscount": discount / 100,
                "IsDiscounted": discount > 0,
                "HasAttachments": False,
                "Allocations": [],
                "Payments": [],
                "Reference": f"Credit for {source.get('InvoiceNumber', 'bill')}",
            }
            if sales:
                sequence += 1
                record["CreditNoteNumber"] = f"CN-{sequence:04d}"
            status = rng.weighted(("DRAFT", "AUTHORISED", "VOIDED"), (20, 70, 10))
            remaining = 0 if status == "VOIDED" else grand
            updated = created
            if status == "AUTHORISED" and grand > 0:
                target = next(
                    (
                        inv
                        for inv in own
                        if inv["Status"] == "AUTHORISED"
                        and inv["Type"] == source["Type"]
                        and inv["CurrencyCode"] == record["CurrencyCode"]
                        and round(inv["AmountDue"] * 100) >= grand
                    ),
                    None,
                )
                if target is not None and rng.random() < 0.6:
                    allocated_at = max(created, self.moment(rng, issued))
                    record["Allocations"].append(
                        {"AllocationID": rng.guid(), "Amount": grand / 100, "Date": issued,
                         "Invoice": {"InvoiceID": target["InvoiceID"], "InvoiceNumber": target.get("InvoiceNumber")}}
                    )  # fmt: skip
                    remaining = 0
                    status = "PAID"
                    record["FullyPaidOnDate"] = issued
                    credited = round(target["AmountCredited"] * 100) + grand
                    due = round(target["AmountDue"] * 100) - grand
                    target["AmountCredited"] = credited / 100
                    target["AmountDue"] = due / 100
                    applied = {"CreditNoteID": record["CreditNoteID"], "AppliedAmount": grand / 100, "Date": issued,
                               "Total": grand / 100}  # fmt: skip
                    if record.get("CreditNoteNumber"):
                        applied["CreditNoteNumber"] = record["CreditNoteNumber"]
                    target["CreditNotes"].append(applied)
                    if due <= 0:
                        target["Status"] = "PAID"
                        target["FullyPaidOnDate"] = issued
                    target["UpdatedDateUTC"] = max(target["UpdatedDateUTC"], allocated_at)
                    updated = allocated_at
            record["Status"] = status
            record["RemainingCredit"] = remaining / 100
            record["AppliedAmount"] = (grand - remaining) / 100 if status == "PAID" else 0.0
            record["UpdatedDateUTC"] = updated
            out.append(record)
        return out

    # ------------------------------------------------------------------------------------- purchase orders
    def purchase_orders(self, contacts: list[Record], items: list[Record]) -> list[Record]:
        rng = self.rng("purchase_orders")
        suppliers = [c for c in contacts if c["_role"] in ("supplier", "both")]
        bought = [i for i in items if i.get("IsPurchased")]
        out: list[Record] = []
        for index in range(self.demo.purchase_orders or 0):
            if not suppliers:
                break
            contact = rng.pick(suppliers)
            issued = self.past_day(rng, 365)
            created = self.moment(rng, issued)
            lat = "Exclusive"
            lines, amount, tax, discount = self._lines(rng, bought, rng.between(1, 6), sales=False, lat=lat)
            status = rng.weighted(
                ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"), (20, 10, 40, 25, 5)
            )
            currency = contact.get("DefaultCurrency") or self.store.base_currency
            city = contact["Addresses"][1]["City"]
            record: Record = {
                "PurchaseOrderID": rng.guid(),
                "PurchaseOrderNumber": f"PO-{index + 1:04d}",
                "Contact": {"ContactID": contact["ContactID"]},
                "Date": issued,
                "DeliveryDate": issued + timedelta(days=rng.between(7, 31)),
                "LineAmountTypes": lat,
                "LineItems": lines,
                "CurrencyCode": currency,
                "CurrencyRate": self.rate_of.get(currency) or self.store.currency_rate(currency),
                "SubTotal": amount / 100,
                "TotalTax": tax / 100,
                "Total": (amount + tax) / 100,
                "TotalDiscount": discount / 100,
                "IsDiscounted": False,
                "HasAttachments": False,
                "Status": status,
                "DeliveryAddress": f"{rng.between(1, 400)} {rng.pick(STREETS)}, {city}",
                "AttentionTo": rng.pick(FIRST_NAMES),
                "SentToContact": status in ("AUTHORISED", "BILLED"),
            }
            later = min(self.today, issued + timedelta(days=rng.between(0, 20)))
            record["UpdatedDateUTC"] = (
                created if status in ("DRAFT", "SUBMITTED") else max(created, self.moment(rng, later))
            )
            self._flag(contact["ContactID"], "IsSupplier", created)
            out.append(record)
        return out
