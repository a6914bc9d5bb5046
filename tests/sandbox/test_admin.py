"""The /sandbox admin paths: journal, counters, tenants, apps, clock, body limit, and refusal when disabled."""

from __future__ import annotations

import httpx

from xero_sandbox.state import MAX_BODY_BYTES

from .conftest import api_headers, get_token


def test_journal_shows_exactly_what_was_received(make_sandbox):
    server = make_sandbox(tenants=1, contacts=2)
    token = get_token(server)
    tenant = server.admin.tenants()[0]["tenantId"]
    server.admin.clear_journal()
    httpx.put(
        f"{server.url}/api.xro/2.0/contacts",
        params={"summarizeErrors": "false"},
        headers=api_headers(token, tenant, **{"Idempotency-Key": "key-1"}),
        json={"Contacts": [{"Name": "Journal Ltd"}]},
    )
    (entry,) = server.admin.journal()
    assert entry["method"] == "PUT"
    assert entry["path"] == "/api.xro/2.0/Contacts"  # normalised casing
    assert entry["query"] == "summarizeErrors=false"
    assert entry["tenant_id"] == tenant
    assert entry["status"] == 200
    assert entry["idempotency_key"] == "key-1"
    assert entry["body"] == {"Contacts": [{"Name": "Journal Ltd"}]}
    assert None not in entry.values()


def test_journal_masks_secrets_in_identity_calls(make_sandbox):
    server = make_sandbox(tenants=1, contacts=1)
    token = get_token(server)
    server.admin.clear_journal()
    httpx.post(
        f"{server.url}/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(server.client_id, server.client_secret),
    )
    (entry,) = server.admin.journal()
    assert entry["path"] == "/connect/token" and entry["client_id"] == server.client_id
    assert entry["body"] == {"grant_type": "refresh_token", "refresh_token": "***"}


def test_counters_by_endpoint_template_with_records_returned(make_sandbox):
    server = make_sandbox(tenants=2, contacts=5)
    token = get_token(server)
    first, second = (t["tenantId"] for t in server.admin.tenants())
    server.admin.reset_counters()
    listed = httpx.get(f"{server.url}/api.xro/2.0/Contacts", headers=api_headers(token, first)).json()[
        "Contacts"
    ]
    for contact in listed[:2]:
        httpx.get(
            f"{server.url}/api.xro/2.0/Contacts/{contact['ContactID']}", headers=api_headers(token, first)
        )
    httpx.get(f"{server.url}/api.xro/2.0/Contacts", headers=api_headers(token, second))

    counters = server.admin.counters()

    endpoints = counters[first]["endpoints"]
    assert endpoints["GET /Contacts"]["calls"] == 1
    assert endpoints["GET /Contacts"]["records_returned"] == len(listed)
    single = next(v for k, v in endpoints.items() if k.startswith("GET /Contacts/{"))
    assert (single["calls"], single["records_returned"], single["by_status"]) == (2, 2, {"200": 2})
    assert counters[first]["totals"]["calls"] == 3
    assert counters[second]["totals"]["calls"] == 1
    server.admin.reset_counters(first)
    assert set(server.admin.counters()) == {second}


def test_tenants_apps_and_users_can_be_created(make_sandbox):
    server = make_sandbox(tenants=1, contacts=1)
    tenant = server.admin.create_tenant("Second Org Ltd", seed=9, contacts=3)
    assert tenant["tenantName"] == "Second Org Ltd"
    assert tenant["tenantId"] in {t["tenantId"] for t in server.admin.tenants()}
    app = server.admin.register_app("Another App", ["https://app.example.com/callback"], granular=True)
    assert app["client_secret"] and app["granular"] is True
    assert app["client_id"] in {a["client_id"] for a in server.admin.apps()}
    # The demo user may connect the new organisation straight away.
    token = get_token(server)
    connections = httpx.get(f"{server.url}/connections", headers=api_headers(token)).json()
    assert tenant["tenantId"] in {c["tenantId"] for c in connections}


def test_clock_advances_only_forward(make_sandbox):
    server = make_sandbox(tenants=1, contacts=1)
    before = server.admin.clock()["offset_seconds"]
    after = server.admin.advance_clock(3600)
    assert after["offset_seconds"] == before + 3600
    assert httpx.post(f"{server.url}/sandbox/clock/advance", json={"seconds": -1}).status_code == 422


def test_bodies_over_3_5_mb_are_refused_with_413(sandbox, token, tenant_ids):
    big = b'{"Contacts":[{"Name":"' + b"x" * MAX_BODY_BYTES + b'"}]}'
    response = httpx.put(
        f"{sandbox.url}/api.xro/2.0/Contacts",
        content=big,
        headers={**api_headers(token, tenant_ids[0]), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_admin_paths_are_refused_when_disabled(make_sandbox):
    server = make_sandbox(tenants=1, contacts=1, admin=False)
    for method, path in (
        ("GET", "/sandbox/journal"),
        ("POST", "/sandbox/clock/advance"),
        ("GET", "/sandbox/tenants"),
    ):
        assert httpx.request(method, server.url + path, json={"seconds": 1}).status_code == 403
    # The API itself still works.
    token = get_token(server)
    assert httpx.get(f"{server.url}/connections", headers=api_headers(token)).status_code == 200
