"""What Xero leaves out of an unpaged GET /Contacts, and summaryOnly (docs/SANDBOX.md, "Reads as Xero answers").

Sources: the spec's Contact schema (vendor/xero-openapi/xero_accounting.yaml: MergedToContactID "Only returned when
using paging or when fetching a contact by ContactId or ContactNumber"; Sales/PurchasesDefaultLineAmountType
likewise), XeroAPI/xero-php-oauth2#121 (PaymentTerms missing from getContacts), XeroAPI/Xero-Java#298 and
XeroAPI/Xero-NetStandard#317 (tracking categories missing from a list); summaryOnly:
https://developer.xero.com/documentation/api/accounting/contacts ("summaryOnly ... lightweight fields").
"""

from __future__ import annotations

DETAIL = {
    "Name": "Detailed Ltd",
    "ContactPersons": [{"FirstName": "Ann", "LastName": "Lee", "EmailAddress": "ann@example.com"}],
    "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}},
}
PAGED_ONLY = {"ContactPersons", "PaymentTerms"}


def _only(response):
    assert response.status_code == 200, response.text
    (contact,) = response.json()["Contacts"]
    return contact


def test_unpaged_list_leaves_out_the_detail_paging_returns(org, api):
    (result,) = org.upsert_contacts([DETAIL])
    assert result.ok, result.errors
    unpaged = _only(api.get("/Contacts"))
    assert PAGED_ONLY.isdisjoint(unpaged)
    assert unpaged["Name"] == "Detailed Ltd"
    paged = _only(api.get("/Contacts", params={"page": 1}))
    assert PAGED_ONLY <= set(paged)
    single = _only(api.get(f"/Contacts/{unpaged['ContactID']}"))
    assert PAGED_ONLY <= set(single)
    assert single["PaymentTerms"] == paged["PaymentTerms"]


def test_summary_only_pages_and_leaves_out_the_heavy_fields(org, api):
    org.upsert_contacts([DETAIL])
    body = api.get("/Contacts", params={"summaryOnly": "true"}).json()
    assert body["pagination"]["page"] == 1 and body["pagination"]["pageSize"] == 100
    (contact,) = body["Contacts"]
    assert {"ContactPersons", "PaymentTerms", "Addresses", "Phones", "Balances"}.isdisjoint(contact)
