"""GET semantics over HTTP: paging, If-Modified-Since, where, order, filters, views, 404 and Xero's wire form."""

from __future__ import annotations

import re

import orjson
import pytest

from xero_sandbox.accounting import OrgStore


def _contacts(org: OrgStore, clock, names: list[str], step: float = 1.0) -> list[dict]:
    records = []
    for name in names:
        result = org.upsert_contacts([{"Name": name}])[0]
        assert result.ok, result.errors
        records.append(result.record)
        clock.advance(step)
    return records


def _names(response) -> list[str]:
    return [contact["Name"] for contact in response.json()["Contacts"]]


# --------------------------------------------------------------------------------------------------- paging
def test_pages_carry_xero_pagination_block_and_cover_every_record_once(org, clock, api):
    created = _contacts(org, clock, [f"Contact {i:03d}" for i in range(250)], step=0.001)

    first = api.get("/Contacts", params={"page": 1})
    assert first.status_code == 200
    assert first.json()["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 3, "itemCount": 250}
    seen = []
    for page in (1, 2, 3):
        body = api.get("/Contacts", params={"page": page}).json()
        seen += [c["ContactID"] for c in body["Contacts"]]
    assert len(seen) == 250
    assert sorted(seen) == sorted(c["ContactID"] for c in created)
    past_end = api.get("/Contacts", params={"page": 4}).json()
    assert past_end["Contacts"] == []
    assert past_end["pagination"]["pageCount"] == 3


def test_page_size_is_honoured_up_to_1000(org, clock, api):
    _contacts(org, clock, [f"C{i}" for i in range(12)], step=0.001)
    body = api.get("/Contacts", params={"page": 2, "pageSize": 5}).json()
    assert len(body["Contacts"]) == 5
    assert body["pagination"] == {"page": 2, "pageSize": 5, "pageCount": 3, "itemCount": 12}
    assert api.get("/Contacts", params={"page": 1, "pageSize": 5000}).json()["pagination"]["pageSize"] == 1000


def test_unpaged_list_returns_everything_without_pagination(org, clock, api):
    _contacts(org, clock, [f"C{i}" for i in range(130)], step=0.001)
    response = api.get("/Contacts")
    body = response.json()
    assert "pagination" not in body
    assert len(body["Contacts"]) == 130
    assert response.headers["x-records-returned"] == "130"


def test_paged_invoices_carry_lines_unpaged_do_not(org, api):
    contact = org.upsert_contacts([{"Name": "Lines Ltd"}])[0].record
    org.create_invoices(
        [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact["ContactID"]},
                "LineItems": [
                    {"Description": "Thing", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}
                ],
            }
        ]
    )
    paged = api.get("/Invoices", params={"page": 1}).json()["Invoices"][0]
    assert paged["LineItems"][0]["Description"] == "Thing"
    unpaged = api.get("/Invoices").json()["Invoices"][0]
    assert "LineItems" not in unpaged
    assert unpaged["Total"] == 11.5


# ---------------------------------------------------------------------------------------- If-Modified-Since
@pytest.mark.parametrize(
    "header",
    [
        "2024-05-01T09:30:10",  # ISO without offset: UTC
        "2024-05-01T21:30:10+12:00",  # ISO with offset
        "2024-05-01T09:30:10.999Z",  # fractional seconds are truncated to the second
        "Wed, 01 May 2024 09:30:10 GMT",  # RFC 1123
    ],
)
def test_if_modified_since_in_every_format(org, clock, api, header):
    # clock starts at 2024-05-01T09:30:00Z; contacts are stamped at +0s, +10s, +20s
    _contacts(org, clock, ["Old", "Edge", "New"], step=10)
    response = api.get("/Contacts", headers={"If-Modified-Since": header})
    assert _names(response) == ["Edge", "New"]


def test_if_modified_since_sees_updates_and_archiving(org, clock, api):
    old, other = _contacts(org, clock, ["Old", "Other"], step=10)
    watermark = "2024-05-01T09:30:30"
    clock.advance(30)
    org.upsert_contacts([{"ContactID": old["ContactID"], "EmailAddress": "old@example.com"}])
    clock.advance(1)  # Xero's default order is UpdatedDateUTC, then the ID: a second apart keeps it readable
    org.upsert_contacts([{"ContactID": other["ContactID"], "ContactStatus": "ARCHIVED"}])
    changed = api.get(
        "/Contacts", headers={"If-Modified-Since": watermark}, params={"includeArchived": "true"}
    )
    assert _names(changed) == ["Old", "Other"]
    assert (
        api.get("/Contacts", headers={"If-Modified-Since": watermark}).json()["Contacts"][0]["Name"] == "Old"
    )


