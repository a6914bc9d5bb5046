"""Xero's own SDK (xero-python) reads and writes through the Accounting routes, changed only in its base URL.

Every GET of a generated organisation must deserialise into the SDK's models (which check enums and date
formats), and the SDK's error handling must find Xero's messages where it looks for them.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import Account, Contact, Contacts, Invoice, Invoices, LineItem, Payment
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import AccountingBadRequestException, NotFoundException

from xero_sandbox.generator import generate_org

TENANT = "5b2d7a1c-0000-4000-8000-00000000abcd"
MORNING = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_org():
    return generate_org(TENANT, "SDK Demo", seed=11, contacts=150, clock=lambda: MORNING)


@pytest.fixture
def sdk(accounting_server) -> AccountingApi:
    base, _ = accounting_server
    token = {
        "access_token": "sandbox-test",
        "refresh_token": "unused",
        "token_type": "Bearer",
        "expires_in": 1800,
        "expires_at": time.time() + 1800,
        "scope": ["accounting.transactions", "accounting.contacts", "accounting.settings"],
    }
    config = Configuration()
    config.oauth2_token = OAuth2Token(client_id="sandbox", client_secret="secret")
    client = ApiClient(
        config, pool_threads=1, oauth2_token_getter=lambda: token, oauth2_token_saver=lambda _t: None
    )
    return AccountingApi(client, base_url=f"{base}/api.xro/2.0")


def _all_pages(fetch, attribute: str) -> list:
    records, page = [], 1
    while True:
        batch = getattr(fetch(page=page), attribute)
        if not batch:
            return records
        records += batch
        page += 1


def test_every_read_of_a_generated_org_deserialises(serve, demo_org, sdk):
    serve(demo_org)
    contacts = _all_pages(lambda page: sdk.get_contacts(TENANT, page=page, include_archived=True), "contacts")
    assert len(contacts) == 150
    invoices = _all_pages(lambda page: sdk.get_invoices(TENANT, page=page), "invoices")
    assert len(invoices) == 300
    assert all(isinstance(i.date, date) and isinstance(i.updated_date_utc, datetime) for i in invoices)
    assert {i.status for i in invoices} == {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"}
    assert all(i.line_items and isinstance(i.total, Decimal) for i in invoices)
    payments = _all_pages(lambda page: sdk.get_payments(TENANT, page=page), "payments")
    assert payments and all(p.invoice.invoice_id for p in payments)
    assert _all_pages(lambda page: sdk.get_credit_notes(TENANT, page=page), "credit_notes")
    assert _all_pages(lambda page: sdk.get_purchase_orders(TENANT, page=page), "purchase_orders")
    assert sdk.get_items(TENANT).items
    assert sdk.get_contacts(TENANT, summary_only=True).contacts
    assert sdk.get_invoices(TENANT).invoices[0].line_items is None  # unpaged lists carry no lines
    one = sdk.get_invoice(TENANT, invoices[0].invoice_id).invoices[0]
    assert one.invoice_id == invoices[0].invoice_id and one.contact.name
    organisation = sdk.get_organisations(TENANT).organisations[0]
    assert organisation.base_currency.value == "NZD" and organisation.name == "SDK Demo"
    assert sdk.get_accounts(TENANT).accounts and sdk.get_tax_rates(TENANT).tax_rates
    assert {c.code.value for c in sdk.get_currencies(TENANT).currencies} == {"NZD", "AUD", "GBP", "USD"}
    assert (
        sdk.get_branding_themes(TENANT).branding_themes
        and sdk.get_tracking_categories(TENANT).tracking_categories
    )


def test_if_modified_since_where_and_order_through_the_sdk(serve, demo_org, sdk):
    serve(demo_org)
    since = datetime(2024, 4, 1, tzinfo=UTC)
    recent = sdk.get_contacts(
        TENANT, if_modified_since=since, order="UpdatedDateUTC DESC", include_archived=True
    ).contacts
    assert recent and all(c.updated_date_utc >= since for c in recent)
    assert [c.updated_date_utc for c in recent] == sorted((c.updated_date_utc for c in recent), reverse=True)
    authorised = sdk.get_invoices(TENANT, where='Status=="AUTHORISED" AND Type=="ACCREC"', page=1).invoices
    assert authorised and all(i.status == "AUTHORISED" and i.type == "ACCREC" for i in authorised)


def test_writes_and_errors_through_the_sdk(org, sdk):
    created = sdk.create_contacts(
        TENANT, Contacts(contacts=[Contact(name="SDK Customer", email_address="sdk@example.com")])
    )
    contact = created.contacts[0]
    assert contact.contact_id and contact.is_customer is False

    with pytest.raises(AccountingBadRequestException) as failure:
        sdk.create_contacts(TENANT, Contacts(contacts=[Contact(name="SDK Customer")]))
    assert "must be unique across all active contacts" in failure.value.reason

    mixed = sdk.create_contacts(
        TENANT,
        Contacts(contacts=[Contact(name="Second"), Contact(name="SDK Customer")]),
        summarize_errors=False,
    )
    assert [c.has_validation_errors for c in mixed.contacts] == [False, True]
    assert mixed.contacts[1].validation_errors[0].message.startswith("The contact name SDK Customer")

    invoice = sdk.create_invoices(
        TENANT,
        Invoices(
            invoices=[
                Invoice(
                    type="ACCREC",
                    contact=Contact(contact_id=contact.contact_id),
                    date=date(2024, 5, 1),
                    due_date=date(2024, 5, 31),
                    status="AUTHORISED",
                    line_items=[
                        LineItem(description="Consulting", quantity=2, unit_amount=150, account_code="200")
                    ],
                )
            ]
        ),
    ).invoices[0]
    assert (invoice.invoice_number, invoice.total, invoice.amount_due) == (
        "INV-0001",
        Decimal("345.0"),
        Decimal("345.0"),
    )
    assert invoice.due_date == date(2024, 5, 31)

    payment = sdk.create_payment(
        TENANT,
        Payment(
            invoice=Invoice(invoice_id=invoice.invoice_id),
            account=Account(code="090"),
            amount=345,
            date=date(2024, 5, 2),
        ),
    ).payments[0]
    assert payment.status == "AUTHORISED"
    assert sdk.get_invoice(TENANT, invoice.invoice_id).invoices[0].status == "PAID"

    updated = sdk.update_contact(
        TENANT, contact.contact_id, Contacts(contacts=[Contact(email_address="new@example.com")])
    )
    assert updated.contacts[0].email_address == "new@example.com" and updated.contacts[0].is_customer is True

    with pytest.raises(NotFoundException):
        sdk.get_invoice(TENANT, "6f9619ff-8b86-d011-b42d-00cf4fc964ff")


@pytest.mark.parametrize(
    "path",
    ["/Contacts", "/Invoices", "/CreditNotes", "/PurchaseOrders", "/Payments", "/Items", "/Accounts", "/TaxRates",
     "/Organisation", "/TrackingCategories"],
)  # fmt: skip
def test_generated_org_on_the_wire_has_no_nulls_and_lower_case_guids(serve, demo_org, api, path):
    serve(demo_org)
    for params in ({"page": 1, "includeArchived": "true"}, {}):
        raw = api.get(path, params=params).content
        assert b":null" not in raw and b"null," not in raw
        for guid in re.findall(rb'"[A-Za-z]*ID":"([^"]+)"', raw):
            assert guid == guid.lower()
