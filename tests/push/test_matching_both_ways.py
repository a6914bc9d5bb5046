"""One matching rule (rules/matching.py), the same decision whichever direction meets a customer first.

Each case is a CRM customer not linked to Xero yet and the Xero contacts that exist; the expected decision is
which contact it is (or ambiguous, or none). The same table runs through:

- the rule itself (`decide`);
- the import: the contacts are customers in Xero (an invoice names each), extract -> validate -> load over HTTP
  from the sandbox; the customer ends linked to the contact, unlinked with the contact's ambiguity recorded,
  or unlinked and untouched;
- the push, asking Xero (nothing imported yet): linked to the contact, an ambiguous-match error and nothing
  created, or a new contact created;
- the push, from the import's mirror (the contacts imported first, while no transaction made them customers, so
  nothing was linked or created by the import).

On SQLite and PostgreSQL, against the sandbox as a real HTTP server, without Airflow (tests/e2e runs the DAGs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.test_import_rules import _invoice
from tests.push.conftest import add_customer, calls, xero_write
from tests.push.test_push_direct import push
from xero_crm_sync import import_run
from xero_crm_sync.rules.matching import Ambiguous, CrmRecord, Match, NoMatch, XeroContact, decide


@dataclass(frozen=True)
class Case:
    id: str
    crm: dict[str, Any]  # name, account_number, email of the CRM customer
    xero: list[dict[str, Any]]  # Xero Contact elements; "{id}" is the CRM customer's id; "archived": True
    expect: tuple[str, int | None]  # ("match", index into xero) | ("ambiguous", None) | ("none", None)
    note: str = field(default="", compare=False)


CASES = (
    Case("account_number", {"name": "Alder CRM", "account_number": " acc-101 "},
         [{"Name": "Alder Trading", "AccountNumber": "ACC-101"}], ("match", 0), "trimmed, any case"),
    Case("contact_number", {"name": "Birch CRM"}, [{"Name": "Birch Trading", "ContactNumber": "{id}"}],
         ("match", 0), "what the push writes on creation"),
    Case("email_case_only", {"name": "Cedar CRM", "email": "Accounts@Cedar.example.com"},
         [{"Name": "Cedar Trading", "EmailAddress": "accounts@cedar.example.com"}], ("match", 0)),
    Case("name_case_only", {"name": "Dogwood Ltd"}, [{"Name": "DOGWOOD LTD"}], ("match", 0),
         "the import used to compare names case-sensitively and missed it"),
    Case("archived_by_name_and_email", {"name": "Elm Ltd", "email": "elm@elm.example.com"},
         [{"Name": "Elm Ltd", "EmailAddress": "elm@elm.example.com", "archived": True}], ("none", None),
         "an archived contact's name and email may belong to someone else now"),
    Case("archived_by_account_number", {"name": "Fir CRM", "account_number": "ACC-106"},
         [{"Name": "Fir Old", "AccountNumber": "ACC-106", "archived": True}], ("match", 0),
         "stable keys match archived contacts; the push used to ignore account numbers"),
    Case("ambiguous_email", {"name": "Gum CRM", "email": "shared@gum.example.com"},
         [{"Name": "Gum North", "EmailAddress": "shared@gum.example.com"},
          {"Name": "Gum South", "EmailAddress": "SHARED@gum.example.com"}], ("ambiguous", None)),
    Case("account_number_before_name", {"name": "Hazel Ltd", "account_number": "ACC-108"},
         [{"Name": "Hazel Ltd"}, {"Name": "Hazel Holdings", "AccountNumber": "ACC-108"}], ("match", 1)),
    Case("no_match", {"name": "Ivy Ltd", "email": "ivy@ivy.example.com"}, [{"Name": "Juniper Ltd"}], ("none", None)),
)  # fmt: skip


def _element(case_contact: dict[str, Any], ledger_id: int) -> dict[str, Any]:
    return {
        k: (v.format(id=ledger_id) if isinstance(v, str) else v)
        for k, v in case_contact.items()
        if k != "archived"
    }


def _setup(pipeline: Any, *, customers_in_xero: bool) -> dict[str, tuple[int, list[str]]]:
    """The CRM customers, then the Xero contacts of every case: case id -> (ledger id, contact ids)."""
    made: dict[str, tuple[int, list[str]]] = {}
    for case in CASES:
        ledger_id = add_customer(pipeline.engine, **case.crm)
        ids = []
        for n, wanted in enumerate(case.xero):
            contact = xero_write(pipeline, "Contacts", _element(wanted, ledger_id), "PUT")
            if customers_in_xero:  # Xero derives IsCustomer from a sales invoice naming the contact
                xero_write(pipeline, "Invoices", _invoice(contact["ContactID"], 100 + n), "PUT")
            if wanted.get("archived"):
                xero_write(
                    pipeline, "Contacts", {"ContactID": contact["ContactID"], "ContactStatus": "ARCHIVED"}
                )
            ids.append(contact["ContactID"])
        made[case.id] = (ledger_id, ids)
    return made


def _import(pipeline: Any, run_id: str) -> None:
    info = pipeline.store.get(pipeline.connections["primary"])
    extracted = import_run.extract(pipeline.engine, pipeline.store, info, run_id, full=True).as_dict()
    import_run.validate(pipeline.engine, extracted)
    import_run.load(pipeline.engine, extracted, full=True)


def _open_ambiguity(pipeline: Any, *, record_id: int | None = None, xero_id: str | None = None) -> list[Any]:
    if record_id is not None:
        sql = "SELECT * FROM sync_error WHERE record_id = :k AND record_type = 'sales_ledger'"
    else:
        sql = "SELECT * FROM sync_error WHERE xero_id = :k"
    return [
        e
        for e in pipeline.rows(sql, k=record_id if record_id is not None else xero_id)
        if e["error_code"] == "ambiguous_match" and e["status"] == "open"
    ]


def _observed_import(pipeline: Any, ledger_id: int, contact_ids: list[str]) -> tuple[str, int | None]:
    code = pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id)
    if code is not None:
        return ("match", contact_ids.index(code)) if code in contact_ids else ("linked elsewhere", None)
    errors = [e for x in contact_ids for e in _open_ambiguity(pipeline, xero_id=x)]
    if errors:
        # The import records the ambiguity on each Xero contact, naming the CRM ledgers it could be.
        assert all(f"ledger ids {ledger_id}" in e["message"] for e in errors), errors
        return ("ambiguous", None)
    return ("none", None)


def _observed_push(pipeline: Any, ledger_id: int, contact_ids: list[str]) -> tuple[str, int | None]:
    code = pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id)
    if code is not None:
        if code in contact_ids:
            return ("match", contact_ids.index(code))
        created = pipeline.org().contacts.get(code)
        assert created is not None and created["ContactNumber"] == str(ledger_id)
        return ("none", None)  # nothing matched: the push created the contact
    assert _open_ambiguity(pipeline, record_id=ledger_id), f"ledger {ledger_id}: neither linked nor reported"
    return ("ambiguous", None)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_rule(case: Case) -> None:
    ledger_id = 7
    record = CrmRecord(ledger_id, case.crm.get("account_number"), case.crm.get("email"), case.crm["name"])
    candidates = [
        XeroContact(
            f"x{n}",
            c.get("AccountNumber"),
            _element(c, ledger_id).get("ContactNumber"),
            c.get("EmailAddress"),
            c.get("Name"),
            "ARCHIVED" if c.get("archived") else "ACTIVE",
        )
        for n, c in enumerate(case.xero)
    ]
    decision = decide(record, candidates)
    kind, index = case.expect
    if kind == "match":
        assert isinstance(decision, Match) and decision.xero_id == f"x{index}"
    elif kind == "ambiguous":
        assert isinstance(decision, Ambiguous)
    else:
        assert isinstance(decision, NoMatch)


def test_the_import_decides_as_the_rule(direct_pipeline: Any) -> None:
    pipeline = direct_pipeline
    made = _setup(pipeline, customers_in_xero=True)
    _import(pipeline, "import-1")
    observed = {case.id: _observed_import(pipeline, *made[case.id]) for case in CASES}
    assert observed == {case.id: case.expect for case in CASES}


def test_the_push_asking_xero_decides_as_the_rule(direct_pipeline: Any) -> None:
    pipeline = direct_pipeline
    made = _setup(pipeline, customers_in_xero=False)
    summary = push(pipeline)
    observed = {case.id: _observed_push(pipeline, *made[case.id]) for case in CASES}
    assert observed == {case.id: case.expect for case in CASES}
    assert calls(pipeline)["GET /Contacts"] == 1  # one `where` for the nine customers
    assert summary.linked == sum(c.expect[0] == "match" for c in CASES)


def test_the_push_from_the_mirror_decides_as_the_rule(direct_pipeline: Any) -> None:
    pipeline = direct_pipeline
    made = _setup(pipeline, customers_in_xero=False)
    _import(pipeline, "import-1")  # the mirror now holds the contacts; none is a customer, so none is linked
    assert all(
        pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id) is None
        for ledger_id, _ in made.values()
    )
    pipeline.sandbox.admin.reset_counters()
    push(pipeline)
    observed = {case.id: _observed_push(pipeline, *made[case.id]) for case in CASES}
    assert observed == {case.id: case.expect for case in CASES}
    # Only the customers the mirror decided nothing for were looked up in Xero (one `where` for them).
    assert calls(pipeline)["GET /Contacts"] == 1
