"""I3 (S2) B2C classification and I4 (S3-S6) missing-record creation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from xero_crm_sync.rules.b2c import compile_b2c, reclassify

from .helpers import T0, contact, gid

CONSUMER = r"^(Mr|Mrs|Ms|Dr)\.? "


def test_regex_mode_classifies_by_name(crm):
    crm.settings(b2c_mode="regex", b2c_regex=CONSUMER)
    crm.run({"contacts": [contact("jane", "Mrs Jane Smith"), contact("acme", "Acme Ltd")]})
    assert crm.ledger("jane")["is_b2c"] in (True, 1)
    assert crm.ledger("acme")["is_b2c"] in (False, 0)
    # A rename in Xero reclassifies.
    crm.run({"contacts": [contact("acme", "Dr Acme", updated=T0 + timedelta(hours=1))]})
    assert crm.ledger("acme")["is_b2c"] in (True, 1)


def test_manual_mode_leaves_the_flag_to_users(crm):
    crm.settings(b2c_mode="manual", b2c_regex=CONSUMER)
    crm.run({"contacts": [contact("jane", "Mrs Jane Smith")]})
    assert crm.ledger("jane")["is_b2c"] in (False, 0)
    crm.execute(
        "UPDATE sales_ledger SET is_b2c = TRUE WHERE operating_company_id = :company_id AND accounting_code = :c",
        c=gid("jane"),
    )
    crm.run({"contacts": [contact("jane", "Mrs Jane Smyth", updated=T0 + timedelta(hours=1))]})
    assert crm.ledger("jane")["is_b2c"] in (True, 1)


def test_b2c_rule_is_a_pure_function():
    regex = compile_b2c(CONSUMER)
    assert reclassify([(1, "Mr Bean", False), (2, "Bean Ltd", False), (3, None, True)], regex) == [
        (1, True),
        (3, False),
    ]


def _links(crm, key, table="sales_ledger"):
    ledger = crm.ledger(key, table)
    return ledger["company_id"], ledger["division_id"], ledger["contact_id"]


def test_active_mode_creates_company_division_and_contact_with_defaults(crm):
    crm.settings(
        missing_records_mode="active",
        default_account_manager_id=crm.manager_id,
        default_role_code="ACC",
        default_company_type_id=1,
    )
    crm.run(
        {
            "contacts": [
                contact("acme", "Acme Ltd", FirstName="Ann", LastName="Lee", EmailAddress="ann@acme.test")
            ]
        }
    )
    company_id, division_id, contact_id = _links(crm, "acme")
    company = crm.one("SELECT * FROM company WHERE id = :i", i=company_id)
    assert (company["name"], company["company_type_id"], company["account_manager_id"]) == (
        "Acme Ltd",
        1,
        crm.manager_id,
    )
    assert company["source"] == "xero_import"
    division = crm.one("SELECT * FROM division WHERE id = :i", i=division_id)
    assert division["company_id"] == company_id
    person = crm.one("SELECT * FROM contact WHERE id = :i", i=contact_id)
    assert (person["first_name"], person["last_name"], person["email"], person["role_code"]) == (
        "Ann", "Lee", "ann@acme.test", "ACC"
    )  # fmt: skip
    assert (person["company_id"], person["division_id"]) == (company_id, division_id)
    # A rerun and a later change create nothing more.
    crm.run({"contacts": [contact("acme", "Acme Ltd 2", updated=T0 + timedelta(hours=1))]})
    assert _links(crm, "acme") == (company_id, division_id, contact_id)
    assert crm.scalar("SELECT COUNT(*) FROM company WHERE operating_company_id = :company_id") == 1


def test_active_mode_skips_on_stop_ledgers_all_mode_includes_them(crm):
    crm.settings(missing_records_mode="none")
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.run({"contacts": [contact("acme", "Acme Ltd", status="ARCHIVED", updated=T0 + timedelta(hours=1))]})
    assert _links(crm, "acme") == (None, None, None)
    crm.settings(missing_records_mode="active")
    crm.run({"contacts": [contact("acme", "Acme Ltd", status="ARCHIVED", updated=T0 + timedelta(hours=2))]})
    assert _links(crm, "acme") == (None, None, None)
    crm.settings(missing_records_mode="all")
    crm.run({"contacts": [contact("acme", "Acme Ltd", status="ARCHIVED", updated=T0 + timedelta(hours=3))]})
    assert None not in _links(crm, "acme")


def test_none_mode_creates_nothing(crm):
    crm.settings(missing_records_mode="none")
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    assert _links(crm, "acme") == (None, None, None)
    assert crm.scalar("SELECT COUNT(*) FROM company WHERE operating_company_id = :company_id") == 0


@pytest.mark.parametrize("include", [False, True])
def test_suppliers_only_when_included(crm, include):
    crm.settings(missing_records_mode="active", missing_records_include_suppliers=include)
    crm.run({"contacts": [contact("supp", "Supplier Ltd", customer=False, supplier=True)]})
    created = _links(crm, "supp", "purchase_ledger")
    assert (None not in created) is include


def test_a_contact_that_is_both_shares_one_company(crm):
    crm.settings(missing_records_mode="active", missing_records_include_suppliers=True)
    crm.run({"contacts": [contact("both", "Both Ltd", supplier=True)]})
    assert _links(crm, "both") == _links(crm, "both", "purchase_ledger")
    assert crm.scalar("SELECT COUNT(*) FROM company WHERE operating_company_id = :company_id") == 1


@pytest.mark.parametrize("include", [False, True])
def test_b2c_accounts_only_when_included(crm, include):
    crm.settings(
        missing_records_mode="all", missing_records_include_b2c=include, b2c_mode="regex", b2c_regex=CONSUMER
    )
    crm.run({"contacts": [contact("jane", "Mrs Jane Smith"), contact("acme", "Acme Ltd")]})
    assert (None not in _links(crm, "jane")) is include
    assert None not in _links(crm, "acme")
    if include:  # a consumer without a person name becomes its own contact person
        person = crm.one("SELECT * FROM contact WHERE id = :i", i=crm.ledger("jane")["contact_id"])
        assert (person["first_name"], person["last_name"]) == (None, "Mrs Jane Smith")


def test_a_ledger_with_a_company_gets_only_what_it_lacks_inside_that_company(crm):
    crm.settings(missing_records_mode="none")
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.execute("INSERT INTO company (operating_company_id, name) VALUES (:company_id, 'Acme Group')")
    company_id = crm.scalar("SELECT id FROM company WHERE operating_company_id = :company_id")
    crm.execute(
        "UPDATE sales_ledger SET company_id = :i WHERE operating_company_id = :company_id", i=company_id
    )
    crm.settings(missing_records_mode="active")
    crm.run({"contacts": [contact("acme", "Acme Ltd", updated=T0 + timedelta(hours=1))]})
    linked_company, division_id, contact_id = _links(crm, "acme")
    assert linked_company == company_id
    assert crm.scalar("SELECT company_id FROM division WHERE id = :i", i=division_id) == company_id
    assert crm.scalar("SELECT division_id FROM contact WHERE id = :i", i=contact_id) == division_id
    assert crm.scalar("SELECT COUNT(*) FROM company WHERE operating_company_id = :company_id") == 1
