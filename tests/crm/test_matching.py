"""I12/P9: a Xero contact matching an existing, unlinked CRM customer is linked, not duplicated."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from xero_crm_sync.rules.matching import CrmLedger, XeroContact, match_contacts

from .helpers import contact, gid


def _crm_customer(crm, name, **fields):
    columns = ["operating_company_id", "name", *fields]
    values = [":company_id", ":name", *(f":{k}" for k in fields)]
    with crm.engine.begin() as conn:
        return conn.execute(
            text(
                f"INSERT INTO sales_ledger ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING id"
            ),
            {"company_id": crm.company_id, "name": name, **fields},
        ).scalar_one()


def _sales_count(crm):
    return crm.scalar("SELECT COUNT(*) FROM sales_ledger WHERE operating_company_id = :company_id")


@pytest.mark.parametrize(
    ("crm_fields", "xero_fields"),
    [
        pytest.param({"account_number": "ACC-7"}, {"AccountNumber": "ACC-7"}, id="account_number"),
        pytest.param({}, {"ContactNumber": "{id}"}, id="contact_number"),
        pytest.param({"email": "Buyer@Acme.test"}, {"EmailAddress": "buyer@acme.test "}, id="email"),
        pytest.param({}, {}, id="name"),
    ],
)
def test_each_key_links_the_existing_customer(crm, crm_fields, xero_fields):
    ledger_id = _crm_customer(crm, "Acme Ltd" if not xero_fields else "Acme (CRM name)", **crm_fields)
    xero_fields = {k: v.format(id=ledger_id) for k, v in xero_fields.items()}
    name = "Acme Ltd" if not xero_fields else "Acme Trading"
    counts = crm.run({"contacts": [contact("acme", name, **xero_fields)]})
    assert counts["link_existing_ledgers"] == 1
    assert _sales_count(crm) == 1
    ledger = crm.ledger("acme")
    assert ledger["id"] == ledger_id
    assert ledger["name"] == name  # then updated from Xero like any linked ledger
    match = crm.one("SELECT * FROM contact_match WHERE connection_id = :conn AND xero_id = :x", x=gid("acme"))
    assert (match["outcome"], match["ledger_id"]) == ("linked", ledger_id)


def test_account_number_wins_over_later_keys(crm):
    by_email = _crm_customer(crm, "Email Match", email="a@acme.test")
    by_account = _crm_customer(crm, "Account Match", account_number="ACC-1")
    crm.run({"contacts": [contact("acme", "Acme", AccountNumber="ACC-1", EmailAddress="a@acme.test")]})
    assert crm.ledger("acme")["id"] == by_account
    assert (
        crm.one("SELECT accounting_code FROM sales_ledger WHERE id = :i", i=by_email)["accounting_code"]
        is None
    )


def test_ambiguous_match_is_recorded_not_linked_not_created_until_dismissed(crm):
    first = _crm_customer(crm, "Acme One", email="shared@acme.test")
    second = _crm_customer(crm, "Acme Two", email="shared@acme.test")
    crm.run({"contacts": [contact("acme", "Acme Xero", EmailAddress="shared@acme.test")]})
    assert _sales_count(crm) == 2
    assert (
        crm.scalar(
            "SELECT COUNT(*) FROM sales_ledger WHERE operating_company_id = :company_id AND accounting_code = :x",
            x=gid("acme"),
        )
        == 0
    )
    error = crm.one("SELECT * FROM sync_error WHERE connection_id = :conn AND xero_id = :x", x=gid("acme"))
    assert error["status"] == "open" and error["error_code"] == "ambiguous_match"
    assert f"ledger ids {first}, {second}" in error["message"] and "by email" in error["message"]
    assert "dismiss" in error["action"]
    # Seen again: the same error row, not a second one.
    crm.run({"contacts": [contact("acme", "Acme Xero", EmailAddress="shared@acme.test")]})
    assert (
        crm.one(
            "SELECT attempts FROM sync_error WHERE connection_id = :conn AND xero_id = :x", x=gid("acme")
        )["attempts"]
        == 2
    )
    # The user dismisses it: the contact is imported as a new ledger.
    crm.execute(
        "UPDATE sync_error SET status = 'dismissed' WHERE connection_id = :conn AND xero_id = :x",
        conn=crm.connection_id,
        x=gid("acme"),
    )
    crm.run({"contacts": [contact("acme", "Acme Xero", EmailAddress="shared@acme.test")]})
    assert _sales_count(crm) == 3
    assert crm.ledger("acme")["id"] not in (first, second)


def test_ambiguous_match_resolves_when_a_user_links_the_right_one(crm):
    first = _crm_customer(crm, "Acme One", email="shared@acme.test")
    _crm_customer(crm, "Acme Two", email="shared@acme.test")
    crm.run({"contacts": [contact("acme", "Acme Xero", EmailAddress="shared@acme.test")]})
    crm.execute("UPDATE sales_ledger SET accounting_code = :x WHERE id = :i", x=gid("acme"), i=first)
    crm.run({"contacts": [contact("acme", "Acme Xero", EmailAddress="shared@acme.test")]})
    assert (
        crm.one("SELECT status FROM sync_error WHERE connection_id = :conn AND xero_id = :x", x=gid("acme"))[
            "status"
        ]
        == "resolved"
    )
    assert crm.ledger("acme")["id"] == first


def test_match_on_a_do_not_import_customer_links_nothing_and_creates_nothing(crm):
    ledger_id = _crm_customer(crm, "Acme Ltd", do_not_import=True)
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    assert _sales_count(crm) == 1
    assert (
        crm.one("SELECT accounting_code FROM sales_ledger WHERE id = :i", i=ledger_id)["accounting_code"]
        is None
    )
    assert (
        crm.one(
            "SELECT outcome FROM contact_match WHERE connection_id = :conn AND xero_id = :x", x=gid("acme")
        )["outcome"]
        == "do_not_import"
    )


def test_suppliers_are_matched_too(crm):
    with crm.engine.begin() as conn:
        supplier_id = conn.execute(
            text("INSERT INTO purchase_ledger (operating_company_id, name, account_number) VALUES (:c, 'Parts Co', 'S-1')"
                 " RETURNING id"),
            {"c": crm.company_id},
        ).scalar_one()  # fmt: skip
    crm.run(
        {"contacts": [contact("parts", "Parts Company", customer=False, supplier=True, AccountNumber="S-1")]}
    )
    assert crm.ledger("parts", "purchase_ledger")["id"] == supplier_id


def test_two_xero_contacts_on_one_customers_first_level_are_both_ambiguous():
    ledgers = [CrmLedger(1, "A-1", "a@acme.test", "Acme")]
    contacts = [
        XeroContact("x1", None, None, "A@acme.test", "Acme North"),
        XeroContact("x2", None, None, "a@acme.test ", "Acme South"),
    ]
    outcomes = {m.xero_id: (m.outcome, m.match_key) for m in match_contacts(contacts, ledgers)}
    assert outcomes == {"x1": ("ambiguous", "email"), "x2": ("ambiguous", "email")}


def test_a_stronger_key_decides_and_a_weaker_candidate_is_left_alone():
    # The customer's first level with a candidate is its account number: x1 links; x2 shares only the name (the
    # import then creates it as a ledger of its own; the push would have created nothing for it either).
    ledgers = [CrmLedger(1, "A-1", None, "Acme")]
    contacts = [XeroContact("x1", "a-1", None, None, "Acme"), XeroContact("x2", None, None, None, "ACME ")]
    outcomes = {m.xero_id: (m.outcome, m.match_key) for m in match_contacts(contacts, ledgers)}
    assert outcomes == {"x1": ("linked", "account_number")}


def test_archived_contacts_match_by_stable_keys_only():
    ledgers = [CrmLedger(1, "A-1", "a@acme.test", "Acme"), CrmLedger(2, None, "b@beta.test", "Beta")]
    contacts = [
        XeroContact("x1", "A-1", None, None, "Acme Old", "ARCHIVED"),
        XeroContact("x2", None, None, "b@beta.test", "Beta", "ARCHIVED"),
    ]
    outcomes = {m.xero_id: m.outcome for m in match_contacts(contacts, ledgers)}
    assert outcomes == {"x1": "linked"}


def test_no_match_means_no_outcome():
    assert (
        match_contacts(
            [XeroContact("x1", "Z", None, "z@z.test", "Zed")], [CrmLedger(1, "A", "a@a.test", "A")]
        )
        == []
    )
