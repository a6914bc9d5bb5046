"""I2, S1, S4, S10, I14: Xero contacts -> sales and purchase ledgers."""

from __future__ import annotations

from datetime import timedelta

from .helpers import T0, contact, gid

LATER = T0 + timedelta(hours=1)


def test_customers_suppliers_and_both_get_the_right_ledgers(crm):
    crm.run(
        {
            "contacts": [
                contact("cust", "Customer Ltd", customer=True, supplier=False),
                contact("supp", "Supplier Ltd", customer=False, supplier=True),
                contact("both", "Both Ltd", customer=True, supplier=True),
                contact("neither", "Neither Ltd", customer=False, supplier=False),
            ]
        }
    )
    assert set(crm.ledgers("sales_ledger")) == {"Customer Ltd", "Both Ltd"}
    assert set(crm.ledgers("purchase_ledger")) == {"Supplier Ltd", "Both Ltd"}
    assert crm.ledger("both")["accounting_code"] == crm.ledger("both", "purchase_ledger")["accounting_code"]


def test_ledger_carries_the_xero_details(crm):
    crm.run(
        {
            "contacts": [
                contact(
                    "acme",
                    "Acme Ltd",
                    AccountNumber="ACC-1",
                    EmailAddress="accounts@acme.test",
                    DefaultCurrency="EUR",
                    TaxNumber="GB123",
                    AccountsReceivableTaxType="OUTPUT2",
                    Phones=[{"PhoneType": "DEFAULT", "PhoneAreaCode": "020", "PhoneNumber": "7946 0000"}],
                    Addresses=[
                        {
                            "AddressType": "POBOX",
                            "AddressLine1": "1 High St",
                            "City": "London",
                            "PostalCode": "N1 1AA",
                            "Country": "UK",
                        }
                    ],  # fmt: skip
                )
            ]
        }
    )
    ledger = crm.ledger("acme")
    assert ledger["status"] == "Active"
    assert ledger["account_number"] == "ACC-1"
    assert ledger["email"] == "accounts@acme.test"
    assert ledger["currency_code"] == "EUR"
    assert ledger["tax_type"] == "OUTPUT2"
    assert ledger["tax_number"] == "GB123"
    assert ledger["phone"] == "020 7946 0000"
    assert (ledger["address_line1"], ledger["city"], ledger["postal_code"]) == (
        "1 High St",
        "London",
        "N1 1AA",
    )
    assert ledger["last_accounting_import_date"] == "2026-03-01 12:00:00"
    assert ledger["account_manager_id"] is None  # no S4 default set


def test_archived_contact_goes_on_stop_and_comes_back_when_restored(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.run({"contacts": [contact("acme", "Acme Ltd", status="ARCHIVED", updated=LATER)]}, now=LATER)
    ledger = crm.ledger("acme")
    assert (ledger["status"], ledger["on_stop_source"]) == ("On Stop", "xero_archived")
    crm.run({"contacts": [contact("acme", "Acme Ltd", updated=LATER + timedelta(hours=1))]})
    ledger = crm.ledger("acme")
    assert (ledger["status"], ledger["on_stop_source"]) == ("Active", None)


def test_restoring_in_xero_never_clears_an_on_stop_set_by_a_user(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.execute("UPDATE sales_ledger SET status = 'On Stop', on_stop_source = 'user' WHERE operating_company_id = :company_id AND accounting_code = :c",
                c=gid("acme"))  # fmt: skip
    crm.run({"contacts": [contact("acme", "Acme Ltd", status="ARCHIVED", updated=LATER)]})
    crm.run({"contacts": [contact("acme", "Acme Ltd", updated=LATER + timedelta(hours=1))]})
    ledger = crm.ledger("acme")
    assert (ledger["status"], ledger["on_stop_source"]) == ("On Stop", "user")


def test_archived_contact_never_imported_stays_out(crm):
    crm.run({"contacts": [contact("old", "Old Ltd", status="ARCHIVED", supplier=True)]})
    assert crm.ledgers("sales_ledger") == {}
    assert crm.ledgers("purchase_ledger") == {}


def test_linked_contact_keeps_updating_whatever_its_customer_flag_says(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.run({"contacts": [contact("acme", "Acme Renamed", customer=False, updated=LATER)]}, now=LATER)
    ledger = crm.ledger("acme")
    assert ledger["name"] == "Acme Renamed"
    assert ledger["last_accounting_import_date"] == "2026-03-01 13:00:00"


def test_unchanged_contact_keeps_its_last_import_date(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd", EmailAddress="a@acme.test")]})
    # Xero sends it again (e.g. a full resync): same values, later run.
    crm.run({"contacts": [contact("acme", "Acme Ltd", EmailAddress="a@acme.test", updated=LATER)]}, now=LATER)
    assert crm.ledger("acme")["last_accounting_import_date"] == "2026-03-01 12:00:00"


def test_display_description_follows_s1(crm):
    crm.run(
        {"contacts": [contact("acme", "Acme Ltd", AccountNumber="ACC-1"), contact("nonum", "No Number Ltd")]}
    )
    assert crm.ledger("acme")["display_description"] == "Acme Ltd"
    crm.settings(display_description="account_number")
    crm.run({})  # the next run relabels every synced ledger, changed in Xero or not
    assert crm.ledger("acme")["display_description"] == "ACC-1"
    assert crm.ledger("nonum")["display_description"] == "No Number Ltd"  # no account number: the name


def test_new_ledgers_get_the_default_account_manager_existing_ones_keep_theirs(crm):
    crm.settings(default_account_manager_id=crm.manager_id)
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    assert crm.ledger("acme")["account_manager_id"] == crm.manager_id
    crm.execute(
        "UPDATE sales_ledger SET account_manager_id = NULL WHERE operating_company_id = :company_id AND accounting_code = :c",
        c=gid("acme"),
    )
    crm.run({"contacts": [contact("acme", "Acme Renamed", updated=LATER)]})
    assert crm.ledger("acme")["account_manager_id"] is None


def test_do_not_import_ledger_is_left_alone(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    crm.execute(
        "UPDATE sales_ledger SET do_not_import = TRUE, do_not_import_reason = 'disputed' WHERE operating_company_id = :company_id AND accounting_code = :c",
        c=gid("acme"),
    )
    crm.run({"contacts": [contact("acme", "Acme Renamed", status="ARCHIVED", updated=LATER)]}, now=LATER)
    ledger = crm.ledger("acme")
    assert (ledger["name"], ledger["status"]) == ("Acme Ltd", "Active")
    assert ledger["last_accounting_import_date"] == "2026-03-01 12:00:00"


def test_a_crm_change_waiting_to_be_pushed_is_not_overwritten(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd")]})
    ledger_id = crm.ledger("acme")["id"]
    crm.execute("UPDATE sales_ledger SET name = 'Acme (CRM edit)' WHERE id = :i", i=ledger_id)
    crm.execute(
        "INSERT INTO export_queue (connection_id, record_type, record_id, operation, idempotency_key)"
        " VALUES (:c, 'sales_ledger', :i, 'update', :k)",
        c=crm.connection_id, i=ledger_id, k=f"k-{crm.tag}",
    )  # fmt: skip
    crm.run({"contacts": [contact("acme", "Acme Ltd (Xero)", updated=LATER)]})
    assert crm.ledger("acme")["name"] == "Acme (CRM edit)"
