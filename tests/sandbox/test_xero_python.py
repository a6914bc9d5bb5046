"""Xero's own Python SDK (xero-python) against the sandbox, changed in nothing but its URLs.

xero-python takes the API base URL per API class (`AccountingApi(api_client, base_url=...)`,
`IdentityApi(api_client, base_url=...)`); its token endpoint is a class attribute of `TokenApi`, pointed at the
sandbox for the duration of each test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import Contact, Contacts, Invoice, Invoices, Item, Items, LineItem
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import AccountingBadRequestException, ApiException, RateLimitException
from xero_python.identity import IdentityApi

from xero_sandbox.limits import LimitConfig
from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from .conftest import get_token


@dataclass
class Sdk:
    client: ApiClient
    accounting: AccountingApi
    identity: IdentityApi
    tokens: dict[str, Any]  # what the SDK's token saver stored last


def make_sdk(url: str, token: dict[str, Any]) -> Sdk:
    tokens = {"token": dict(token)}
    config = Configuration()
    config.oauth2_token = OAuth2Token(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)
    client = ApiClient(
        config,
        pool_threads=1,
        oauth2_token_getter=lambda: tokens["token"],
        oauth2_token_saver=lambda new: tokens.update(token=new),
    )
    return Sdk(
        client,
        AccountingApi(client, base_url=f"{url}/api.xro/2.0"),
        IdentityApi(client, base_url=url),
        tokens,
    )


@pytest.fixture
def token_url(sandbox, monkeypatch) -> None:
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{sandbox.url}/connect/token")
    monkeypatch.setattr(TokenApi, "revoke_token_url", f"{sandbox.url}/connect/revocation")


@pytest.fixture
def sdk(sandbox, token_url) -> Iterator[Sdk]:
    yield make_sdk(sandbox.url, get_token(sandbox))


@pytest.fixture
def tenant(tenant_ids) -> str:
    return tenant_ids[0]


# ---- identity -----------------------------------------------------------------------------------------------


def test_get_connections(sdk, tenant_ids):
    connections = sdk.identity.get_connections()
    assert sorted(c.tenant_id for c in connections) == sorted(tenant_ids)
    for conn in connections:
        assert conn.tenant_type == "ORGANISATION"
        assert conn.tenant_name.startswith("Demo Company")
        assert isinstance(conn.created_date_utc, datetime)


def test_refresh_with_rotation_through_the_sdk(sdk, tenant):
    before = dict(sdk.tokens["token"])
    refreshed = sdk.client.refresh_oauth2_token()
    assert refreshed["refresh_token"] != before["refresh_token"]
    assert refreshed["access_token"] != before["access_token"]
    assert sdk.tokens["token"]["refresh_token"] == refreshed["refresh_token"]
    assert sdk.accounting.get_organisations(tenant).organisations[0].name


def test_sdk_refreshes_an_expired_token_by_itself(sdk, tenant):
    sdk.tokens["token"]["expires_at"] = time.time() - 10
    old_refresh = sdk.tokens["token"]["refresh_token"]
    contacts = sdk.accounting.get_contacts(tenant)
    assert contacts.contacts
    assert sdk.tokens["token"]["refresh_token"] != old_refresh


def test_revoke_through_the_sdk(sandbox, token_url, tenant_ids):
    email = f"sdk-{uuid.uuid4().hex[:8]}@example.com"
    sandbox.admin.add_user(email, tenant_ids)
    sdk = make_sdk(sandbox.url, get_token(sandbox, login_hint=email))
    old = dict(sdk.tokens["token"])
    sdk.client.revoke_oauth2_token()
    sdk.tokens["token"] = old
    with pytest.raises(Exception, match="invalid_grant"):
        sdk.client.refresh_oauth2_token()


# ---- reading every entity -----------------------------------------------------------------------------------


LISTS = [
    ("get_accounts", "accounts", "account_id"),
    ("get_tax_rates", "tax_rates", "tax_type"),
    ("get_currencies", "currencies", "code"),
    ("get_branding_themes", "branding_themes", "branding_theme_id"),
    ("get_tracking_categories", "tracking_categories", None),
    ("get_organisations", "organisations", "organisation_id"),
    ("get_contacts", "contacts", "contact_id"),
    ("get_items", "items", "item_id"),
    ("get_invoices", "invoices", None),
    ("get_credit_notes", "credit_notes", None),
    ("get_purchase_orders", "purchase_orders", None),
    ("get_payments", "payments", None),
]


@pytest.mark.parametrize(("method", "attribute", "id_field"), LISTS)
def test_every_entity_lists(sdk, tenant, method, attribute, id_field):
    result = getattr(sdk.accounting, method)(tenant)
    records = getattr(result, attribute)
    assert isinstance(records, list)
    if id_field:
        assert records and all(getattr(r, id_field) for r in records)


def test_contacts_paged_filtered_and_incremental(sdk, tenant, sandbox):
    total = len(sandbox.state.tenants[tenant].store.contacts)
    seen: list[str] = []
    page = 1
    while True:
        result = sdk.accounting.get_contacts(tenant, page=page, page_size=7, include_archived=True)
        if not result.contacts:
            break
        assert len(result.contacts) <= 7
        seen += [c.contact_id for c in result.contacts]
        page += 1
    assert len(seen) == len(set(seen)) == total
    assert result.pagination.item_count == total

    name = sdk.accounting.get_contacts(tenant, page=1).contacts[0].name
    found = sdk.accounting.get_contacts(tenant, where=f'Name=="{name}"')
    assert [c.name for c in found.contacts] == [name]

    future = datetime.now(UTC) + timedelta(days=1)
    assert sdk.accounting.get_contacts(tenant, if_modified_since=future).contacts == []
    created = sdk.accounting.create_contacts(
        tenant, Contacts(contacts=[Contact(name=f"Incremental {uuid.uuid4()}")])
    )
    since = created.contacts[0].updated_date_utc - timedelta(seconds=1)
    changed = sdk.accounting.get_contacts(tenant, if_modified_since=since)
    assert created.contacts[0].contact_id in {c.contact_id for c in changed.contacts}


# ---- writing ------------------------------------------------------------------------------------------------


def test_batch_create_and_update_with_summarize_errors_false(sdk, tenant):
    tag = uuid.uuid4().hex[:8]
    result = sdk.accounting.create_contacts(
        tenant,
        Contacts(
            contacts=[
                Contact(name=f"Batch A {tag}"),
                Contact(name=f"Batch A {tag}"),
                Contact(name=f"Batch B {tag}"),
            ]
        ),
        summarize_errors=False,
    )
    flags = [bool(c.has_validation_errors) for c in result.contacts]
    assert flags == [False, True, False]
    assert result.contacts[1].validation_errors[0].message

    first = result.contacts[0]
    updated = sdk.accounting.update_or_create_contacts(
        tenant,
        Contacts(
            contacts=[
                Contact(contact_id=first.contact_id, email_address=f"{tag}@example.com"),
                Contact(name=""),
            ]
        ),
        summarize_errors=False,
    )
    assert updated.contacts[0].email_address == f"{tag}@example.com"
    assert updated.contacts[1].has_validation_errors


def test_invoices_batch_through_the_sdk(sdk, tenant):
    contact = sdk.accounting.get_contacts(tenant, page=1).contacts[0]
    line = LineItem(description="Widget", quantity=2.0, unit_amount=10.0, account_code="200")
    invoices = Invoices(
        invoices=[
            Invoice(type="ACCREC", contact=Contact(contact_id=contact.contact_id), line_items=[line]),
            Invoice(type="ACCREC", line_items=[line]),  # no contact: invalid
        ]
    )
    result = sdk.accounting.create_invoices(tenant, invoices, summarize_errors=False)
    good, bad = result.invoices
    assert good.invoice_id and not good.has_errors
    assert good.total > 0
    assert bad.has_errors and bad.validation_errors


def test_validation_error_surfaces_with_xeros_body(sdk, tenant):
    code = f"SDK-{uuid.uuid4().hex[:6]}"
    with pytest.raises(AccountingBadRequestException) as raised:
        sdk.accounting.create_items(
            tenant, Items(items=[Item(code=code, name="a"), Item(code=code, name="b")])
        )
    error = raised.value
    assert error.status == 400
    body = orjson.loads(error.body)
    assert body["Type"] == "ValidationException"
    assert body["Elements"][-1]["ValidationErrors"][0]["Message"]
    assert error.reason == body["Elements"][0]["ValidationErrors"][0]["Message"] or error.reason


def test_idempotency_key_replay_through_the_sdk(sdk, tenant, sandbox):
    from xero_python.exceptions import AccountingBadRequestException

    key = str(uuid.uuid4())
    name = f"Idempotent SDK {key[:8]}"
    first = sdk.accounting.create_contacts(
        tenant, Contacts(contacts=[Contact(name=name)]), idempotency_key=key
    )
    second = sdk.accounting.create_contacts(
        tenant, Contacts(contacts=[Contact(name=name)]), idempotency_key=key
    )
    assert second.contacts[0].contact_id == first.contacts[0].contact_id
    # The same key on a different request: Xero's 400, never a replay.
    with pytest.raises(AccountingBadRequestException):
        sdk.accounting.create_contacts(
            tenant, Contacts(contacts=[Contact(name=name + " changed")]), idempotency_key=key
        )
    matches = [
        c for c in sandbox.state.tenants[tenant].store.contacts.values() if c.get("Name", "").startswith(name)
    ]
    assert len(matches) == 1


def test_not_found_and_unauthorised_surface_as_sdk_exceptions(sdk, tenant):
    from xero_python.exceptions import NotFoundException

    with pytest.raises(NotFoundException):
        sdk.accounting.get_contact(tenant, str(uuid.uuid4()))
    sdk.tokens["token"]["access_token"] = "not-a-token"
    with pytest.raises(ApiException) as raised:
        sdk.accounting.get_contacts(tenant)
    assert raised.value.status == 401
    assert orjson.loads(raised.value.body)["Detail"] == "AuthenticationUnsuccessful"


def test_429_surfaces_as_rate_limit_exception(make_sandbox, monkeypatch):
    server = make_sandbox(tenants=1, contacts=2, limits=LimitConfig(minute=2, window_seconds=60))
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{server.url}/connect/token")
    sdk = make_sdk(server.url, get_token(server))
    tenant = server.admin.tenants()[0]["tenantId"]
    sdk.accounting.get_contacts(tenant)
    sdk.accounting.get_contacts(tenant)
    # A POST: urllib3 (under xero-python) retries GET and PUT on a 429 by itself, see the next test.
    with pytest.raises(RateLimitException) as raised:
        sdk.accounting.update_or_create_contacts(tenant, Contacts(contacts=[Contact(name="Limited Ltd")]))
    assert raised.value.rate_limit == "minute"
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 60
    assert "per minute rate limit" in raised.value.error_message


def test_sdk_sleeps_retry_after_and_retries_a_limited_get(make_sandbox, monkeypatch):
    """What pipeline code built on xero-python must know: urllib3's default Retry honours Retry-After on 429 for
    GET/PUT, so the SDK waits and retries (up to 3 times) instead of raising."""
    server = make_sandbox(tenants=1, contacts=2, limits=LimitConfig(minute=2, window_seconds=1))
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{server.url}/connect/token")
    sdk = make_sdk(server.url, get_token(server))
    tenant = server.admin.tenants()[0]["tenantId"]
    server.admin.clear_journal()
    statuses: list[int] = []
    for _ in range(20):  # until the limit bites (three calls do unless the machine is very slow)
        assert sdk.accounting.get_contacts(tenant).contacts
        statuses = [e["status"] for e in server.admin.journal(path_contains="/Contacts")]
        if 429 in statuses:
            break
    assert 429 in statuses and statuses[-1] == 200
