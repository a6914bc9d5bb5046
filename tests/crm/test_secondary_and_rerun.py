"""I13: the secondary organisation only enriches; and the whole import is idempotent per run."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import inspect, text

from xero_crm_sync.rules.enrichment import tracking_options

from .helpers import T0, contact, credit_note, gid, invoice, item, line, payment, purchase_order

TRACKING = [
    {"TrackingCategoryName": "Region", "TrackingOptionName": "North"},
    {"TrackingCategoryName": "Channel", "TrackingOptionName": "Trade"},
]


def test_secondary_enriches_existing_customers_and_creates_nothing(crm):
    crm.run({"contacts": [contact("acme", "Acme Ltd", AccountNumber="ACC-1"), contact("beta", "Beta Ltd")]})
    before = crm.rows(
        "SELECT id, name, email, status FROM sales_ledger WHERE operating_company_id = :company_id ORDER BY id"
    )
    secondary = crm.add_secondary()
    counts = crm.run(
        {
            "contacts": [
                # Different ContactIDs in the other organisation: matched by account number, then by name.
                contact("acme-2", "Acme Limited", AccountNumber="ACC-1", EmailAddress="new@acme.test",
                        SalesTrackingCategories=TRACKING),
                contact("beta-2", "Beta Ltd", SalesTrackingCategories=TRACKING[:1]),
                contact("gamma-2", "Gamma Ltd", SalesTrackingCategories=TRACKING),
            ],
            "items": [item("SECONDARY-ONLY")],
            "invoices": [invoice("INV-2", "acme-2")],
        },
        connection_id=secondary,
    )  # fmt: skip
    assert counts["enrich_from_secondary"] == 2
    after = crm.rows(
        "SELECT id, name, email, status FROM sales_ledger WHERE operating_company_id = :company_id ORDER BY id"
    )
    assert after == before  # nothing created or overwritten from the secondary
    acme, beta = crm.ledger("acme"), crm.ledger("beta")
    assert (acme["analysis_code_1"], acme["analysis_code_2"]) == ("North", "Trade")
    assert acme["secondary_accounting_code"] == gid("acme-2")
    assert (beta["analysis_code_1"], beta["analysis_code_2"]) == ("North", None)
    for table in ("product", "sales_invoice", "purchase_ledger"):
        assert crm.scalar(f"SELECT COUNT(*) FROM {table} WHERE operating_company_id = :company_id") == 0
    # Unchanged on the next secondary run: nothing written.
    again = crm.run({"contacts": [contact("beta-2", "Beta Ltd", SalesTrackingCategories=TRACKING[:1])]},
                    connection_id=secondary)  # fmt: skip
    assert again["enrich_from_secondary"] == 0


def test_tracking_options_ignore_malformed_entries():
    assert tracking_options(
        '[{"TrackingCategoryName": "Region", "TrackingOptionName": "North"}, {"x": 1}, 3]'
    ) == [("Region", "North")]
    assert tracking_options("not json") == [] and tracking_options(None) == []


def _snapshot(crm) -> dict[str, list]:
    """Every CRM and integration table's rows (all companies: other tests' rows do not change meanwhile)."""
    skip = ("stg_", "val_", "schema_migrations")
    with crm.engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if not t.startswith(skip)]
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in sorted(tables)}


def test_rerunning_a_run_leaves_the_same_rows(crm):
    crm.settings(default_account_manager_id=crm.manager_id, missing_records_include_suppliers=True,
                 b2c_mode="regex", b2c_regex="^Mrs ")  # fmt: skip
    crm.run({"contacts": [contact("acme", "Acme Ltd"), contact("dup1", "Dup", EmailAddress="d@x.test")]})
    crm.execute(
        "INSERT INTO sales_ledger (operating_company_id, name, email) VALUES (:company_id, 'CRM A', 'shared@x.test'),"
        " (:company_id, 'CRM B', 'shared@x.test')"
    )
    later = T0 + timedelta(days=45)
    records = {
        "tax_rates": [{"TaxType": "OUTPUT2", "Name": "VAT", "EffectiveRate": 20}],
        "currencies": [{"Code": "GBP", "Description": "Pound"}],
        "contacts": [
            contact("acme", "Acme Ltd", status="ARCHIVED", updated=later),
            contact("jane", "Mrs Jane", FirstName="Jane"),
            contact("amb", "Ambiguous", EmailAddress="shared@x.test"),
            contact("supp", "Supp Ltd", customer=True, supplier=True),
        ],
        "items": [item("W", IsTrackedAsInventory=True, QuantityOnHand=3)],
        "invoices": [invoice("I1", "acme", paid=10, due=date(2026, 4, 1), lines=[line("W", 2, 50)]),
                     invoice("I2", "jane", status="VOIDED")],
        "credit_notes": [credit_note("C1", "jane")],
        "purchase_orders": [purchase_order("P1", "supp")],
        "payments": [payment("pay1", "I1", 10)],
    }  # fmt: skip
    first = crm.run(records, now=later)
    before = _snapshot(crm)
    second = crm.run(None, now=later, run_id=crm.last_run_id)
    assert _snapshot(crm) == before
    assert first["sales_ledgers"] > 0 and second["sales_ledgers"] == 0 and second["history"] == 0
