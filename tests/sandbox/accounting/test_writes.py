"""PUT/POST semantics over HTTP: batches with summarised and itemised errors, partial updates, read-only fields,
matching by ID/number/code, and Xero's validation messages."""

from __future__ import annotations

import pytest

ZERO_GUID = "00000000-0000-0000-0000-000000000000"


def _contact_names(api, **params) -> list[str]:
    return sorted(c["Name"] for c in api.get("/Contacts", params=params).json()["Contacts"])


def test_summarised_batch_error_is_400_naming_only_failures_and_valid_elements_are_saved(org, api):
    org.upsert_contacts([{"Name": "Taken Ltd"}])
    response = api.put(
        "/Contacts",
        json={"Contacts": [{"Name": "First Ltd"}, {"Name": "taken ltd"}, {"Name": "Third Ltd"}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["ErrorNumber"] == 10
    assert body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    assert len(body["Elements"]) == 1
    element = body["Elements"][0]
    assert element["Name"] == "taken ltd"
    assert element["ContactID"] == ZERO_GUID
    assert element["HasValidationErrors"] is True
    assert element["ValidationErrors"] == [
        {
            "Message": "The contact name taken ltd is already assigned to another contact. "
            "The contact name must be unique across all active contacts."
        }
    ]
    assert _contact_names(api) == ["First Ltd", "Taken Ltd", "Third Ltd"]


def test_unsummarised_batch_is_200_with_every_element_and_its_status(org, api):
    response = api.post(
        "/Contacts",
        params={"summarizeErrors": "false"},
        json={"Contacts": [{"Name": "Good Ltd"}, {"EmailAddress": "not an email"}]},
    )
    assert response.status_code == 200
    good, bad = response.json()["Contacts"]
    assert good["StatusAttributeString"] == "OK"
    assert good["HasValidationErrors"] is False
    assert good["ContactID"] != ZERO_GUID
    assert bad["StatusAttributeString"] == "ERROR"
    assert bad["HasValidationErrors"] is True
    assert [e["Message"] for e in bad["ValidationErrors"]] == [
        "Contact Name cannot be empty.",
        "Email address must be valid.",
    ]
    assert _contact_names(api) == ["Good Ltd"]


def test_unsummarised_invoice_errors_use_has_errors(org, api):
    contact = org.upsert_contacts([{"Name": "Buyer"}])[0].record
    response = api.put(
        "/Invoices",
        params={"summarizeErrors": "false"},
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact["ContactID"]},
                    "Date": "2024-04-01",
                    "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "999"}],
                }
            ]
        },
    )
    assert response.status_code == 200
    failed = response.json()["Invoices"][0]
    assert failed["HasErrors"] is True and failed["StatusAttributeString"] == "ERROR"
    assert failed["InvoiceID"] == ZERO_GUID
    assert failed["Date"] == "/Date(1711929600000+0000)/"  # echoed in Xero's date form, not as sent
    assert failed["ValidationErrors"] == [
        {"Message": "Account code '999' is not a valid code for this document."}
    ]


def test_update_changes_only_the_fields_sent_and_bumps_updated_date(org, clock, api):
    created = api.put(
        "/Contacts",
        json={
            "Contacts": [
                {
                    "Name": "Partial Ltd",
                    "EmailAddress": "a@partial.co.nz",
                    "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "555 1234"}],
                    "Addresses": [{"AddressType": "POBOX", "City": "Wellington"}],
                }
            ]
        },
    ).json()["Contacts"][0]
    clock.advance(60)
    updated = api.post(
        f"/Contacts/{created['ContactID']}",
        json={
            "Contacts": [
                {
                    "EmailAddress": "b@partial.co.nz",
                    "Addresses": [{"AddressType": "STREET", "City": "Napier"}],
                }
            ]
        },
    ).json()["Contacts"][0]
    assert updated["Name"] == "Partial Ltd"
    assert updated["EmailAddress"] == "b@partial.co.nz"
    assert updated["Phones"] == [{"PhoneType": "DEFAULT", "PhoneNumber": "555 1234"}]
    assert {a["AddressType"]: a["City"] for a in updated["Addresses"]} == {
        "POBOX": "Wellington",
        "STREET": "Napier",
    }
    assert updated["UpdatedDateUTC"] != created["UpdatedDateUTC"]
    assert updated["UpdatedDateUTC"] == "/Date(1714555860000+0000)/"
    # resending the same values changes nothing, so the timestamp stays
    clock.advance(60)
    again = api.post(f"/Contacts/{created['ContactID']}", json={"EmailAddress": "b@partial.co.nz"}).json()
    assert again["Contacts"][0]["UpdatedDateUTC"] == updated["UpdatedDateUTC"]


