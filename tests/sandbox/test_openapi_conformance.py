"""Every kind of answer the sandbox gives, checked against Xero's own OpenAPI specs with openapi-core.

Answers whose status the spec declares for that operation (200, 204, 400, identity's 404) are validated against
the declared schema. The spec declares nothing for the platform's answers (401, 403, 404 on the Accounting API,
413, 429, 500, 503): those are checked against the shapes Xero documents and sends instead, and the test also
proves openapi-core indeed finds no declaration for them (so a future spec that adds one gets validated).

Formats: Xero's JSON carries dates as `/Date(1573755038314+0000)/`, which the spec marks with the vendor
extensions `x-is-msdate` / `x-is-msdate-time` (sometimes together with `format: date`/`date-time`, which would
demand RFC 3339 text the wire never carries). We rewrite those properties to a custom `xero-msdate` format and
check it with a validator for the MS-date syntax: a `/Date(...)/` field that carries anything else fails, where
without this the extension would be ignored and any string would pass.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
import orjson
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator
from starlette.routing import Route

from xero_sandbox.accounting import router as accounting_router
from xero_sandbox.accounting.entities import READ_ONLY

from .conftest import api_headers, get_token

XERO_API = "https://api.xero.com"
MS_DATE = re.compile(r"^/Date\(-?\d+([+-]\d{4})?\)/$")
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
PROBLEM_KEYS = {"Type", "Title", "Status", "Detail", "Instance", "Extensions"}


def _ms_date(value: object) -> bool:
    return not isinstance(value, str) or bool(MS_DATE.match(value))


def _iso(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _mark_ms_dates(node: Any) -> int:
    """Give every x-is-msdate(-time) property the `xero-msdate` format (see the module docstring)."""
    count = 0
    if isinstance(node, dict):
        if node.get("x-is-msdate") or node.get("x-is-msdate-time"):
            node["format"] = "xero-msdate"
            count += 1
        for value in node.values():
            count += _mark_ms_dates(value)
    elif isinstance(node, list):
        for value in node:
            count += _mark_ms_dates(value)
    return count


def _load(path) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# Xero's spec fails strict validation of itself, so openapi-core's spec validation is off.
_CONFIG = dict(spec_validator_cls=None, extra_format_validators={"xero-msdate": _ms_date, "date-time": _iso})


@pytest.fixture(scope="session")
def accounting_spec(spec_dir) -> dict[str, Any]:
    spec = _load(spec_dir / "xero_accounting.yaml")
    assert _mark_ms_dates(spec["components"]) > 40
    return spec


@dataclass
class Spec:
    api: OpenAPI
    raw: dict[str, Any]

    def schema_validator(self, name: str) -> OAS30Validator:
        # Components reference each other: resolve $refs against the whole document.
        schema = {**self.raw["components"]["schemas"][name], "components": self.raw["components"]}
        return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


@pytest.fixture(scope="session")
def accounting_api(accounting_spec) -> Spec:
    return Spec(OpenAPI.from_dict(copy.deepcopy(accounting_spec), config=Config(**_CONFIG)), accounting_spec)


@pytest.fixture(scope="session")
def identity_spec(spec_dir) -> dict[str, Any]:
    return _load(spec_dir / "xero-identity.yaml")


@pytest.fixture(scope="session")
def identity_api(identity_spec) -> Spec:
    return Spec(OpenAPI.from_dict(copy.deepcopy(identity_spec), config=Config(**_CONFIG)), identity_spec)


def find_nulls(value: Any, path: str = "$") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in find_nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_nulls(v, f"{path}[{i}]")]
    return []


def check_platform_answer(spec: Spec, response: httpx.Response) -> None:
    """An answer the spec does not declare: it must have the shape Xero's platform sends."""
    status = response.status_code
    if status == 400:
        # E.g. a bad `where` on a GET: the spec declares no 400 there, but Xero answers with its Error object.
        spec.schema_validator("Error").validate(response.json())
        assert find_nulls(response.json()) == []
        return
    if status == 404:
        assert response.text == NOT_FOUND_TEXT
        return
    body = response.json()
    if status in (401, 403):
        assert set(body) == PROBLEM_KEYS and body["Type"] is None and body["Status"] == status
        assert body["Detail"] in ("AuthenticationUnsuccessful", "AuthorizationUnsuccessful") or body[
            "Detail"
        ].startswith("TokenExpired")
        assert find_nulls({k: v for k, v in body.items() if k != "Type"}) == []
        return
    assert status in (413, 429, 500, 503, 504), status
    assert body["Status"] == status and body["Title"] and body["Detail"]
    assert find_nulls(body) == []
    if status == 429:
        assert response.headers["X-Rate-Limit-Problem"] in ("minute", "day", "concurrent", "appminute")
        assert int(response.headers["Retry-After"]) >= 1


