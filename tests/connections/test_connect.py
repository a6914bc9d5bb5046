"""Connect (C1) and the two-organisation rules (C2): the authorization-code flow with state and PKCE through a
local redirect listener, the organisation picked from /connections, and at most one primary and one secondary
per operating company, one operating company per organisation."""

from __future__ import annotations

import re
import threading
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.connections.conftest import COMPANY, CREDENTIALS, Connected, make_connected
from xero_crm_sync.connect import ConnectError, connect
from xero_crm_sync.oauth import SCOPES


class _Form(HTMLParser):
    """The sandbox's consent page as a browser sees it: the form's fields and its organisation checkboxes."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.orgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action") or ""
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"] or ""] = a.get("value") or ""
        if tag == "input" and a.get("name") == "tenant_id":
            self.orgs.append(a.get("value") or "")


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_interactive_flow_prints_url_listens_and_stores_the_picked_organisation(crm_db, make_sandbox):
    """A person opens the printed URL, ticks the second organisation and allows access; the command's local
    listener receives Xero's redirect, checks state, trades the code with the PKCE verifier, and stores the
    organisation the person picked."""
    sandbox = make_sandbox(tenants=2, auto_consent=False)
    env = make_connected(crm_db, sandbox, ())
    printed: list[str] = []
    url_ready = threading.Event()
    outcome: dict[str, Any] = {}

    def announce(message: str) -> None:
        printed.append(message)
        url_ready.set()

    def run() -> None:
        try:
            outcome["result"] = connect(
                env.store,
                env.settings,
                CREDENTIALS,
                operating_company=COMPANY,
                create_operating_company=True,
                announce=announce,
                choose=lambda orgs: orgs[0],
                timeout=30,
            )
        except Exception as exc:  # reported below, in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert url_ready.wait(30)
    authorize_url = re.search(r"http://\S+/identity/connect/authorize\?\S+", printed[0]).group()
    query = parse_qs(urlparse(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["state"][0] and query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) == set(SCOPES["granular"])
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")

    # The "browser": the consent page, then allow access to the second organisation only.
    page = requests.get(authorize_url, timeout=30)
    form = _Form()
    form.feed(page.text)
    second = sorted(sandbox.state.tenants.values(), key=lambda t: t.name)[1]
    assert second.tenant_id in form.orgs
    answer = requests.post(
        env.settings.xero_login_url + form.action,
        data={**form.hidden, "tenant_id": second.tenant_id, "decision": "allow"},
        timeout=30,
        allow_redirects=True,  # to the command's listener, like a browser
    )
    assert answer.status_code == 200 and "Connected to Xero" in answer.text
    worker.join(30)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.tenant_id == second.tenant_id and result.role == "primary"
    row = env.row(result.connection_id)
    assert row["status"] == "active" and row["tenant_name"] == second.name
    assert row["scopes"] == " ".join(SCOPES["granular"])
    assert row["authorised_by"] == sandbox.state.demo_user().user_id
    assert "Connected Demo Company 2 (NZ)" in printed[-1]


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_a_forged_callback_is_refused(crm_db, make_sandbox):
    """A redirect whose state is not ours (CSRF) never reaches the token endpoint."""
    sandbox = make_sandbox(tenants=1, auto_consent=False)
    env = make_connected(crm_db, sandbox, ())
    ready = threading.Event()
    printed: list[str] = []
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            connect(
                env.store,
                env.settings,
                CREDENTIALS,
                operating_company=COMPANY,
                create_operating_company=True,
                announce=lambda m: (printed.append(m), ready.set()),
                timeout=30,
            )
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert ready.wait(30)
    redirect_uri = re.search(r"redirect URI (\S+)\)", printed[0]).group(1)
    requests.get(f"{redirect_uri}?code=stolen&state=not-ours", timeout=30)
    worker.join(30)
    assert "state mismatch" in str(outcome["error"])
    assert env.sandbox.admin.journal(path_contains="/connect/token") == []
    assert env.store.list(include_inactive=True) == []


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_broad_scopes_are_an_option(crm_db, make_sandbox):
    sandbox = make_sandbox(tenants=1)
    env = make_connected(crm_db, sandbox, ())
    from xero_crm_sync.oauth import AppCredentials
    from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    result = connect(
        env.store,
        env.settings,
        AppCredentials(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),  # an app created before 2026-03-02
        operating_company=COMPANY,
        create_operating_company=True,
        scopes="broad",
        headless=True,
        announce=lambda _m: None,
    )
    assert env.row(result.connection_id)["scopes"] == " ".join(SCOPES["broad"])
    assert (
        "accounting.transactions" in SCOPES["broad"] and "accounting.transactions" not in SCOPES["granular"]
    )


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_the_granular_app_refuses_broad_scopes_with_a_clear_error(crm_db, make_sandbox):
    env = make_connected(crm_db, make_sandbox(tenants=1), ())
    with pytest.raises(ConnectError, match="invalid_scope"):
        connect(
            env.store,
            env.settings,
            CREDENTIALS,
            operating_company=COMPANY,
            create_operating_company=True,
            scopes="broad",
            headless=True,
            announce=lambda _m: None,
            timeout=30,
        )


# --- C2: one primary, one secondary, one company per organisation -------------------------------------------


def test_a_second_primary_is_refused_in_words(crm_db, make_sandbox):
    env = make_connected(crm_db, make_sandbox(tenants=3), ("primary", "secondary"))
    with pytest.raises(
        ConnectError, match=r"ACME Trading already has a primary Xero organisation.*disconnect"
    ):
        env.connect("primary", 2)
    with pytest.raises(ConnectError, match=r"ACME Trading already has a secondary Xero organisation"):
        env.connect("secondary", 2)


def test_the_same_organisation_cannot_be_primary_and_secondary(crm_db, make_sandbox):
    env = make_connected(crm_db, make_sandbox(tenants=1), ("primary",))
    with pytest.raises(ConnectError, match="already connected as the primary of ACME Trading"):
        env.connect("secondary", 0)


def test_one_organisation_belongs_to_one_operating_company(two_orgs: Connected):
    with pytest.raises(ConnectError, match="already connected as the primary of ACME Trading"):
        two_orgs.connect("primary", 0, company="Other Company")


def test_reconnecting_the_same_organisation_reuses_its_connection(two_orgs: Connected):
    before = two_orgs.stored_token(two_orgs.ids["primary"])
    again = two_orgs.connect("primary", 0)
    assert again == two_orgs.ids["primary"]
    assert two_orgs.stored_token(again)["refresh_token"] != before["refresh_token"]
    assert len(two_orgs.store.list(include_inactive=True)) == 2


def test_the_database_enforces_the_rules_too(two_orgs: Connected):
    """Writes that bypass the store still cannot create a second live primary or reuse an organisation."""
    company = two_orgs.row(two_orgs.ids["primary"])["operating_company_id"]
    for role, tenant in (("primary", "another-tenant"), ("secondary", two_orgs.tenants["primary"])):
        with pytest.raises(IntegrityError), two_orgs.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO xero_connection (operating_company_id, role, tenant_id) VALUES (:c, :r, :t)"
                ),
                {"c": company, "r": role, "t": tenant},
            )


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_the_documented_command_connects_headless(crm_db, make_sandbox, monkeypatch, capsys):
    """`python -m xero_crm_sync connect ...` as the README shows it, against the sandbox's auto-consent, with a
    redirect URI registered as http://localhost:<port>/callback."""
    from xero_crm_sync import cli

    sandbox = make_sandbox(tenants=1)
    env = make_connected(crm_db, sandbox, ())
    monkeypatch.setenv("CRM_DATABASE_URL", crm_db)
    monkeypatch.setenv("XERO_CLIENT_SECRET", CREDENTIALS.client_secret)
    assert cli.main(["connections"]) == 0  # nothing yet: it says so, and how to connect
    assert "no Xero connection yet" in capsys.readouterr().out
    args = [
        "connect",
        "--operating-company",
        COMPANY,
        "--role",
        "primary",
        "--client-id",
        CREDENTIALS.client_id,
    ]
    args += ["--create-operating-company", "--headless", "--redirect-host", "localhost"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "redirect URI http://localhost:" in out and "Connected Demo Company (NZ)" in out
    assert CREDENTIALS.client_secret not in out
    assert [i.role for i in env.store.list()] == ["primary"]
    assert cli.main(["connections"]) == 0
    assert "active" in capsys.readouterr().out
