"""The demo generator: deterministic, proportioned as documented, and internally consistent (its bulk-built
records are what the validated write path would have produced)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from xero_sandbox.accounting import OrgStore
from xero_sandbox.accounting.documents import INVOICE, apply_totals, recompute_line, settle_amounts
from xero_sandbox.accounting.wire import to_wire
from xero_sandbox.generator import DemoSpec, generate_org

ENTITIES = ("Contacts", "Items", "Invoices", "Payments", "CreditNotes", "PurchaseOrders")
MORNING = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


class _FixedClock:
    """A stopped clock that pickles (an OrgStore keeps its clock, and the platform may persist stores)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def _fixed(moment: datetime) -> _FixedClock:
    return _FixedClock(moment)


def _dump(org: OrgStore) -> bytes:
    return orjson.dumps(
        {entity: [to_wire(r) for r in org.collection(entity).values()] for entity in ENTITIES}
    )


@pytest.fixture(scope="module")
def demo() -> OrgStore:
    return generate_org(
        "9a7c1b2e-0000-4000-8000-000000000001", "Demo Co", seed=7, contacts=400, clock=_fixed(MORNING)
    )


def test_same_seed_same_day_gives_the_same_organisation():
    first = generate_org("t-1", "Demo", seed=3, contacts=60, clock=_fixed(MORNING))
    later_that_day = generate_org(
        "t-1", "Demo", seed=3, contacts=60, clock=_fixed(MORNING + timedelta(hours=8))
    )
    assert _dump(first) == _dump(later_that_day)
    other_seed = generate_org("t-1", "Demo", seed=4, contacts=60, clock=_fixed(MORNING))
    assert _dump(first) != _dump(other_seed)


def test_nothing_is_dated_in_the_future(demo):
    now = MORNING
    for entity in ENTITIES:
        for record in demo.collection(entity).values():
            assert record["UpdatedDateUTC"] <= now
    assert all(inv["Date"] <= now.date() for inv in demo.invoices.values())


def test_default_proportions(demo):
    counts = {entity: demo.count(entity) for entity in ENTITIES}
    assert counts["Contacts"] == 400
    assert counts["Items"] == 40
    assert counts["Invoices"] == 800
    assert counts["CreditNotes"] == 20
    assert counts["PurchaseOrders"] == 40
    paid_invoices = sum(1 for inv in demo.invoices.values() if inv["AmountPaid"] > 0)
    assert 0.4 <= paid_invoices / 800 <= 0.6  # "payments for about half the invoices"
    lines = [len(inv["LineItems"]) for inv in demo.invoices.values()]
    assert 4.5 <= sum(lines) / len(lines) <= 5.5 and min(lines) >= 3 and max(lines) <= 7


def test_explicit_sizes_are_honoured():
    org = generate_org(
        "t-2", "Small", seed=1, contacts=10, clock=_fixed(MORNING),
        items=3, invoices=7, payments=0, credit_notes=1, purchase_orders=2, lines_per_invoice=2,
    )  # fmt: skip
    assert [org.count(e) for e in ENTITIES] == [10, 3, 7, 0, 1, 2]
    assert all(1 <= len(inv["LineItems"]) <= 4 for inv in org.invoices.values())
    spec_org = generate_org(
        "t-3", "Spec", seed=1, contacts=0, clock=_fixed(MORNING), spec=DemoSpec(contacts=5, invoices=0)
    )
    assert spec_org.count("Contacts") == 5 and spec_org.count("Invoices") == 0


def test_variety_a_demo_needs(demo):
    contacts = list(demo.contacts.values())
    archived = sum(c["ContactStatus"] == "ARCHIVED" for c in contacts) / len(contacts)
    assert 0.02 <= archived <= 0.09
    consumers = [c for c in contacts if "@gmail.com" in c.get("EmailAddress", "")]
    businesses = [c for c in contacts if c["Name"].endswith(("Ltd", "Limited", "Co", "Group"))]
    assert consumers and businesses
    assert any(c["IsCustomer"] and c["IsSupplier"] for c in contacts)
    assert any(c["IsCustomer"] and not c["IsSupplier"] for c in contacts)
    assert any(c["IsSupplier"] and not c["IsCustomer"] for c in contacts)
    assert len({c["Name"].casefold() for c in contacts}) == len(contacts)
    assert {c.code for c in map(_Currency, demo.currencies.values())} == {"NZD", "AUD", "GBP", "USD"}
    assert {inv["CurrencyCode"] for inv in demo.invoices.values()} >= {"NZD", "AUD", "GBP", "USD"}
    statuses = Counter(inv["Status"] for inv in demo.invoices.values())
    assert set(statuses) == {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}
    today = MORNING.date()
    overdue = [
        i
        for i in demo.invoices.values()
        if i["Status"] == "AUTHORISED" and i["DueDate"] < today and i["AmountDue"] > 0
    ]
    partly_paid = [
        i for i in demo.invoices.values() if i["Status"] == "AUTHORISED" and 0 < i["AmountPaid"] < i["Total"]
    ]
    assert overdue and partly_paid
    assert {i["LineAmountTypes"] for i in demo.invoices.values()} == {"Exclusive", "Inclusive", "NoTax"}
    items = list(demo.items.values())
    assert any(i["IsTrackedAsInventory"] for i in items) and any(not i["IsTrackedAsInventory"] for i in items)
    assert {p["Status"] for p in demo.payments.values()} == {"AUTHORISED", "DELETED"}
    assert {n["Status"] for n in demo.credit_notes.values()} >= {"AUTHORISED", "PAID"}
    assert {o["Status"] for o in demo.purchase_orders.values()} >= {"DRAFT", "AUTHORISED", "BILLED"}


