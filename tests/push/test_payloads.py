"""What the push sends, field by field (P1, P2, P3, P6): pure functions, no server."""

from __future__ import annotations

from decimal import Decimal

from xero_crm_sync.push.payloads import (
    CustomerFields,
    OrderHeader,
    OrderLine,
    ProductFields,
    contact_element,
    invoice_element,
    item_element,
    template_defaults,
)

TEMPLATE_CONTACT = {
    "ContactID": "11111111-1111-1111-1111-111111111111",
    "Name": "Template Ltd",
    "EmailAddress": "template@example.co.nz",
    "BrandingTheme": {"BrandingThemeID": "22222222-2222-2222-2222-222222222222", "Name": "Special Projects"},
    "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
    "SalesTrackingCategories": [{"TrackingCategoryName": "Region", "TrackingOptionName": "North"}],
    "SalesDefaultAccountCode": "200",
    "PurchasesDefaultAccountCode": "300",
    "Discount": 5.0,
    "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "1"}],
}


def customer(**overrides):
    values = {
        "id": 42,
        "accounting_code": None,
        "fields_hash": "h",
        "name": " Acme Ltd ",
        "email": "accounts@acme.co.nz",
        "currency_code": "nzd",
        "contact_status": "ACTIVE",
        "tax_type": "OUTPUT2",
        "tax_number": "12-345-678",
        "phone": "64 9 555 1234",
        "mobile": None,
        "address_line1": "1 Queen St",
        "address_line2": None,
        "city": "Auckland",
        "region": None,
        "postal_code": "1010",
        "country": "New Zealand",
        "has_person": True,
        "first_name": "Ann",
        "last_name": "Able",
    }
    values.update(overrides)
    return CustomerFields(**values)


def test_template_defaults_copy_exactly_the_p2_fields():
    defaults = template_defaults(TEMPLATE_CONTACT)
    assert defaults == {
        "BrandingTheme": {"BrandingThemeID": "22222222-2222-2222-2222-222222222222"},
        "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
        "SalesTrackingCategories": [{"TrackingCategoryName": "Region", "TrackingOptionName": "North"}],
        "SalesDefaultAccountCode": "200",
        "PurchasesDefaultAccountCode": "300",
    }
    assert template_defaults(None) == {}


def test_new_contact_has_p1_fields_crm_number_and_template():
    element = contact_element(customer(), template_defaults(TEMPLATE_CONTACT))
    assert element["ContactNumber"] == "42"
    assert "ContactID" not in element
    assert element["Name"] == "Acme Ltd"
    assert element["DefaultCurrency"] == "NZD"
    assert element["AccountsReceivableTaxType"] == "OUTPUT2"
    assert (element["FirstName"], element["LastName"]) == ("Ann", "Able")
    assert element["Phones"] == [
        {"PhoneType": "DEFAULT", "PhoneNumber": "64 9 555 1234", "PhoneAreaCode": "", "PhoneCountryCode": ""}
    ]
    assert element["Addresses"] == [
        {
            "AddressType": "POBOX",
            "AddressLine1": "1 Queen St",
            "City": "Auckland",
            "PostalCode": "1010",
            "Country": "New Zealand",
        }
    ]
    assert element["PaymentTerms"] == {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}}
    assert element["BrandingTheme"]["BrandingThemeID"] == "22222222-2222-2222-2222-222222222222"
    assert "Discount" not in element  # read-only in Xero's API


def test_update_never_sends_template_fields_and_clears_emptied_fields():
    element = contact_element(
        customer(accounting_code="33333333-3333-3333-3333-333333333333", email=None, has_person=False),
        template_defaults(TEMPLATE_CONTACT),
    )
    assert element["ContactID"] == "33333333-3333-3333-3333-333333333333"
    assert "ContactNumber" not in element
    for field in ("PaymentTerms", "BrandingTheme", "SalesTrackingCategories", "SalesDefaultAccountCode",
                  "PurchasesDefaultAccountCode", "Discount"):  # fmt: skip
        assert field not in element
    assert element["EmailAddress"] == ""
    assert "FirstName" not in element  # no CRM contact person: Xero's stays
    assert {p["PhoneType"] for p in element["Phones"]} == {"DEFAULT", "MOBILE"}
    assert element["Addresses"][0]["Region"] == ""


def test_on_stop_is_archived():
    assert contact_element(customer(contact_status="ARCHIVED"))["ContactStatus"] == "ARCHIVED"


def test_item_new_and_update():
    product = ProductFields(
        id=7,
        accounting_code=None,
        fields_hash="h",
        code="W-1",
        name="Widget",
        description=None,
        sell_price=Decimal("12.3456"),
        sales_account_code="200",
        sales_tax_type="OUTPUT2",
        cost_price=4.25,
        purchase_account_code="300",
        is_tracked=False,
    )
    assert item_element(product) == {
        "Code": "W-1",
        "Name": "Widget",
        "SalesDetails": {"UnitPrice": 12.3456, "AccountCode": "200", "TaxType": "OUTPUT2"},
        "PurchaseDetails": {"UnitPrice": 4.25, "AccountCode": "300"},
    }
    tracked = ProductFields(**{**product.__dict__, "accounting_code": "44444444-4444-4444-4444-444444444444",
                               "is_tracked": True})  # fmt: skip
    element = item_element(tracked)
    assert element["ItemID"] == "44444444-4444-4444-4444-444444444444"
    assert element["Description"] == ""
    assert element["PurchaseDetails"] == {"UnitPrice": 4.25, "COGSAccountCode": "300"}


def test_invoice_lines_and_delivery_line():
    header = OrderHeader(
        id=1,
        order_number="SO-1",
        contact_id="55555555-5555-5555-5555-555555555555",
        currency_code="usd",
        customer_reference="PO 9",
        delivery_charge=Decimal("15.0000"),
        order_date="2026-03-01",
    )
    lines = [
        OrderLine(1, "W-1", "Widget", Decimal("2"), Decimal("19.5"), "OUTPUT2", Decimal("10"), "200"),
        OrderLine(2, None, "Installation", 1, 80, None, None, None),
    ]
    element = invoice_element(header, lines, delivery_account_code="260", delivery_tax_type="OUTPUT2")
    assert element["Type"] == "ACCREC" and element["Status"] == "DRAFT"
    assert element["Contact"] == {"ContactID": "55555555-5555-5555-5555-555555555555"}
    assert (element["CurrencyCode"], element["Reference"], element["Date"]) == ("USD", "PO 9", "2026-03-01")
    assert element["LineItems"] == [
        {"ItemCode": "W-1", "Description": "Widget", "Quantity": 2.0, "UnitAmount": 19.5, "TaxType": "OUTPUT2",
         "DiscountRate": 10.0, "AccountCode": "200"},
        {"Description": "Installation", "Quantity": 1.0, "UnitAmount": 80.0},
        {"Description": "Delivery", "Quantity": 1.0, "UnitAmount": 15.0, "AccountCode": "260", "TaxType": "OUTPUT2"},
    ]  # fmt: skip
    no_delivery = invoice_element(OrderHeader(**{**header.__dict__, "delivery_charge": 0}), lines)
    assert [line["Description"] for line in no_delivery["LineItems"]] == ["Widget", "Installation"]