def test_unparseable_if_modified_since_is_ignored(org, clock, api):
    _contacts(org, clock, ["A", "B"])
    assert _names(api.get("/Contacts", headers={"If-Modified-Since": "yesterday-ish"})) == ["A", "B"]


# ---------------------------------------------------------------------------------------------------- where
@pytest.fixture
def shop(org, clock):
    """Contacts and invoices to filter: names, statuses, numbers, dates and totals that differ."""
    acme, jane, bolt = (
        org.upsert_contacts([c])[0].record
        for c in (
            {"Name": "Acme Widgets Ltd", "ContactNumber": "C-1", "EmailAddress": "accounts@acme.co.nz"},
            {"Name": "Jane Smith", "FirstName": "Jane", "LastName": "Smith"},
            {"Name": "Bolt Supplies", "ContactNumber": "C-3"},
        )
    )
    invoices = []
    for contact, amount, day, status in (
        (acme, 100, "2024-01-15", "AUTHORISED"),
        (acme, 40, "2024-02-20", "DRAFT"),
        (jane, 250, "2024-03-05", "AUTHORISED"),
    ):
        clock.advance(5)
        result = org.create_invoices(
            [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact["ContactID"]},
                    "Date": day,
                    "Status": status,
                    "LineItems": [
                        {"Description": "x", "Quantity": 1, "UnitAmount": amount, "AccountCode": "200"}
                    ],
                }
            ]
        )[0]
        assert result.ok, result.errors
        invoices.append(result.record)
    bill = org.create_invoices(
        [
            {
                "Type": "ACCPAY",
                "Contact": {"ContactID": bolt["ContactID"]},
                "Date": "2024-03-10",
                "LineItems": [{"Description": "y", "Quantity": 2, "UnitAmount": 30, "AccountCode": "300"}],
            }
        ]
    )[0].record
    return {"acme": acme, "jane": jane, "bolt": bolt, "invoices": invoices, "bill": bill}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('Name=="Jane Smith"', ["Jane Smith"]),
        (
            'Name = "jane smith"',
            ["Jane Smith"],
        ),  # single '=' and case-insensitive strings, as Xero's collation
        ('Name!="Jane Smith"', ["Acme Widgets Ltd", "Bolt Supplies"]),
        ('Name<>"Jane Smith"', ["Acme Widgets Ltd", "Bolt Supplies"]),
        ('Name<"B"', ["Acme Widgets Ltd"]),
        ('Name>"Bolt Supplies"', ["Jane Smith"]),
        ('Name<="Bolt Supplies"', ["Acme Widgets Ltd", "Bolt Supplies"]),
        ('Name>="bolt supplies"', ["Bolt Supplies", "Jane Smith"]),
        ('Name.Contains("widget")', ["Acme Widgets Ltd"]),
        ('Name.StartsWith("ja")', ["Jane Smith"]),
        ('Name.EndsWith("LTD")', ["Acme Widgets Ltd"]),
        ('ContactNumber=="C-1" OR ContactNumber=="C-3"', ["Acme Widgets Ltd", "Bolt Supplies"]),
        ('ContactNumber=="C-1" || Name=="Jane Smith"', ["Acme Widgets Ltd", "Jane Smith"]),
        ('ContactNumber!=null AND Name.Contains("o")', ["Bolt Supplies"]),
        ('ContactNumber!=null && Name.Contains("o")', ["Bolt Supplies"]),
        ("ContactNumber==null", ["Jane Smith"]),
        ('(Name=="Jane Smith" OR Name=="Bolt Supplies") AND ContactNumber!=null', ["Bolt Supplies"]),
        ('NOT Name.Contains("a")', ["Bolt Supplies"]),
        ('!(Name.Contains("a"))', ["Bolt Supplies"]),
        ("IsCustomer==true", ["Acme Widgets Ltd", "Jane Smith"]),
        ("IsSupplier==true AND IsCustomer==false", ["Bolt Supplies"]),
        ('EmailAddress.ToLower()=="accounts@acme.co.nz"', ["Acme Widgets Ltd"]),
    ],
)
def test_where_on_contacts(shop, api, where, expected):
    response = api.get("/Contacts", params={"where": where, "order": "Name"})
    assert response.status_code == 200, response.text
    assert _names(response) == expected


