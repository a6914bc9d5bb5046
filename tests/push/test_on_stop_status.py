"""On Stop is a CRM credit hold: pushed as ARCHIVED only when Xero archived the contact itself."""

from __future__ import annotations

from sqlalchemy import text

from xero_crm_sync import db, migrate


def test_contact_status_pushed_for_each_kind_of_on_stop(crm_url):
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        company = migrate.seed_demo(conn, "Hold Ltd")
        conn.execute(
            text(
                "INSERT INTO sales_ledger (operating_company_id, name, status, on_stop_source) VALUES "
                "(:c, 'Active Ltd', 'Active', NULL), (:c, 'Credit Hold Ltd', 'On Stop', 'user'), "
                "(:c, 'Archived In Xero Ltd', 'On Stop', 'xero_archived')"
            ),
            {"c": company},
        )
        status = dict(conn.execute(text("SELECT name, contact_status FROM push_customer_fields")).all())
    assert status == {
        "Active Ltd": "ACTIVE",
        "Credit Hold Ltd": "ACTIVE",  # a credit hold never archives the accounts team's contact
        "Archived In Xero Ltd": "ARCHIVED",  # what Xero already says: nothing to push
    }