# Path forms Xero answers that its spec does not list: validated against the documented form.
SPEC_ALIASES = {"/api.xro/2.0/Organisations": "/api.xro/2.0/Organisation"}


def conform(spec: Spec, response: httpx.Response, host: str = XERO_API, prefix: str = "") -> str:
    """Validate one answer against the spec; returns "schema" or "platform" (how it was checked)."""
    request = response.request
    path = prefix + SPEC_ALIASES.get(request.url.path, request.url.path)
    openapi_request = MockRequest(
        host,
        request.method.lower(),
        path,
        args=dict(request.url.params),
        headers=dict(request.headers),
        data=request.content,
    )
    content_type = response.headers.get("content-type", "application/json").split(";")[0]
    openapi_response = MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=content_type,
    )
    errors = list(spec.api.iter_response_errors(openapi_request, openapi_response))
    if errors and all(isinstance(e, ResponseNotFound) for e in errors):
        check_platform_answer(spec, response)
        return "platform"
    details = [f"{e}: {getattr(e, '__cause__', '')}"[:2000] for e in errors]
    assert not errors, f"{request.method} {request.url.path} -> {response.status_code}: {details}"
    if response.content and content_type == "application/json":
        assert find_nulls(response.json()) == [], f"JSON null in {request.method} {request.url.path}"
    return "schema"


# ---- the Accounting API: every route, success and validation errors --------------------------------------


@pytest.fixture(scope="session")
def client(sandbox, token, tenant_ids):
    with httpx.Client(
        base_url=f"{sandbox.url}/api.xro/2.0", headers=api_headers(token, tenant_ids[0]), timeout=30
    ) as http:
        yield http


def _first(body: dict[str, Any], key: str) -> dict[str, Any]:
    return body[key][0]


@pytest.fixture(scope="session")
def seeded(client, accounting_api) -> dict[str, str]:
    """Create one record of each kind through the API (each answer validated), so every GET has something."""
    tag = uuid.uuid4().hex[:8]
    today = date.today().isoformat()

    def write(method: str, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        response = client.request(method, path, json=body)
        assert response.status_code == 200, response.text
        assert conform(accounting_api, response) == "schema"
        return _first(response.json(), key)

    contact = write("PUT", "/Contacts", {"Contacts": [{"Name": f"Conformance {tag}"}]}, "Contacts")
    item = write(
        "PUT", "/Items", {"Items": [{"Code": f"C-{tag}", "Name": f"Conformance item {tag}"}]}, "Items"
    )
    line = {"Description": "Consulting", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200"}
    contact_ref = {"ContactID": contact["ContactID"]}
    invoice = write(
        "PUT",
        "/Invoices",
        {
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": contact_ref,
                    "Date": today,
                    "DueDate": today,
                    "Status": "AUTHORISED",
                    "LineItems": [line],
                }
            ]
        },
        "Invoices",
    )
    credit_note = write(
        "PUT",
        "/CreditNotes",
        {
            "CreditNotes": [
                {
                    "Type": "ACCRECCREDIT",
                    "Contact": contact_ref,
                    "Date": today,
                    "Status": "AUTHORISED",
                    "LineItems": [line],
                }
            ]
        },
        "CreditNotes",
    )
    purchase_order = write(
        "PUT",
        "/PurchaseOrders",
        {"PurchaseOrders": [{"Contact": contact_ref, "Date": today, "LineItems": [line]}]},
        "PurchaseOrders",
    )
    payment = write(
        "PUT",
        "/Payments",
        {
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                    "Account": {"Code": "090"},
                    "Date": today,
                    "Amount": 10,
                }
            ]
        },
        "Payments",
    )
    return {
        "ContactID": contact["ContactID"],
        "ItemID": item["ItemID"],
        "InvoiceID": invoice["InvoiceID"],
        "CreditNoteID": credit_note["CreditNoteID"],
        "PurchaseOrderID": purchase_order["PurchaseOrderID"],
        "PaymentID": payment["PaymentID"],
    }


GET_ROUTES = sorted(
    r.path
    for r in accounting_router.routes
    if isinstance(r, Route) and "GET" in (r.methods or ()) and "{" not in r.path
)
GET_ONE_ROUTES = sorted(
    r.path
    for r in accounting_router.routes
    if isinstance(r, Route) and "GET" in (r.methods or ()) and "{" in r.path
)


# The read-only collections the sandbox serves empty (docs/SANDBOX.md): only their 404 can be checked here.
EMPTY_COLLECTIONS = {spec.collection for spec in READ_ONLY} - {"Users"}