class _Currency:
    def __init__(self, record: dict) -> None:
        self.code = record["Code"]


def test_generated_documents_match_the_write_paths_arithmetic(demo):
    """Integer-cent generation must agree with accounting.totals to the cent, line by line."""
    for collection in (demo.invoices, demo.credit_notes, demo.purchase_orders):
        for record in collection.values():
            lat = record["LineAmountTypes"]
            for line in record["LineItems"]:
                again = recompute_line(demo, line, lat)
                assert (again["LineAmount"], again["TaxAmount"]) == (line["LineAmount"], line["TaxAmount"]), (
                    line
                )
            copy = dict(record)
            apply_totals(copy, lat)
            for key in ("SubTotal", "TotalTax", "Total", "TotalDiscount"):
                assert copy[key] == record[key], (key, record)


def test_generated_money_is_consistent(demo):
    live_payments = Counter()
    for payment in demo.payments.values():
        if payment["Status"] == "AUTHORISED":
            live_payments[payment["Invoice"]["InvoiceID"]] += round(payment["Amount"] * 100)
    for invoice in demo.invoices.values():
        assert round(invoice["AmountPaid"] * 100) == live_payments.get(invoice["InvoiceID"], 0)
        copy = dict(invoice)
        settle_amounts(INVOICE, copy, MORNING)
        assert copy["AmountDue"] == invoice["AmountDue"], invoice["InvoiceID"]
        assert (invoice["Status"] == "PAID") == (
            invoice["AmountDue"] == 0 and invoice["Status"] not in ("VOIDED", "DELETED")
        )
        if invoice["Status"] == "PAID":
            assert invoice["FullyPaidOnDate"] >= invoice["Date"]
    for note in demo.credit_notes.values():
        allocated = sum(round(a["Amount"] * 100) for a in note["Allocations"])
        if note["Status"] not in ("VOIDED",):
            assert round(note["RemainingCredit"] * 100) == round(note["Total"] * 100) - allocated


def test_contact_roles_are_derived_from_transactions(demo):
    customers = {i["Contact"]["ContactID"] for i in demo.invoices.values() if i["Type"] == "ACCREC"}
    suppliers = {i["Contact"]["ContactID"] for i in demo.invoices.values() if i["Type"] == "ACCPAY"}
    suppliers |= {o["Contact"]["ContactID"] for o in demo.purchase_orders.values()}
    for contact in demo.contacts.values():
        assert contact["IsCustomer"] == (contact["ContactID"] in customers)
        assert contact["IsSupplier"] == (contact["ContactID"] in suppliers)


def test_generated_org_keeps_working_through_the_write_path(demo_copy):
    """Numbers continue after the generated ones; validation sees generated contacts and items."""
    org = demo_copy
    contact = next(c for c in org.contacts.values() if c["ContactStatus"] == "ACTIVE")
    item = next(iter(org.items.values()))
    result = org.create_invoices(
        [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact["ContactID"]},
                "LineItems": [{"ItemCode": item["Code"], "Quantity": 1}],
            }
        ]
    )[0]
    assert result.ok, result.errors
    highest = max(
        int(i["InvoiceNumber"][4:])
        for i in org.invoices.values()
        if i["Type"] == "ACCREC" and i is not result.record
    )
    assert result.record["InvoiceNumber"] == f"INV-{highest + 1:04d}"
    assert not org.upsert_contacts([{"Name": contact["Name"]}])[0].ok


@pytest.fixture
def demo_copy() -> OrgStore:
    return generate_org("t-4", "Copy", seed=7, contacts=80, clock=_fixed(MORNING))


def test_an_org_survives_pickling_with_its_indexes(demo_copy):
    import pickle

    restored = pickle.loads(pickle.dumps(demo_copy))
    assert [restored.count(e) for e in ENTITIES] == [demo_copy.count(e) for e in ENTITIES]
    number = next(c["ContactNumber"] for c in demo_copy.contacts.values() if c.get("ContactNumber"))
    assert (
        restored.contacts.by("number", number)["ContactID"]
        == demo_copy.contacts.by("number", number)["ContactID"]
    )
    assert restored.upsert_contacts([{"Name": "After Restore"}])[0].ok
