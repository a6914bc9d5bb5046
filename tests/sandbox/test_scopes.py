"""Scopes checked per endpoint (broad and granular), the bearer token, and the xero-tenant-id header."""

from __future__ import annotations

import re

import httpx
import pytest
import yaml

from xero_sandbox.scopes import accepted_scopes, is_allowed
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

from .conftest import api_headers, get_token

# ---- the table ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "method", "path", "allowed"),
    [
        ({"accounting.contacts.read"}, "GET", "/Contacts", True),
        ({"accounting.contacts.read"}, "PUT", "/Contacts", False),
        ({"accounting.contacts"}, "POST", "/Contacts/abc", True),
        ({"accounting.transactions.read"}, "GET", "/Invoices", True),
        ({"accounting.transactions.read"}, "POST", "/Invoices", False),
        ({"accounting.invoices"}, "POST", "/Invoices", True),
        ({"accounting.invoices.read"}, "GET", "/PurchaseOrders", True),
        ({"accounting.invoices"}, "GET", "/Payments", False),
        ({"accounting.payments"}, "PUT", "/Payments", True),
        ({"accounting.payments.read"}, "GET", "/Overpayments", True),
        ({"accounting.banktransactions.read"}, "GET", "/BankTransactions", True),
        ({"accounting.manualjournals"}, "PUT", "/ManualJournals", True),
        ({"accounting.invoices"}, "POST", "/Items", True),
        ({"accounting.settings.read"}, "GET", "/Items", True),
        ({"accounting.settings.read"}, "POST", "/Items", False),
        ({"accounting.contacts"}, "GET", "/Items", False),
        ({"accounting.settings.read"}, "GET", "/TaxRates", True),
        ({"accounting.transactions"}, "GET", "/Accounts", False),
        ({"accounting.settings.read"}, "GET", "/Organisation", True),
        ({"accounting.reports.read"}, "GET", "/Reports/BalanceSheet", True),
        ({"accounting.reports.balancesheet.read"}, "GET", "/Reports/BalanceSheet", True),
        ({"accounting.reports.balancesheet.read"}, "GET", "/Reports/ProfitAndLoss", False),
        ({"accounting.contacts"}, "GET", "/Contacts/abc/Attachments", False),
        ({"accounting.attachments.read"}, "GET", "/Invoices/abc/Attachments", True),
        ({"accounting.transactions"}, "GET", "/Journals", False),
        ({"accounting.journals.read"}, "GET", "/Journals", True),
    ],
)
def test_scope_table(scopes, method, path, allowed):
    assert is_allowed(frozenset(scopes), method, path) is allowed


def test_every_operation_in_xero_spec_opens_with_the_scopes_xero_declares(spec_dir):
    """Cross-check against the spec's own `security` blocks: what Xero says opens an operation must open it here
    too (our table adds the granular scopes on top)."""
    with open(spec_dir / "xero_accounting.yaml") as fh:
        spec = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    checked = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete") or "security" not in op:
                continue
            declared = {s for block in op["security"] for s in block.get("OAuth2", [])}
            if not declared or accepted_scopes(method.upper(), path) is None:
                continue
            concrete = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
            for scope in declared:
                # The spec lists the read-write scope on GETs too; a .read scope on a write would be an error.
                if method != "get" and scope.endswith(".read"):
                    continue
                assert is_allowed(frozenset({scope}), method.upper(), concrete), (method, path, scope)
                checked += 1
    assert checked > 150


# ---- over HTTP ---------------------------------------------------------------------------------------------


def test_scope_refusal_is_403_with_xeros_body(sandbox, tenant_ids):
    token = get_token(sandbox, scopes=["offline_access", "accounting.contacts.read"])
    ok = httpx.get(f"{sandbox.url}/api.xro/2.0/Contacts", headers=api_headers(token, tenant_ids[0]))
    assert ok.status_code == 200
    for method, path in (("GET", "/Organisation"), ("PUT", "/Contacts"), ("GET", "/Invoices")):
        response = httpx.request(
            method, f"{sandbox.url}/api.xro/2.0{path}", headers=api_headers(token, tenant_ids[0]), json={}
        )
        assert response.status_code == 403, (method, path)
        body = response.json()
        assert body["Title"] == "Forbidden" and body["Status"] == 403
        assert body["Detail"] == "AuthorizationUnsuccessful"
        assert "insufficient_scope" in response.headers["www-authenticate"]


def test_granular_token_opens_granular_endpoints(sandbox, tenant_ids):
    token = get_token(
        sandbox,
        scopes=["offline_access", "accounting.invoices.read", "accounting.contacts"],
        client_id=GRANULAR_CLIENT_ID,
        client_secret=GRANULAR_CLIENT_SECRET,
    )
    headers = api_headers(token, tenant_ids[0])
    assert httpx.get(f"{sandbox.url}/api.xro/2.0/Contacts", headers=headers).status_code == 200
    assert httpx.get(f"{sandbox.url}/api.xro/2.0/Accounts", headers=headers).status_code == 403


def test_missing_or_bad_bearer_token_is_401(sandbox, tenant_ids):
    url = f"{sandbox.url}/api.xro/2.0/Contacts"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = httpx.get(url, headers={**headers, "xero-tenant-id": tenant_ids[0]})
        assert response.status_code == 401
        body = response.json()
        assert body["Type"] is None  # Xero sends this one null; the SDKs expect the key
        assert (body["Title"], body["Status"], body["Detail"]) == (
            "Unauthorized",
            401,
            "AuthenticationUnsuccessful",
        )
        assert set(body) == {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}


def test_tenant_header_is_required_and_must_be_connected(sandbox, token, tenant_ids):
    url = f"{sandbox.url}/api.xro/2.0/Contacts"
    missing = httpx.get(url, headers=api_headers(token))
    assert missing.status_code == 403
    assert missing.json()["Title"] == "Forbidden"
    unknown = httpx.get(url, headers=api_headers(token, "00000000-0000-0000-0000-000000000000"))
    assert (unknown.status_code, unknown.json()["Detail"]) == (403, "AuthorizationUnsuccessful")
    # A real tenant the user never connected to this app: also 403.
    other = sandbox.admin.create_tenant("Unconnected Ltd", contacts=1, users=[])
    assert httpx.get(url, headers=api_headers(token, other["tenantId"])).status_code == 403


def test_paths_are_case_insensitive(sandbox, token, tenant_ids):
    headers = api_headers(token, tenant_ids[0])
    canonical = httpx.get(f"{sandbox.url}/api.xro/2.0/Contacts", headers=headers)
    lower = httpx.get(f"{sandbox.url}/api.xro/2.0/contacts", headers=headers)
    upper = httpx.get(f"{sandbox.url}/API.XRO/2.0/CONTACTS", headers=headers)
    assert canonical.status_code == lower.status_code == upper.status_code == 200
    assert len(lower.json()["Contacts"]) == len(canonical.json()["Contacts"])
    for path in ("/connections", "/Connections", "/CONNECTIONS"):
        assert httpx.get(sandbox.url + path, headers=api_headers(token)).status_code == 200


def test_unserved_api_paths_get_xeros_404(sandbox, token, tenant_ids):
    response = httpx.get(f"{sandbox.url}/api.xro/2.0/NoSuchThing", headers=api_headers(token, tenant_ids[0]))
    assert response.status_code == 404
    assert response.text == "The resource you're looking for cannot be found"