@pytest.mark.parametrize("path", GET_ROUTES)
def test_every_list_endpoint_conforms(client, accounting_api, seeded, path):
    response = client.get(path)
    assert response.status_code == 200
    assert conform(accounting_api, response) == "schema"


@pytest.mark.parametrize("path", GET_ONE_ROUTES)
def test_every_single_record_endpoint_conforms(client, accounting_api, seeded, path):
    collection, param = re.match(r"^/(\w+)/\{(\w+)\}$", path).groups()
    listing = client.get(f"/{collection}").json()
    records = next(v for v in listing.values() if isinstance(v, list))
    if collection not in EMPTY_COLLECTIONS:
        assert records, f"no {collection} to read one of"
        value = records[0][param]
        response = client.get(f"/{collection}/{value}")
        assert response.status_code == 200
        assert conform(accounting_api, response) == "schema"
    else:
        assert records == []
    missing = client.get(f"/{collection}/{uuid.uuid4() if param.endswith('ID') else 'NOSUCHTHING'}")
    assert missing.status_code == 404
    assert conform(accounting_api, missing) == "platform"


def test_paged_and_filtered_lists_conform(client, accounting_api, seeded):
    for params in (
        {"page": 1},
        {"page": 1, "pageSize": 5},
        {"where": 'ContactStatus=="ACTIVE"', "order": "Name DESC"},
    ):
        response = client.get("/Contacts", params=params)
        assert response.status_code == 200
        assert conform(accounting_api, response) == "schema"
    modified = client.get("/Invoices", headers={"If-Modified-Since": "2000-01-01T00:00:00"})
    assert conform(accounting_api, modified) == "schema"
    bad_where = client.get("/Contacts", params={"where": "Name=="})
    assert bad_where.status_code == 400
    assert conform(accounting_api, bad_where) == "platform"


def test_write_updates_and_deletes_conform(client, accounting_api, seeded):
    today = date.today().isoformat()
    cases = [
        ("POST", f"/Contacts/{seeded['ContactID']}", {"Contacts": [{"EmailAddress": "x@example.com"}]}),
        ("POST", "/Contacts", {"Contacts": [{"ContactID": seeded["ContactID"], "Phones": []}]}),
        ("POST", f"/Items/{seeded['ItemID']}", {"Items": [{"Code": "ignored-by-id", "Description": "d"}]}),
        ("POST", f"/Invoices/{seeded['InvoiceID']}", {"Invoices": [{"Reference": "conformance"}]}),
        ("POST", f"/CreditNotes/{seeded['CreditNoteID']}", {"CreditNotes": [{"Reference": "conformance"}]}),
        (
            "POST",
            f"/PurchaseOrders/{seeded['PurchaseOrderID']}",
            {"PurchaseOrders": [{"Reference": "conformance"}]},
        ),
        (
            "PUT",
            f"/CreditNotes/{seeded['CreditNoteID']}/Allocations",
            {"Allocations": [{"Invoice": {"InvoiceID": seeded["InvoiceID"]}, "Amount": 1, "Date": today}]},
        ),
        ("PUT", "/Currencies", {"Currencies": [{"Code": "AUD"}]}),
    ]
    for method, path, body in cases:
        response = client.request(method, path, json=body)
        assert response.status_code in (200, 400), (method, path, response.text)
        conform(accounting_api, response)
    item = client.put(
        "/Items", json={"Items": [{"Code": f"DEL-{uuid.uuid4().hex[:6]}", "Name": "Delete me"}]}
    )
    deleted = client.delete(f"/Items/{item.json()['Items'][0]['ItemID']}")
    assert deleted.status_code == 204
    assert conform(accounting_api, deleted) == "schema"
    removed = client.post(f"/Payments/{seeded['PaymentID']}", json={"Payments": [{"Status": "DELETED"}]})
    assert removed.status_code == 200, removed.text
    assert conform(accounting_api, removed) == "schema"


