"""xero_push through Airflow against the sandbox, on SQLite and PostgreSQL (P1-P5, P8, P9, S8, S10).

One CRM and one organisation per backend, three push runs and an import:
1. creation: customers and products new in the CRM; the template ledger's defaults on creation; a customer matched
   to an existing Xero contact is linked, not duplicated; a rejected record becomes an unresolved error while its
   batch-mates succeed; do-not-export records are never sent;
2. update: only what changed is sent, never the template fields (payment terms the accounts team changed in Xero
   survive); a name another Xero contact holds becomes an unresolved error naming the clash;
3. an import, then a push: what the import brought is not pushed back; no change, no call.
Exact request counts come from the sandbox's counters, bodies from its journal.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.push.conftest import (
    add_customer,
    add_product,
    calls,
    company_id,
    p5_writes,
    run_dag,
    update,
    writes,
    xero_write,
)
from xero_crm_sync.company_settings import set_company_settings

pytestmark = pytest.mark.airflow

TEMPLATE_TERMS = {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}}
TEAM_TERMS = {"Sales": {"Day": 7, "Type": "DAYSAFTERBILLDATE"}}


def contact_bodies(entries, key, value):
    """The Contact elements sent with `key` == `value`."""
    found = []
    for entry in entries:
        for element in (entry.get("body") or {}).get("Contacts", []):
            if element.get(key) == value:
                found.append(element)
    return found


def sent_elements(entries, collection):
    return [element for entry in entries for element in (entry.get("body") or {}).get(collection, [])]


def test_push_customers_and_products(push_pipeline):
    pipeline = push_pipeline
    engine, org = pipeline.engine, pipeline.org()

    # --- Xero as the accounts team left it: a template contact (S8) and a customer the CRM also has ---------
    special = next(t for t in org.branding_themes.values() if t["Name"] == "Special Projects")
    template = xero_write(
        pipeline,
        "Contacts",
        {
            "Name": "Template Customer",
            "PaymentTerms": TEMPLATE_TERMS,
            "BrandingTheme": {"BrandingThemeID": special["BrandingThemeID"]},
            "SalesTrackingCategories": [{"TrackingCategoryName": "Region", "TrackingOptionName": "North"}],
            "SalesDefaultAccountCode": "200",
            "PurchasesDefaultAccountCode": "300",
        },
        method="PUT",
    )
    existing = xero_write(
        pipeline, "Contacts", {"Name": "Kappa Limited", "EmailAddress": "accounts@kappa.co.nz"}, method="PUT"
    )
    with engine.begin() as conn:
        set_company_settings(conn, company_id(engine), template_ledger=template["ContactID"])
    contacts_before = len(org.contacts)

    # --- the CRM --------------------------------------------------------------------------------------------
    alpha = add_customer(
        engine, "Alpha Ltd", person=("Ann", "Able"), email="ann@alpha.co.nz", currency_code="NZD", tax_type="OUTPUT2",
        tax_number="12-345-678", phone="09 555 1234", address_line1="1 Queen St", city="Auckland",
        postal_code="1010", country="New Zealand",
    )  # fmt: skip
    beta = add_customer(engine, "Beta Ltd", email="not-an-email")  # Xero refuses the address
    kappa = add_customer(engine, "Kappa Ltd", email="Accounts@Kappa.co.nz")
    zeta = add_customer(engine, "Zeta Ltd", email="accounts@zeta.co.nz")
    hidden = add_customer(engine, "Hidden Ltd", do_not_export=True, do_not_export_reason="internal account")
    widget = add_product(engine, "W-100", name="Widget", description="A widget", sell_price=12.3456, cost_price=4.5,
                         sales_account_code="200", sales_tax_type="OUTPUT2", purchase_account_code="300")  # fmt: skip
    gizmo = add_product(engine, "G-200", name="Gizmo", sell_price=99, sales_account_code="200")
    secret = add_product(engine, "S-300", name="Secret", do_not_export=True)

    # --- run 1: creation ------------------------------------------------------------------------------------
    run_dag(pipeline, "xero_push")
    assert calls(pipeline) == {
        "GET /Contacts": 1,  # matching: one `where` for the four new customers
        "GET /Contacts/{ContactID}": 1,  # the template ledger, once
        "POST /Contacts": 1,  # one batch: the linked customer's update and three creations
        "POST /Items": 1,
    }
    first = writes(pipeline)
    ledgers = {r["id"]: r for r in pipeline.rows("SELECT * FROM sales_ledger")}

    # Alpha: created with the P1 fields, ContactNumber = CRM id, and the template's defaults (P2).
    created = org.contacts.get(ledgers[alpha]["accounting_code"])
    assert created["Name"] == "Alpha Ltd" and created["ContactNumber"] == str(alpha)
    assert (created["FirstName"], created["LastName"], created["EmailAddress"]) == (
        "Ann",
        "Able",
        "ann@alpha.co.nz",
    )
    assert created["AccountsReceivableTaxType"] == "OUTPUT2" and created["TaxNumber"] == "12-345-678"
    assert created["PaymentTerms"] == TEMPLATE_TERMS
    assert created["BrandingTheme"]["BrandingThemeID"] == special["BrandingThemeID"]
    assert created["SalesTrackingCategories"] == [
        {"TrackingCategoryName": "Region", "TrackingOptionName": "North"}
    ]
    assert (created["SalesDefaultAccountCode"], created["PurchasesDefaultAccountCode"]) == ("200", "300")
    assert ledgers[alpha]["last_accounting_export_date"] is not None

    # Kappa: matched by email (P9) and linked to the existing contact, which was updated, not duplicated.
    assert ledgers[kappa]["accounting_code"] == existing["ContactID"]
    assert org.contacts.get(existing["ContactID"])["Name"] == "Kappa Ltd"
    [kappa_sent] = contact_bodies(first, "ContactID", existing["ContactID"])
    assert "PaymentTerms" not in kappa_sent and "BrandingTheme" not in kappa_sent
    assert len(org.contacts) == contacts_before + 2  # Alpha and Zeta; Beta was refused

    # Beta: refused by Xero; an unresolved error with Xero's message and what was sent; its batch-mates went in.
    assert ledgers[beta]["accounting_code"] is None and ledgers[zeta]["accounting_code"] is not None
    [error] = pipeline.rows(
        "SELECT * FROM sync_error WHERE record_type = 'sales_ledger' AND record_id = :id", id=beta
    )
    assert error["direction"] == "export" and error["status"] == "open"
    assert "Email address must be valid" in error["xero_message"]
    assert "not-an-email" in str(error["payload"])
    assert pipeline.scalar("SELECT state FROM export_queue WHERE record_id = :id AND record_type = 'sales_ledger'",
                           id=beta) == "failed"  # fmt: skip

    # Do not export (S10): never sent.
    assert ledgers[hidden]["accounting_code"] is None
    assert contact_bodies(first, "Name", "Hidden Ltd") == []

    # Products (P3): created with their fields; the do-not-export one never sent.
    products = {r["id"]: r for r in pipeline.rows("SELECT * FROM product")}
    item = org.items.get(products[widget]["accounting_code"])
    assert item["Code"] == "W-100" and item["Name"] == "Widget" and item["Description"] == "A widget"
    assert item["SalesDetails"] == {"UnitPrice": 12.3456, "AccountCode": "200", "TaxType": "OUTPUT2"}
    assert item["PurchaseDetails"]["UnitPrice"] == 4.5 and item["PurchaseDetails"]["AccountCode"] == "300"
    assert products[gizmo]["accounting_code"] is not None and products[secret]["accounting_code"] is None
    assert "S-300" not in [e.get("Code") for e in sent_elements(first, "Items")]

    # The history (done) and the run.
    history = pipeline.rows(
        "SELECT record_type, record_id, operation FROM sync_history WHERE direction = 'export' ORDER BY id"
    )
    done = {(h["record_type"], h["record_id"], h["operation"]) for h in history}
    assert {("sales_ledger", alpha, "create"), ("sales_ledger", zeta, "create"), ("sales_ledger", kappa, "link+update"), ("product", widget, "create"), ("product", gizmo, "create")} <= done  # fmt: skip
    assert pipeline.scalar("SELECT status FROM sync_run WHERE kind = 'push'") == "success"

    # --- the accounts team changes Alpha's payment terms in Xero; the CRM changes a few things -------------
    xero_write(pipeline, "Contacts", {"ContactID": created["ContactID"], "PaymentTerms": TEAM_TERMS})
    update(engine, "sales_ledger", alpha, phone="09 555 9999")
    update(engine, "product", widget, sell_price=13.5)
    yotta = add_customer(engine, "Zeta Ltd", email="info@yotta.co.nz")  # a second "Zeta Ltd" in the CRM
    pipeline.sandbox.admin.reset_counters()
    seq = max(e["seq"] for e in first)

    # --- run 2: update ----------------------------------------------------------------------------------------
    run_dag(pipeline, "xero_push")
    assert calls(pipeline) == {
        "GET /Contacts": 1,  # matching the new customer
        "GET /Contacts/{ContactID}": 1,  # template: something is to be created
        "POST /Contacts": 1,  # Alpha's update and Yotta's creation
        "POST /Items": 1,  # the widget's new price
    }
    second = writes(pipeline, since_seq=seq)
    [alpha_sent] = contact_bodies(second, "ContactID", created["ContactID"])
    for field in ("PaymentTerms", "BrandingTheme", "SalesTrackingCategories", "SalesDefaultAccountCode",
                  "PurchasesDefaultAccountCode", "Discount", "ContactNumber"):  # fmt: skip
        assert field not in alpha_sent
    alpha_now = org.contacts.get(created["ContactID"])
    assert alpha_now["PaymentTerms"] == TEAM_TERMS  # the accounts team's change survives
    assert alpha_now["Phones"][0]["PhoneNumber"] == "09 555 9999"
    assert org.items.get(products[widget]["accounting_code"])["SalesDetails"]["UnitPrice"] == 13.5
    # Unchanged and rejected-unchanged records were not sent again.
    assert [e.get("Name") for e in sent_elements(second, "Contacts")] == ["Alpha Ltd", "Zeta Ltd"]
    assert [e.get("Code") for e in sent_elements(second, "Items")] == ["W-100"]
    # The name clash: Xero's refusal, naming the name and who holds it.
    [clash] = pipeline.rows(
        "SELECT * FROM sync_error WHERE record_type = 'sales_ledger' AND record_id = :id", id=yotta
    )
    assert clash["error_code"] == "name_taken"
    assert "Zeta Ltd" in clash["message"] and ledgers[zeta]["accounting_code"] in clash["message"]
    assert "already assigned" in clash["xero_message"]

    # --- an import, then run 3: nothing the import brought goes back; no change, no call -------------------
    xero_write(pipeline, "Contacts", {"ContactID": existing["ContactID"], "TaxNumber": "99-999-999"})
    pipeline.run_import()
    assert pipeline.scalar("SELECT tax_number FROM sales_ledger WHERE id = :id", id=kappa) == "99-999-999"
    pipeline.sandbox.admin.reset_counters()
    run_dag(pipeline, "xero_push")
    assert calls(pipeline) == {}

    # P5: no payment, no archived or deleted item, no bill was ever written.
    assert p5_writes(writes(pipeline)) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM export_batch WHERE state = 'pending'")).scalar() == 0
