"""Lost updates the campaigns' plan found in a fault-free run: what sales change in the CRM between a push and the
next import must survive that import and reach Xero, and prices keep the 4 decimals the CRM holds.

- The import after a push reads back the records the push just wrote (Xero stamped them after the watermark). It
  used to overwrite the CRM's newer values with that echo, so a phone or a price changed meanwhile was lost in the
  CRM and never pushed. A change made in Xero to a record the CRM did not change still arrives.
- The import read Items (and invoice and credit note lines) without `unitdp=4`, so Xero's 2-decimal rounding came
  back: a product pushed at 10.1234 became 10.12 in the CRM, and as the CRM then agreed with what the import read,
  the difference was never pushed again.

Real sandbox, real databases (SQLite and PostgreSQL), the DAGs' functions.
"""

from __future__ import annotations

from sqlalchemy import text

from tests.chaos.world import PlanStats, Scenario, build_world, run_dag

SMALL = Scenario(seed=5, xero_contacts=10, customers=2, products=2, orders=1)


def test_crm_edits_survive_the_import_of_the_push_echo_and_prices_keep_four_decimals(crm_url):
    world = build_world(SMALL, crm_url)
    try:
        stats = PlanStats()
        run_dag(world, "import-1", "xero_import", stats)
        run_dag(world, "push-1", "xero_push", stats)
        edited, untouched = world.ids["customers"]
        repriced, precise = world.ids["products"]
        code = {
            p: world.scalar("SELECT accounting_code FROM product WHERE id = :i", i=p)
            for p in (repriced, precise)
        }
        assert (
            world.org.items.get(code[precise])["SalesDetails"]["UnitPrice"] == 11.1234
        )  # pushed with unitdp=4

        with world.engine.begin() as conn:  # sales edit the CRM before the next import
            conn.execute(text("UPDATE sales_ledger SET phone = '09 999 0000' WHERE id = :i"), {"i": edited})
            conn.execute(text("UPDATE product SET sell_price = 99.5 WHERE id = :i"), {"i": repriced})
        contact_id = world.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :i", i=untouched)
        [changed] = world.org.write(
            "Contacts", [{"ContactID": contact_id, "EmailAddress": "team@chaos.example"}]
        )
        assert changed.ok  # the accounts team changes the other customer in Xero

        run_dag(world, "import-2", "xero_import", stats)
        assert world.scalar("SELECT phone FROM sales_ledger WHERE id = :i", i=edited) == "09 999 0000"
        assert float(world.scalar("SELECT sell_price FROM product WHERE id = :i", i=repriced)) == 99.5
        assert (
            world.scalar("SELECT email FROM sales_ledger WHERE id = :i", i=untouched) == "team@chaos.example"
        )
        assert float(world.scalar("SELECT sell_price FROM product WHERE id = :i", i=precise)) == 11.1234

        run_dag(world, "push-2", "xero_push", stats)
        contact = world.org.contacts.get(
            world.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :i", i=edited)
        )
        assert [p["PhoneNumber"] for p in contact["Phones"] if p["PhoneType"] == "DEFAULT"] == ["09 999 0000"]
        assert world.org.items.get(code[repriced])["SalesDetails"]["UnitPrice"] == 99.5
        with (
            world.engine.connect() as conn
        ):  # nothing else to push: the CRM and Xero agree to the fourth decimal
            pending = conn.execute(
                text(
                    "SELECT COUNT(*) FROM push_product_fields WHERE last_export_hash IS DISTINCT FROM fields_hash"
                )
            ).scalar()
        assert pending == 0
    finally:
        world.close()