def test_validation_errors_conform_summarised_and_not(client, accounting_api, seeded):
    duplicate = {"Items": [{"Code": "DUP-1", "Name": "a"}, {"Code": "DUP-1", "Name": "b"}]}
    invalid_invoice = {"Invoices": [{"Type": "ACCREC", "LineItems": []}]}
    for path, body in (
        ("/Items", duplicate),
        ("/Invoices", invalid_invoice),
        ("/Contacts", {"Contacts": [{}]}),
    ):
        summarised = client.put(path, json=body)
        assert summarised.status_code == 400, summarised.text
        assert summarised.json()["Type"] == "ValidationException"
        assert conform(accounting_api, summarised) == "schema"
        mixed = client.put(path, params={"summarizeErrors": "false"}, json=body)
        assert mixed.status_code == 200, mixed.text
        assert conform(accounting_api, mixed) == "schema"
    garbage = client.put("/Contacts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    assert conform(accounting_api, garbage) == "schema"


# ---- platform answers -------------------------------------------------------------------------------------


def test_platform_error_answers_have_xeros_shapes(sandbox, token, tenant_ids, accounting_api):
    url = f"{sandbox.url}/api.xro/2.0/Contacts"
    tenant = tenant_ids[0]
    kinds = {
        "no token": httpx.get(url, headers={"xero-tenant-id": tenant}),
        "bad token": httpx.get(url, headers={"Authorization": "Bearer nope", "xero-tenant-id": tenant}),
        "no tenant": httpx.get(url, headers=api_headers(token)),
        "scope": httpx.get(
            f"{sandbox.url}/api.xro/2.0/Invoices",
            headers=api_headers(get_token(sandbox, scopes=["accounting.contacts.read"]), tenant),
        ),
        "too large": httpx.put(
            url,
            content=b"x" * (4 * 1024 * 1024),
            headers={**api_headers(token, tenant), "Content-Type": "application/json"},
        ),
        "long key": httpx.put(
            url, json={"Contacts": []}, headers=api_headers(token, tenant, **{"Idempotency-Key": "k" * 129})
        ),
    }
    for kind in ("500", "503", "429"):
        sandbox.admin.add_fault(kind, count=1, path_pattern="/Contacts$", tenant_id=tenant)
        kinds[kind] = httpx.get(url, headers=api_headers(token, tenant))
    statuses = {name: r.status_code for name, r in kinds.items()}
    assert statuses == {
        "no token": 401,
        "bad token": 401,
        "no tenant": 403,
        "scope": 403,
        "too large": 413,
        "long key": 400,
        "500": 500,
        "503": 503,
        "429": 429,
    }
    for name, response in kinds.items():
        how = conform(accounting_api, response)
        assert how == ("schema" if response.status_code == 400 else "platform"), name


# ---- identity ---------------------------------------------------------------------------------------------


def test_connections_conform_to_the_identity_spec(make_sandbox, identity_api):
    server = make_sandbox(tenants=2, contacts=1)
    token = get_token(server)
    listed = httpx.get(f"{server.url}/Connections", headers=api_headers(token))
    assert conform(identity_api, listed) == "schema"
    assert len(listed.json()) == 2
    for conn in listed.json():
        # The spec says date-time; Xero's wire (and its example) has no offset and 7 fractional digits.
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$", conn["createdDateUtc"])
    deleted = httpx.delete(f"{server.url}/Connections/{listed.json()[0]['id']}", headers=api_headers(token))
    assert deleted.status_code == 204
    assert conform(identity_api, deleted) == "schema"
    again = httpx.delete(f"{server.url}/Connections/{listed.json()[0]['id']}", headers=api_headers(token))
    assert again.status_code == 404
    assert conform(identity_api, again) == "schema"


def test_token_responses_match_the_identity_schemas(make_sandbox, identity_spec):
    server = make_sandbox(tenants=1, contacts=1)
    token = get_token(server)
    schema = {**identity_spec["components"]["schemas"]["AccessToken"], "additionalProperties": False}
    schema["properties"] = {**schema["properties"], "scope": {"type": "string"}}
    refreshed = httpx.post(
        f"{server.url}/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(server.client_id, server.client_secret),
    )
    body = refreshed.json()
    OAS30Validator(schema).validate(body)
    assert set(body) >= {"access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert orjson.dumps(body).count(b"null") == 0


def test_the_checks_can_fail(accounting_api):
    """The validator is not a rubber stamp: an ISO date where Xero sends /Date()/, a null, a wrong enum fail."""
    request = MockRequest(XERO_API, "get", "/api.xro/2.0/Contacts", headers={"xero-tenant-id": "t"})
    good = {"Contacts": [{"ContactID": str(uuid.uuid4()), "UpdatedDateUTC": "/Date(1573755038314+0000)/"}]}
    bad_bodies = [
        {"Contacts": [{"UpdatedDateUTC": "2019-11-14T18:10:38"}]},
        {"Contacts": [{"Name": None}]},
        {"Contacts": [{"ContactStatus": "SLEEPING"}]},
    ]
    assert list(accounting_api.api.iter_response_errors(request, MockResponse(orjson.dumps(good)))) == []
    for body in bad_bodies:
        assert list(accounting_api.api.iter_response_errors(request, MockResponse(orjson.dumps(body)))), body
