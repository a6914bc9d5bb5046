"""Invoices, credit notes, purchase orders and payments: totals, status workflow, money moving, derived flags."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xero_sandbox.accounting import OrgStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def buyer(org: OrgStore) -> str:
    return org.upsert_contacts([{"Name": "Buyer Ltd"}])[0].record["ContactID"]


def _invoice(org: OrgStore, contact_id: str, lines: list[dict], **fields) -> dict:
    result = org.create_invoices(
        [{"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "LineItems": lines, **fields}]
    )[0]
    assert result.ok, result.errors
    return result.record


def _totals(record: dict) -> tuple[float, float, float, float]:
    return record["SubTotal"], record["TotalTax"], record["Total"], record["TotalDiscount"]


# ---------------------------------------------------------------------------------------------------- totals
def test_exclusive_totals_with_discount(org, buyer, api):
    invoice = _invoice(
        org,
        buyer,
        [
            {"Description": "a", "Quantity": 2, "UnitAmount": 10.5, "DiscountRate": 10, "AccountCode": "200"},
            {"Description": "b", "Quantity": 1, "UnitAmount": 99.99, "AccountCode": "200"},
        ],
        LineAmountTypes="Exclusive",
    )
    first, second = invoice["LineItems"]
    assert (first["LineAmount"], first["TaxAmount"]) == (18.9, 2.84)  # 21.00 - 10%; 15% of 18.90 = 2.835
    assert (second["LineAmount"], second["TaxAmount"]) == (99.99, 15.0)
    assert _totals(invoice) == (118.89, 17.84, 136.73, 2.1)
    assert invoice["AmountDue"] == 136.73 and invoice["IsDiscounted"] is True
    wire = api.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (wire["SubTotal"], wire["TotalTax"], wire["Total"], wire["TotalDiscount"]) == (
        118.89,
        17.84,
        136.73,
        2.1,
    )


def test_inclusive_totals_with_discount(org, buyer):
    invoice = _invoice(
        org,
        buyer,
        [
            {"Description": "a", "Quantity": 1, "UnitAmount": 115, "AccountCode": "200"},
            {"Description": "b", "Quantity": 3, "UnitAmount": 10, "DiscountRate": 10, "AccountCode": "200"},
        ],
        LineAmountTypes="Inclusive",
    )
    first, second = invoice["LineItems"]
    assert (first["LineAmount"], first["TaxAmount"]) == (115.0, 15.0)
    assert (second["LineAmount"], second["TaxAmount"]) == (27.0, 3.52)  # 27 * 15/115 = 3.5217
    assert _totals(invoice) == (123.48, 18.52, 142.0, 3.0)


def test_no_tax_totals(org, buyer):
    invoice = _invoice(
        org,
        buyer,
        [{"Description": "a", "Quantity": 4, "UnitAmount": 2.5, "DiscountRate": 20, "AccountCode": "200"}],
        LineAmountTypes="NoTax",
    )
    assert invoice["LineItems"][0]["TaxType"] == "NONE"
    assert _totals(invoice) == (8.0, 0.0, 8.0, 2.0)


def test_changing_line_amount_types_recomputes_existing_lines(org, buyer):
    invoice = _invoice(
        org, buyer, [{"Description": "a", "Quantity": 1, "UnitAmount": 115, "AccountCode": "200"}]
    )
    assert _totals(invoice)[:3] == (115.0, 17.25, 132.25)
    updated = org.upsert_invoices([{"InvoiceID": invoice["InvoiceID"], "LineAmountTypes": "Inclusive"}])[
        0
    ].record
    assert _totals(updated)[:3] == (100.0, 15.0, 115.0)


def test_line_amount_only_derives_unit_amount(org, buyer):
    invoice = _invoice(
        org, buyer, [{"Description": "a", "Quantity": 3, "LineAmount": 10, "AccountCode": "200"}]
    )
    line = invoice["LineItems"][0]
    assert (line["UnitAmount"], line["LineAmount"]) == (3.33, 10.0)
    assert invoice["SubTotal"] == 10.0


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


_line = st.fixed_dictionaries(
    {
        "Quantity": st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
        "UnitAmount": st.decimals(min_value=Decimal("-500"), max_value=Decimal(10_000), places=2),
        "DiscountRate": st.sampled_from([None, Decimal(0), Decimal("5"), Decimal("12.5"), Decimal("100")]),
        "TaxType": st.sampled_from(["OUTPUT2", "NONE", "ZERORATED"]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(_line, min_size=1, max_size=8), lat=st.sampled_from(["Exclusive", "Inclusive", "NoTax"])
)
def test_totals_always_equal_the_sum_of_the_lines(org, buyer, lines, lat):
    elements = []
    for line in lines:
        element = {"Description": "p", "AccountCode": "200", "TaxType": line["TaxType"]}
        element["Quantity"] = float(line["Quantity"])
        element["UnitAmount"] = float(line["UnitAmount"])
        if line["DiscountRate"] is not None:
            element["DiscountRate"] = float(line["DiscountRate"])
        elements.append(element)
    invoice = _invoice(org, buyer, elements, LineAmountTypes=lat)
    amounts = [Decimal(repr(line["LineAmount"])) for line in invoice["LineItems"]]
    taxes = [Decimal(repr(line["TaxAmount"])) for line in invoice["LineItems"]]
    sub_total, total_tax, total = (Decimal(repr(invoice[k])) for k in ("SubTotal", "TotalTax", "Total"))
    assert total == sub_total + total_tax
    assert total_tax == sum(taxes, Decimal(0))
    if lat == "Inclusive":
        assert total == sum(amounts, Decimal(0))
    else:
        assert sub_total == sum(amounts, Decimal(0))
    if lat == "NoTax":
        assert total_tax == 0
    for line, sent in zip(invoice["LineItems"], lines, strict=True):
        gross = sent["Quantity"] * sent["UnitAmount"]
        discount = sent["DiscountRate"] or Decimal(0)
        assert Decimal(repr(line["LineAmount"])) == _money(gross * (100 - discount) / 100)
    assert Decimal(repr(invoice["AmountDue"])) == total


# ------------------------------------------------------------------------------------------------- workflow
@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("DRAFT", "SUBMITTED", True),
        ("DRAFT", "AUTHORISED", True),
        ("DRAFT", "DELETED", True),
        ("DRAFT", "VOIDED", False),
        ("SUBMITTED", "DRAFT", True),
        ("SUBMITTED", "AUTHORISED", True),
        ("SUBMITTED", "DELETED", True),
        ("SUBMITTED", "VOIDED", False),
        ("AUTHORISED", "VOIDED", True),
        ("AUTHORISED", "DELETED", False),
        ("AUTHORISED", "DRAFT", False),
        ("AUTHORISED", "PAID", False),
        ("VOIDED", "AUTHORISED", False),
        ("DELETED", "DRAFT", False),
    ],
)
def test_invoice_status_transitions(org, buyer, clock, api, start, target, allowed):
    line = {"Description": "a", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}
    invoice = _invoice(
        org, buyer, [line], Status=start if start in ("DRAFT", "SUBMITTED", "AUTHORISED") else "AUTHORISED"
    )
    if start in ("VOIDED", "DELETED"):
        via = "AUTHORISED" if start == "VOIDED" else "DRAFT"
        if via == "DRAFT":
            invoice = _invoice(org, buyer, [line])
        assert org.upsert_invoices([{"InvoiceID": invoice["InvoiceID"], "Status": start}])[0].ok
    clock.advance(5)
    response = api.post(f"/Invoices/{invoice['InvoiceID']}", json={"Invoices": [{"Status": target}]})
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["Invoices"][0]["Status"] == target
        assert response.json()["Invoices"][0]["UpdatedDateUTC"] == "/Date(1714555805000+0000)/"
    else:
        assert response.status_code == 400
        assert response.json()["Elements"][0]["ValidationErrors"] == [
            {"Message": "Invoice not of valid status for modification"}
        ]
        assert org.invoices.get(invoice["InvoiceID"])["Status"] == start


def test_voided_and_deleted_invoices_owe_nothing(org, buyer):
    line = {"Description": "a", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}
    approved = _invoice(org, buyer, [line], Status="AUTHORISED")
    voided = org.upsert_invoices([{"InvoiceID": approved["InvoiceID"], "Status": "VOIDED"}])[0].record
    assert (voided["Total"], voided["AmountDue"]) == (57.5, 0.0)
    draft = _invoice(org, buyer, [line])
    deleted = org.upsert_invoices([{"InvoiceID": draft["InvoiceID"], "Status": "DELETED"}])[0].record
    assert deleted["AmountDue"] == 0.0


def test_approved_invoice_lines_can_be_edited_until_money_is_allocated(org, buyer):
    invoice = _invoice(
        org,
        buyer,
        [{"Description": "a", "Quantity": 1, "UnitAmount": 50, "AccountCode": "200"}],
        Status="AUTHORISED",
    )
    edited = org.upsert_invoices(
        [
            {
                "InvoiceID": invoice["InvoiceID"],
                "LineItems": [{"Description": "b", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200"}],
            }
        ]
    )[0]
    assert edited.ok and edited.record["Total"] == 115.0
    org.create_payments(
        [{"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 10}]
    )
    blocked = org.upsert_invoices([{"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"}])[0]
    assert blocked.errors == [
        "This document cannot be edited as it has a payment or credit note allocated to it."
    ]
    reference_only = org.upsert_invoices([{"InvoiceID": invoice["InvoiceID"], "Reference": "PO 77"}])[0]
    assert reference_only.ok


# ------------------------------------------------------------------------------------------------- payments
def test_payments_pay_the_invoice_and_deleting_one_restores_it(org, buyer, clock, api):
    invoice = _invoice(
        org,
        buyer,
        [{"Description": "a", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200"}],
        Status="AUTHORISED",
    )
    invoice_id = invoice["InvoiceID"]
    clock.advance(60)
    first = api.put(
        "/Payments",
        json={
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice_id},
                    "Account": {"Code": "090"},
                    "Amount": 15,
                    "Date": "2024-05-02",
                }
            ]
        },
    )
    assert first.status_code == 200, first.text
    payment_1 = first.json()["Payments"][0]
    assert payment_1["PaymentType"] == "ACCRECPAYMENT" and payment_1["Status"] == "AUTHORISED"
    after_first = api.get(f"/Invoices/{invoice_id}").json()["Invoices"][0]
    assert (after_first["Status"], after_first["AmountPaid"], after_first["AmountDue"]) == (
        "AUTHORISED",
        15,
        100,
    )
    assert after_first["UpdatedDateUTC"] == "/Date(1714555860000+0000)/"

    clock.advance(60)
    rest = api.post(
        "/Payments",
        json={
            "Invoice": {"InvoiceNumber": invoice["InvoiceNumber"]},
            "Account": {"Code": "090"},
            "Amount": 100,
            "Date": "2024-05-03",
        },
    )
    assert rest.status_code == 200, rest.text
    paid = api.get(f"/Invoices/{invoice_id}").json()["Invoices"][0]
    assert (paid["Status"], paid["AmountPaid"], paid["AmountDue"]) == ("PAID", 115, 0)
    assert paid["FullyPaidOnDate"] == "/Date(1714694400000+0000)/"  # 2024-05-03
    assert len(paid["Payments"]) == 2

    clock.advance(60)
    deleted = api.post(f"/Payments/{payment_1['PaymentID']}", json={"Status": "DELETED"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["Payments"][0]["Status"] == "DELETED"
    restored = api.get(f"/Invoices/{invoice_id}").json()["Invoices"][0]
    assert (restored["Status"], restored["AmountPaid"], restored["AmountDue"]) == ("AUTHORISED", 100, 15)
    assert "FullyPaidOnDate" not in restored
    assert restored["UpdatedDateUTC"] == "/Date(1714555980000+0000)/"
    assert [p["PaymentID"] for p in restored["Payments"]] == [rest.json()["Payments"][0]["PaymentID"]]
    # the deleted payment stays listed, marked deleted; deleting it twice is refused
    statuses = {p["PaymentID"]: p["Status"] for p in api.get("/Payments").json()["Payments"]}
    assert statuses[payment_1["PaymentID"]] == "DELETED"
    again = api.post(f"/Payments/{payment_1['PaymentID']}", json={"Status": "DELETED"})
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("status", "amount", "account", "message"),
    [
        ("DRAFT", 10, "090", "Payments can only be made against Authorised documents."),
        ("AUTHORISED", 500, "090", "Payment amount exceeds the amount outstanding on this document."),
        ("AUTHORISED", 0, "090", "Payment amount must be greater than zero."),
        ("AUTHORISED", 10, "200", "Account could not be found, or does not allow payments to be made to it."),
    ],
)
def test_payment_validation(org, buyer, status, amount, account, message):
    invoice = _invoice(
        org,
        buyer,
        [{"Description": "a", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}],
        Status=status,
    )
    result = org.create_payments(
        [{"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": account}, "Amount": amount}]
    )[0]
    assert result.errors == [message]
    assert org.invoices.get(invoice["InvoiceID"])["AmountPaid"] == 0


def test_credit_note_allocation_credits_the_invoice(org, buyer, api):
    invoice = _invoice(
        org,
        buyer,
        [{"Description": "a", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}],
        Status="AUTHORISED",
    )
    note = api.put(
        "/CreditNotes",
        json={"CreditNotes": [{"Type": "ACCRECCREDIT", "Contact": {"ContactID": buyer}, "Status": "AUTHORISED",
                               "LineItems": [{"Description": "refund", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200"}]}]},
    ).json()["CreditNotes"][0]  # fmt: skip
    assert (note["CreditNoteNumber"], note["Total"], note["RemainingCredit"]) == ("CN-0001", 23, 23)
    allocated = api.put(
        f"/CreditNotes/{note['CreditNoteID']}/Allocations",
        json={
            "Allocations": [
                {"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 23, "Date": "2024-05-01"}
            ]
        },
    )
    assert allocated.status_code == 200, allocated.text
    credited = api.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (credited["AmountCredited"], credited["AmountDue"], credited["Status"]) == (23, 92, "AUTHORISED")
    spent = api.get(f"/CreditNotes/{note['CreditNoteID']}").json()["CreditNotes"][0]
    assert (spent["RemainingCredit"], spent["Status"]) == (0, "PAID")
    too_much = api.put(
        f"/CreditNotes/{note['CreditNoteID']}/Allocations",
        json={"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Amount": 1},
    )
    assert too_much.status_code == 400


# -------------------------------------------------------------------------------------------- derived flags
def test_is_customer_and_is_supplier_follow_transactions(org, clock, api):
    customer, supplier, po_supplier = (
        org.upsert_contacts([{"Name": name}])[0].record["ContactID"] for name in ("Cust", "Supp", "PO Supp")
    )
    line = {"Description": "a", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}
    clock.advance(30)
    org.create_invoices([{"Type": "ACCREC", "Contact": {"ContactID": customer}, "LineItems": [line]}])
    org.create_invoices([{"Type": "ACCPAY", "Contact": {"ContactID": supplier}, "LineItems": [line]}])
    assert org.create_purchase_orders([{"Contact": {"ContactID": po_supplier}, "LineItems": [line]}])[0].ok

    flags = {
        c["Name"]: (c["IsCustomer"], c["IsSupplier"], c["UpdatedDateUTC"])
        for c in api.get("/Contacts").json()["Contacts"]
    }
    # Derived by Xero, not an edit of the contact: UpdatedDateUTC stays at its creation, so If-Modified-Since
    # does not return it (https://developer.xero.com/documentation/api/accounting/contacts).
    created = "/Date(1714555800000+0000)/"
    assert flags == {
        "Cust": (True, False, created),
        "Supp": (False, True, created),
        "PO Supp": (False, True, created),
    }
    since = {"If-Modified-Since": "2024-05-01T09:30:10"}
    assert {c["Name"] for c in api.get("/Contacts", headers=since).json()["Contacts"]} & set(flags) == set()
    # and cannot be written
    api.post(f"/Contacts/{customer}", json={"IsCustomer": False, "IsSupplier": True})
    assert (
        org.contacts.get(customer)["IsCustomer"] is True and org.contacts.get(customer)["IsSupplier"] is False
    )


def test_purchase_orders_number_and_workflow(org, api):
    supplier = org.upsert_contacts([{"Name": "Supp"}])[0].record["ContactID"]
    line = {"Description": "bolts", "Quantity": 100, "UnitAmount": 0.25, "AccountCode": "300"}
    created = api.put(
        "/PurchaseOrders",
        json={
            "PurchaseOrders": [
                {"Contact": {"ContactID": supplier}, "LineItems": [line], "DeliveryDate": "2024-06-01"}
            ]
        },
    )
    order = created.json()["PurchaseOrders"][0]
    assert (order["PurchaseOrderNumber"], order["Status"], order["Total"]) == ("PO-0001", "DRAFT", 28.75)
    assert order["DeliveryDateString"] == "2024-06-01T00:00:00"
    assert (
        api.get("/PurchaseOrders/PO-0001").json()["PurchaseOrders"][0]["PurchaseOrderID"]
        == order["PurchaseOrderID"]
    )
    for status in ("SUBMITTED", "AUTHORISED", "BILLED"):
        response = api.post(f"/PurchaseOrders/{order['PurchaseOrderID']}", json={"Status": status})
        assert response.status_code == 200 and response.json()["PurchaseOrders"][0]["Status"] == status
    assert (
        api.post(f"/PurchaseOrders/{order['PurchaseOrderID']}", json={"Status": "DRAFT"}).status_code == 400
    )
    assert [
        o["Status"] for o in api.get("/PurchaseOrders", params={"Status": "BILLED"}).json()["PurchaseOrders"]
    ] == ["BILLED"]


def test_tracked_stock_moves_with_approved_invoices(org, buyer):
    org.upsert_items(
        [{"Code": "TRK", "Name": "Tracked", "InventoryAssetAccountCode": "630",
          "PurchaseDetails": {"UnitPrice": 4, "COGSAccountCode": "310"}, "SalesDetails": {"UnitPrice": 10, "AccountCode": "200"}}]
    )  # fmt: skip
    supplier = org.upsert_contacts([{"Name": "Supp"}])[0].record["ContactID"]
    bill = org.create_invoices(
        [
            {
                "Type": "ACCPAY",
                "Contact": {"ContactID": supplier},
                "Status": "AUTHORISED",
                "LineItems": [{"ItemCode": "TRK", "Quantity": 10}],
            }
        ]
    )[0]
    assert bill.ok, bill.errors
    assert (org.items.by("code", "TRK")["QuantityOnHand"], org.items.by("code", "TRK")["TotalCostPool"]) == (
        10,
        40,
    )
    sale = _invoice(org, buyer, [{"ItemCode": "TRK", "Quantity": 3}], Status="AUTHORISED")
    assert (org.items.by("code", "TRK")["QuantityOnHand"], org.items.by("code", "TRK")["TotalCostPool"]) == (
        7,
        28,
    )
    org.upsert_invoices([{"InvoiceID": sale["InvoiceID"], "Status": "VOIDED"}])
    assert org.items.by("code", "TRK")["QuantityOnHand"] == 10


def test_concurrent_writers_get_unique_numbers_and_lose_no_payment(org, buyer, api, accounting_server):
    """uvicorn runs handlers on a thread pool: the store's lock must keep numbering and money consistent."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    base, _ = accounting_server
    line = {"Description": "a", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
    invoice = _invoice(org, buyer, [line], Status="AUTHORISED")  # 115.00 due

    def create(_: int) -> str:
        with httpx.Client(base_url=f"{base}/api.xro/2.0", timeout=30) as client:
            body = {"Type": "ACCREC", "Contact": {"ContactID": buyer}, "LineItems": [line]}
            created = client.put("/Invoices", json=body).json()["Invoices"][0]["InvoiceNumber"]
            paid = client.put(
                "/Payments",
                json={
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                    "Account": {"Code": "090"},
                    "Amount": 1,
                },
            )
            assert paid.status_code == 200, paid.text
            return created

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(create, range(30)))
    assert sorted(numbers) == [f"INV-{n:04d}" for n in range(2, 32)]
    paid = api.get(f"/Invoices/{invoice['InvoiceID']}").json()["Invoices"][0]
    assert (paid["AmountPaid"], paid["AmountDue"], len(paid["Payments"])) == (30, 85, 30)