def test_where_guid_dates_numbers_and_nested_paths_on_invoices(shop, api):
    acme_id = shop["acme"]["ContactID"]

    def numbers(where: str) -> list[str]:
        response = api.get("/Invoices", params={"where": where, "order": "InvoiceNumber"})
        assert response.status_code == 200, response.text
        return [inv["InvoiceNumber"] for inv in response.json()["Invoices"]]

    assert numbers(f'Contact.ContactID==Guid("{acme_id.upper()}")') == ["INV-0001", "INV-0002"]
    assert numbers('Contact.Name.Contains("smith")') == ["INV-0003"]
    assert numbers('Date>=DateTime(2024,02,01) AND Type=="ACCREC"') == ["INV-0002", "INV-0003"]
    assert numbers('Date<DateTime.Parse("2024-02-01T00:00:00")') == ["INV-0001"]
    assert numbers("Total>115") == ["INV-0003"]
    assert numbers('Total>=115 AND Status=="AUTHORISED"') == ["INV-0001", "INV-0003"]
    assert numbers("AmountDue<=46") == ["INV-0002"]
    bills = api.get("/Invoices", params={"where": 'Type=="ACCPAY"'}).json()["Invoices"]
    assert [b["InvoiceID"] for b in bills] == [shop["bill"]["InvoiceID"]]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("Name==", "Expression expected"),
        ('Nmae=="x"', "No property or field 'Nmae' exists in type 'Contact'"),
        (
            'ContactID=="not-a-guid-literal"',
            "Operator '==' incompatible with operand types 'Guid' and 'String'",
        ),
        ('IsCustomer=="true"', "Operator '==' incompatible with operand types 'Boolean' and 'String'"),
        ("Name=='ab'", "Character literal must contain exactly one character"),
        ('Name=="a" Name=="b"', "')' or operator expected"),
    ],
)
def test_malformed_where_gets_xeros_query_parse_exception(org, api, where, message):
    response = api.get("/Contacts", params={"where": where})
    assert response.status_code == 400
    assert response.json() == {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


# ---------------------------------------------------------------------------------------------------- order
def test_order_by_one_and_several_keys_with_id_tie_break(org, clock, api):
    for name, number in (("b", "2"), ("a", "2"), ("c", "1"), ("d", None)):
        element = {"Name": name}
        if number:
            element["AccountNumber"] = number
        org.upsert_contacts([element])
        clock.advance(1)
    assert _names(api.get("/Contacts", params={"order": "Name ASC"})) == ["a", "b", "c", "d"]
    assert _names(api.get("/Contacts", params={"order": "name desc"})) == ["d", "c", "b", "a"]
    assert _names(api.get("/Contacts", params={"order": "UpdatedDateUTC DESC"})) == ["d", "c", "a", "b"]
    # nulls first ascending; ties on AccountNumber fall back to the next key
    assert _names(api.get("/Contacts", params={"order": "AccountNumber DESC, Name"})) == ["a", "b", "c", "d"]
    # equal keys: ordered by ContactID, so pages are stable
    clock.advance(-10)
    ties = _contacts(org, clock, ["t1", "t2", "t3"], step=0)
    body = api.get("/Contacts", params={"order": "UpdatedDateUTC", "where": 'Name.StartsWith("t")'}).json()
    assert [c["ContactID"] for c in body["Contacts"]] == sorted(c["ContactID"] for c in ties)


def test_unknown_order_field_is_refused(org, api):
    response = api.get("/Contacts", params={"order": "Shoe ASC"})
    assert response.status_code == 400
    assert response.json()["Type"] == "QueryParseException"


# -------------------------------------------------------------------------------------------------- filters
def test_archived_contacts_need_include_archived(org, clock, api):
    kept, gone = _contacts(org, clock, ["Kept", "Gone"])
    org.upsert_contacts([{"ContactID": gone["ContactID"], "ContactStatus": "ARCHIVED"}])
    assert _names(api.get("/Contacts")) == ["Kept"]
    assert _names(api.get("/Contacts", params={"includeArchived": "true"})) == ["Kept", "Gone"]
    assert api.get("/Contacts", params={"page": 1}).json()["pagination"]["itemCount"] == 1
    # asking for it by ID, or directly, still finds it
    assert _names(api.get("/Contacts", params={"IDs": gone["ContactID"]})) == ["Gone"]
    assert api.get(f"/Contacts/{gone['ContactID']}").json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"


def test_ids_statuses_contact_ids_and_invoice_numbers(shop, api):
    acme, jane = shop["acme"]["ContactID"], shop["jane"]["ContactID"]
    ids = ",".join(c["ContactID"] for c in (shop["acme"], shop["bolt"]))
    assert sorted(_names(api.get("/Contacts", params={"IDs": ids}))) == ["Acme Widgets Ltd", "Bolt Supplies"]

    def numbers(**params) -> list[str]:
        return sorted(
            i.get("InvoiceNumber", "") for i in api.get("/Invoices", params=params).json()["Invoices"]
        )

    assert numbers(Statuses="DRAFT") == ["", "INV-0002"]  # the draft bill has no number
    assert numbers(Statuses="DRAFT,AUTHORISED", ContactIDs=acme) == ["INV-0001", "INV-0002"]
    assert numbers(ContactIDs=jane) == ["INV-0003"]
    assert numbers(InvoiceNumbers="INV-0001,INV-0003") == ["INV-0001", "INV-0003"]
    assert numbers(searchTerm="inv-000") == ["INV-0001", "INV-0002", "INV-0003"]


def test_summary_only_leaves_out_heavy_fields(shop, api):
    contact = api.get("/Contacts", params={"summaryOnly": "true", "where": 'Name=="Jane Smith"'}).json()
    assert "Addresses" not in contact["Contacts"][0]
    assert contact["Contacts"][0]["Name"] == "Jane Smith"
    invoices = api.get("/Invoices", params={"summaryOnly": "true", "page": 1}).json()["Invoices"]
    assert all("LineItems" not in i and "Payments" not in i and "Total" in i for i in invoices)


# ---------------------------------------------------------------------------------------------- single reads
def test_single_records_by_id_number_and_code(shop, org, api):
    acme = shop["acme"]
    assert api.get(f"/Contacts/{acme['ContactID']}").json()["Contacts"][0]["Name"] == "Acme Widgets Ltd"
    assert api.get("/Contacts/C-3").json()["Contacts"][0]["Name"] == "Bolt Supplies"
    invoice = api.get("/Invoices/INV-0003").json()["Invoices"][0]
    assert invoice["InvoiceID"] == shop["invoices"][2]["InvoiceID"]
    assert invoice["LineItems"][0]["LineAmount"] == 250
    org.upsert_items([{"Code": "WID-1", "Name": "Widget"}])
    assert api.get("/Items/WID-1").json()["Items"][0]["Name"] == "Widget"


@pytest.mark.parametrize(
    "path",
    [
        "/Contacts/6f9619ff-8b86-d011-b42d-00cf4fc964ff",
        "/Contacts/NO-SUCH-NUMBER",
        "/Invoices/6f9619ff-8b86-d011-b42d-00cf4fc964ff",
        "/Items/NOPE",
        "/Payments/6f9619ff-8b86-d011-b42d-00cf4fc964ff",
        "/PurchaseOrders/PO-9999",
        "/TaxRates/NOSUCHTAX",
    ],
)
def test_unknown_record_is_xeros_404_sentence(org, api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.text == "The resource you're looking for cannot be found"


# ------------------------------------------------------------------------------------------------ wire form
def test_envelope_dates_and_guids_look_like_xero(shop, api):
    raw = api.get("/Invoices", params={"page": 1}).content
    body = orjson.loads(raw)
    assert set(body) >= {"Id", "Status", "ProviderName", "DateTimeUTC", "pagination", "Invoices"}
    assert body["Status"] == "OK" and body["ProviderName"] == "Xero Sandbox"
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", body["DateTimeUTC"])
    first = next(i for i in body["Invoices"] if i["InvoiceNumber"] == "INV-0001")
    assert first["Date"] == "/Date(1705276800000+0000)/"  # 2024-01-15T00:00:00Z
    assert first["DateString"] == "2024-01-15T00:00:00"
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", first["UpdatedDateUTC"])
    assert b":null" not in raw
    for guid in re.findall(rb'"[A-Za-z]*ID":"([^"]+)"', raw):
        assert guid == guid.lower()


def test_settings_endpoints(org, api):
    org_body = api.get("/Organisation").json()
    assert org_body["Organisations"][0]["BaseCurrency"] == "NZD"
    assert org_body["Organisations"][0]["OrganisationID"] == org.tenant_id
    codes = {a["Code"] for a in api.get("/Accounts").json()["Accounts"]}
    assert {"090", "200", "300", "610", "800"} <= codes
    tax = api.get("/TaxRates", params={"where": 'TaxType=="OUTPUT2"'}).json()["TaxRates"]
    assert tax[0]["EffectiveRate"] == 15.0
    assert [c["Code"] for c in api.get("/Currencies").json()["Currencies"]] == ["NZD"]
    assert api.put("/Currencies", json={"Code": "USD"}).status_code == 200
    assert [c["Code"] for c in api.get("/Currencies").json()["Currencies"]] == ["NZD", "USD"]
    assert len(api.get("/BrandingThemes").json()["BrandingThemes"]) == 2
    org.add_tracking_category("Region", ["North", "South"])
    assert api.get("/TrackingCategories").json()["TrackingCategories"][0]["Options"][1]["Name"] == "South"
