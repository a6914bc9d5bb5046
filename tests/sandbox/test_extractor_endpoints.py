"""The endpoints extractors read besides the pipeline's, answering as Xero does (docs/SANDBOX.md, "Extractors").

Sources: https://developer.xero.com/documentation/api/accounting/organisation (GET Organisation; Xero answers the
plural path too, which tap-xero calls), https://developer.xero.com/documentation/api/accounting/banktransactions,
.../users, .../contactgroups, .../journals, .../linkedtransactions, .../quotes (paging, If-Modified-Since), and
the spec's parameters per path (vendor/xero-openapi/xero_accounting.yaml).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xero_sandbox.accounting.entities import READ_ONLY

from .conftest import api_headers, get_token


@pytest.fixture
def private(make_sandbox):
    server = make_sandbox(contacts=5, tenants=1)
    tenant_id = server.admin.tenants()[0]["tenantId"]
    return server, tenant_id, api_headers(get_token(server), tenant_id)


def _get(server, headers, path, **options):
    import httpx

    return httpx.get(
        f"{server.url}/api.xro/2.0/{path}", headers={**headers, **options.pop("h", {})}, **options
    )


def test_organisation_answers_on_the_plural_path_too(sandbox, token, tenant_ids, http):
    headers = api_headers(token, tenant_ids[0])
    singular = http.get("/api.xro/2.0/Organisation", headers=headers).json()
    for path in ("/api.xro/2.0/Organisations", "/api.xro/2.0/organisations"):
        plural = http.get(path, headers=headers)
        assert plural.status_code == 200
        assert plural.json()["Organisations"] == singular["Organisations"]


def test_every_read_only_collection_answers_an_envelope(sandbox, token, tenant_ids, http):
    headers = api_headers(token, tenant_ids[0])
    for spec in READ_ONLY:
        response = http.get(f"/api.xro/2.0/{spec.collection}", headers=headers)
        assert response.status_code == 200, spec.collection
        assert isinstance(response.json()[spec.collection], list)


def test_users_are_the_people_who_may_connect_the_organisation(private):
    # A private organisation: the session's shared one gains a user whenever another test connects as one.
    server, _, headers = private
    users = _get(server, headers, "Users").json()["Users"]
    assert [u["EmailAddress"] for u in users] == ["demo.user@example.com"]


def _bank_transactions(store, count: int, start: datetime) -> None:
    records = [
        {
            "BankTransactionID": store.stable_id("bt", i),
            "Type": "SPEND",
            "Status": "AUTHORISED",
            "Total": 10.0,
            # Stored newest first: the answer must still come oldest first (Xero's default order).
            "UpdatedDateUTC": start + timedelta(minutes=count - i),
        }
        for i in range(count)
    ]
    store.bulk_load("BankTransactions", records)


def test_paged_read_only_collection_pages_by_100_in_updated_order_with_if_modified_since(private):
    server, tenant_id, headers = private
    store = server.state.tenants[tenant_id].store
    start = datetime(2024, 1, 1, tzinfo=UTC)
    _bank_transactions(store, 130, start)
    first = _get(server, headers, "BankTransactions", params={"page": 1}).json()
    second = _get(server, headers, "BankTransactions", params={"page": 2}).json()
    assert len(first["BankTransactions"]) == 100 and len(second["BankTransactions"]) == 30
    assert first["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 2, "itemCount": 130}
    ids = [r["BankTransactionID"] for r in first["BankTransactions"] + second["BankTransactions"]]
    assert ids == [store.stable_id("bt", i) for i in reversed(range(130))]
    since = (start + timedelta(minutes=121)).strftime("%Y-%m-%dT%H:%M:%S")
    recent = _get(server, headers, "BankTransactions", h={"If-Modified-Since": since}).json()
    assert len(recent["BankTransactions"]) == 10


def test_quotes_take_page_but_not_page_size(private):
    """The spec gives Quotes and LinkedTransactions `page` only: a pageSize is ignored (100 a page)."""
    server, _, headers = private
    body = _get(server, headers, "Quotes", params={"page": 1, "pageSize": 5}).json()
    assert body["pagination"]["pageSize"] == 100


def test_journals_read_by_offset(private):
    server, tenant_id, headers = private
    store = server.state.tenants[tenant_id].store
    store.bulk_load(
        "Journals",
        [
            {"JournalID": store.stable_id("j", n), "JournalNumber": n, "SourceType": "ACCREC"}
            for n in range(1, 151)
        ],
    )
    first = _get(server, headers, "Journals").json()["Journals"]
    assert [j["JournalNumber"] for j in first] == list(range(1, 101))
    rest = _get(server, headers, "Journals", params={"offset": 100}).json()["Journals"]
    assert [j["JournalNumber"] for j in rest] == list(range(101, 151))


def test_records_counts_what_the_sandbox_holds(private):
    server, tenant_id, _ = private
    store = server.state.tenants[tenant_id].store
    counts = server.admin.records(tenant_id)[tenant_id]
    assert counts["Contacts"]["held"] == len(store.contacts)
    assert counts["Invoices"] == {"held": len(store.invoices), "listed": len(store.invoices), "paged": True}
    archived = sum(1 for c in store.contacts.values() if c.get("ContactStatus") == "ARCHIVED")
    assert counts["Contacts"]["listed"] == len(store.contacts) - archived
    future = (datetime.now(UTC) + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%S")
    assert server.admin.records(tenant_id, modified_since=future)[tenant_id]["Contacts"]["held"] == 0