def test_read_only_fields_are_ignored(org, api):
    sent = {
        "Name": "Sneaky Ltd",
        "IsCustomer": True,
        "IsSupplier": True,
        "UpdatedDateUTC": "/Date(946684800000+0000)/",
        "HasAttachments": True,
        "Discount": 50,
        "Website": "https://sneaky.example",
    }
    contact = api.put("/Contacts", json={"Contacts": [sent]}).json()["Contacts"][0]
    assert contact["IsCustomer"] is False and contact["IsSupplier"] is False
    assert contact["HasAttachments"] is False
    assert "Discount" not in contact and "Website" not in contact
    assert contact["UpdatedDateUTC"] == "/Date(1714555800000+0000)/"


def test_post_matches_by_id_then_contact_number_put_always_creates(org, api):
    first = api.put("/Contacts", json={"Contacts": [{"Name": "Numbered", "ContactNumber": "EXT-1"}]})
    contact_id = first.json()["Contacts"][0]["ContactID"]
    by_number = api.post("/Contacts", json={"Contacts": [{"ContactNumber": "EXT-1", "Name": "Renamed"}]})
    assert by_number.json()["Contacts"][0]["ContactID"] == contact_id
    assert _contact_names(api) == ["Renamed"]
    clash = api.put("/Contacts", json={"Contacts": [{"ContactNumber": "EXT-1", "Name": "Another"}]})
    assert clash.status_code == 400
    assert clash.json()["Elements"][0]["ValidationErrors"][0]["Message"] == (
        "Another contact has this contact number. Please enter a different contact number."
    )
    unknown = api.post(
        "/Contacts", json={"Contacts": [{"ContactID": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}]}
    )
    assert unknown.status_code == 400


def test_archived_name_can_be_reused_by_an_active_contact(org, api):
    old = org.upsert_contacts([{"Name": "Reused"}])[0].record
    org.upsert_contacts([{"ContactID": old["ContactID"], "ContactStatus": "ARCHIVED"}])
    assert api.put("/Contacts", json={"Name": "Reused"}).status_code == 200
    restore = api.post(f"/Contacts/{old['ContactID']}", json={"ContactStatus": "ACTIVE"})
    assert restore.status_code == 400  # two active contacts may not share it


def test_post_to_unknown_record_url_is_404(org, api):
    response = api.post("/Contacts/6f9619ff-8b86-d011-b42d-00cf4fc964ff", json={"Name": "x"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "error_number", "error_type"),
    [
        (b"{not json", 14, "PostDataInvalidException"),
        (b'{"Contacts": []}', 17, "NoDataProcessedException"),
        (b'{"Contacts": "nope"}', 14, "PostDataInvalidException"),
    ],
)
def test_unusable_bodies(org, api, body, error_number, error_type):
    response = api.put("/Contacts", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert (response.json()["ErrorNumber"], response.json()["Type"]) == (error_number, error_type)


def test_items_unique_code_update_by_code_and_delete(org, api):
    created = api.put(
        "/Items",
        json={
            "Items": [
                {
                    "Code": "WID-1",
                    "Name": "Widget",
                    "SalesDetails": {"UnitPrice": 12.345, "AccountCode": "200", "TaxType": "OUTPUT2"},
                }
            ]
        },
    )
    assert created.status_code == 200
    assert created.json()["Items"][0]["SalesDetails"]["UnitPrice"] == 12.35
    duplicate = api.put("/Items", json={"Items": [{"Code": "wid-1", "Name": "Again"}]})
    assert duplicate.status_code == 400
    assert (
        duplicate.json()["Elements"][0]["ValidationErrors"][0]["Message"]
        == "Item code 'wid-1' already exists"
    )
    by_code = api.post("/Items", json={"Items": [{"Code": "WID-1", "Description": "A fine widget"}]}).json()
    assert by_code["Items"][0]["Name"] == "Widget" and by_code["Items"][0]["Description"] == "A fine widget"
    bad = api.post("/Items", json={"Code": "X", "SalesDetails": {"AccountCode": "999", "TaxType": "BOGUS"}})
    assert [e["Message"] for e in bad.json()["Elements"][0]["ValidationErrors"]] == [
        "Account code '999' is not a valid code for this document.",
        "The TaxType code BOGUS does not exist or cannot be used for this type of transaction.",
    ]
    assert api.delete("/Items/WID-1").status_code == 204
    assert api.get("/Items/WID-1").status_code == 404


def test_tracked_items_and_unitdp(org, api):
    response = api.put(
        "/Items",
        params={"unitdp": 4},
        json={
            "Code": "TRK-1",
            "Name": "Tracked",
            "InventoryAssetAccountCode": "630",
            "PurchaseDetails": {"UnitPrice": 1.2345, "COGSAccountCode": "310"},
            "SalesDetails": {"UnitPrice": 2.5, "AccountCode": "200"},
        },
    )
    item = response.json()["Items"][0]
    assert item["IsTrackedAsInventory"] is True and item["QuantityOnHand"] == 0
    assert (
        api.get("/Items/TRK-1", params={"unitdp": 4}).json()["Items"][0]["PurchaseDetails"]["UnitPrice"]
        == 1.2345
    )
    assert api.get("/Items/TRK-1").json()["Items"][0]["PurchaseDetails"]["UnitPrice"] == 1.23
    missing_cogs = api.put("/Items", json={"Code": "TRK-2", "InventoryAssetAccountCode": "630"})
    assert missing_cogs.status_code == 400


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "999"},
         "Account code '999' is not a valid code for this document."),
        ({"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "610"},
         "Account code '610' is not a valid code for this document."),
        ({"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "NOPE"},
         "The TaxType code NOPE does not exist or cannot be used for this type of transaction."),
        ({"ItemCode": "GHOST", "Quantity": 1}, "Item code 'GHOST' is not valid"),
        ({"Description": "x", "Quantity": 2, "UnitAmount": 5, "LineAmount": 12, "AccountCode": "200"},
         "The line total 12.00 does not match the expected line total 10.00"),
    ],
)  # fmt: skip
def test_invoice_line_validation_messages(org, api, line, message):
    contact = org.upsert_contacts([{"Name": "Buyer"}])[0].record
    response = api.put(
        "/Invoices",
        json={
            "Invoices": [
                {"Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "LineItems": [line]}
            ]
        },
    )
    assert response.status_code == 400
    assert response.json()["Elements"][0]["ValidationErrors"] == [{"Message": message}]


def test_invoice_document_validation_messages(org, api):
    contact = {"ContactID": org.upsert_contacts([{"Name": "Buyer"}])[0].record["ContactID"]}

    def errors(invoice: dict) -> list[str]:
        response = api.put("/Invoices", json={"Invoices": [invoice]})
        assert response.status_code == 400, response.text
        return [e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"]]

    line = {"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}
    assert errors({"Type": "ACCREC", "LineItems": [line]}) == [
        "A Contact must be specified for this type of transaction"
    ]
    assert errors({"Type": "ACCREC", "Contact": contact, "Status": "AUTHORISED"}) == [
        "One or more line items must be specified"
    ]
    first = api.put(
        "/Invoices", json={"Type": "ACCREC", "InvoiceNumber": "X-1", "Contact": contact, "LineItems": [line]}
    )
    assert first.status_code == 200
    assert errors({"Type": "ACCREC", "InvoiceNumber": "x-1", "Contact": contact, "LineItems": [line]}) == [
        "Invoice # must be unique."
    ]
    assert errors({"Type": "ACCREC", "Contact": contact, "CurrencyCode": "EUR", "LineItems": [line]}) == [
        "The currency code 'EUR' is not a valid currency for this organisation."
    ]


def test_invoice_contact_by_name_creates_the_contact(org, api):
    response = api.put(
        "/Invoices",
        json={
            "Type": "ACCREC",
            "Contact": {"Name": "Walk-in Customer"},
            "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}],
        },
    )
    assert response.status_code == 200
    contact = api.get("/Contacts", params={"where": 'Name=="Walk-in Customer"'}).json()["Contacts"][0]
    assert contact["IsCustomer"] is True
    assert response.json()["Invoices"][0]["Contact"]["ContactID"] == contact["ContactID"]


def test_item_code_fills_line_defaults(org, api):
    org.upsert_items(
        [
            {
                "Code": "SVC-1",
                "Name": "Service",
                "Description": "Hourly service",
                "SalesDetails": {"UnitPrice": 120, "AccountCode": "260", "TaxType": "NONE"},
            }
        ]
    )
    contact = org.upsert_contacts([{"Name": "Buyer"}])[0].record
    invoice = api.put(
        "/Invoices",
        json={
            "Type": "ACCREC",
            "Contact": {"ContactID": contact["ContactID"]},
            "LineItems": [{"ItemCode": "svc-1", "Quantity": 2}],
        },
    ).json()["Invoices"][0]
    line = invoice["LineItems"][0]
    assert (line["ItemCode"], line["Description"], line["UnitAmount"]) == ("SVC-1", "Hourly service", 120)
    assert (line["AccountCode"], line["TaxType"], line["LineAmount"], line["TaxAmount"]) == (
        "260",
        "NONE",
        240,
        0,
    )
    assert line["Item"]["Code"] == "SVC-1"
