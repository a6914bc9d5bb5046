"""xero_import end to end (Airflow `dag.test()`, the sandbox over HTTP, SQLite and PostgreSQL), each rule with
data made for it. The accounts team changes Xero through the API between runs, as they would.

One scenario per database keeps Airflow runs few: a full first sync, an incremental run after edits in Xero, a
run with nothing changed, and a retried load, asserting after each what a user would check in the CRM and what the
sandbox received.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import AccountsTeam, build_pipeline, snapshot
from xero_crm_sync import company_settings, db, import_run
from xero_crm_sync.entities import ENTITIES
from xero_crm_sync.xero_client import PAGE_SIZE
from xero_sandbox.accounting.holdings import fewest_calls

pytestmark = pytest.mark.airflow

# Consumers look like "Firstname Lastname"; the first alternative is a classic catastrophic-backtracking pattern,
# harmless in RE2 (linear time) and a hang in a backtracking engine on the "aaaa...!" name below.
B2C_REGEX = r"^(a+)+$|^[A-Z][a-z]+ [A-Z][a-z]+$"

CRM_TABLES = (
    "sales_ledger",
    "purchase_ledger",
    "company",
    "division",
    "contact",
    "product",
    "stock_level",
    "sales_invoice",
    "sales_invoice_line",
    "credit_note",
    "purchase_order",
    "payment",
    "tax_rate",
    "currency",
)


def _contact(name: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "EmailAddress": f"{name.split()[0].lower()}@example.com", **extra}


def _invoice(contact_id: str, amount: float, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": "2026-11-01",
        "DueDate": "2026-12-31",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Consulting",
                "Quantity": 1,
                "UnitAmount": amount,
                "AccountCode": "200",
                "TaxType": "OUTPUT2",
            }
        ],
        **extra,
    }


def _seed_xero(team: AccountsTeam, sandbox: Any) -> dict[str, str]:
    """Contacts and documents made for each rule; returns their Xero ids by role."""
    names = {
        "customer": "Will Archive Ltd",
        "archived_never": "Long Gone Ltd",
        "consumer": "Jane Consumer",
        "business": "Acme Widgets Ltd",
        "hostile": "a" * 40 + "!",
    }
    # Not a customer yet (no transaction names it), and older than the first sync's watermark (the newest change
    # it reads), so an incremental read of Contacts cannot return it again.
    later = team.write("PUT", "/Contacts", {"Contacts": [_contact("Later Customer Ltd")]})["Contacts"][0]
    sandbox.admin.advance_clock(5)
    created = team.write("PUT", "/Contacts", {"Contacts": [_contact(n) for n in names.values()]})["Contacts"]
    ids = {role: c["ContactID"] for role, c in zip(names, created, strict=True)}
    # An ACCREC invoice makes each a customer (Xero derives IsCustomer from transactions).
    invoices = team.write(
        "PUT", "/Invoices", {"Invoices": [_invoice(cid, 100 + i) for i, cid in enumerate(ids.values())]}
    )["Invoices"]
    ids["invoice_to_void"] = invoices[0]["InvoiceID"]
    ids["invoice_to_pay"] = invoices[3]["InvoiceID"]
    team.write(
        "POST",
        f"/Contacts/{ids['archived_never']}",
        {"Contacts": [{"ContactID": ids["archived_never"], "ContactStatus": "ARCHIVED"}]},
    )
    ids["later_customer"] = later["ContactID"]
    return ids


def _inject_malformed_invoice(pipeline: Any, contact_id: str) -> str:
    """Xero sending a record that fails validation: its total does not add up (stored without the API's checks)."""
    org = pipeline.org()
    template = dict(org.invoices.values()[0])
    bad_id = "0badbad0-0000-4000-8000-00000000bad1"
    template.update(
        InvoiceID=bad_id,
        InvoiceNumber="INV-BAD-1",
        Contact={"ContactID": contact_id, "Name": "Acme Widgets Ltd"},
        Total=template.get("Total", 0) + 1000,
        UpdatedDateUTC=template["UpdatedDateUTC"],
    )
    org.bulk_load("Invoices", [template])
    return bad_id


def test_import_rules_end_to_end(airflow_db, make_sandbox, crm_db):
    sandbox = make_sandbox(seed=7, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    team = AccountsTeam(sandbox, pipeline.tenants["primary"])
    ids = _seed_xero(team, sandbox)
    bad_invoice = _inject_malformed_invoice(pipeline, ids["business"])
    with db.begin(crm_db) as conn:
        company_id = conn.execute(db_text("SELECT id FROM operating_company")).scalar_one()
        company_settings.set_company_settings(conn, company_id, b2c_mode="regex", b2c_regex=B2C_REGEX)

    # --- first sync: everything, ACTIVE contacts only -------------------------------------------------------
    pipeline.run_import()
    ledger = {r["accounting_code"]: r for r in pipeline.rows("SELECT * FROM sales_ledger")}
    assert ids["later_customer"] not in ledger, "a contact no transaction names is no customer yet"
    assert ledger[ids["customer"]]["status"] == "Active"
    assert ids["archived_never"] not in ledger, "an archived contact never imported stays out (I2)"
    assert ledger[ids["consumer"]]["is_b2c"] in (True, 1)
    assert ledger[ids["business"]]["is_b2c"] in (False, 0)
    # A backtracking engine would take hours on this name; RE2 answers "no match" at once and the run went on.
    assert ledger[ids["hostile"]]["is_b2c"] in (False, 0)
    # Missing-record creation (default mode: active accounts, no B2C): a company for the business, none for B2C.
    assert ledger[ids["business"]]["company_id"] is not None
    assert ledger[ids["consumer"]]["company_id"] is None
    # The malformed invoice is quarantined with its reason; the rest of its run loaded.
    quarantined = pipeline.rows("SELECT entity, xero_id, reasons FROM quarantined_record")
    assert [(q["entity"], q["xero_id"]) for q in quarantined] == [("invoices", bad_invoice)]
    reasons = quarantined[0]["reasons"]
    assert "is not SubTotal" in (reasons if isinstance(reasons, str) else json.dumps(reasons))
    assert (
        pipeline.scalar("SELECT COUNT(*) FROM sales_invoice WHERE accounting_code = :i", i=bad_invoice) == 0
    )
    xero_invoices = team.get("/Invoices", page=1, pageSize=1000)["Invoices"]
    good_accrec = [i for i in xero_invoices if i["Type"] == "ACCREC" and i["InvoiceID"] != bad_invoice]
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_invoice") == len(good_accrec)

    # --- the accounts team works in Xero ------------------------------------------------------------------------
    team.write(
        "POST",
        f"/Contacts/{ids['customer']}",
        {"Contacts": [{"ContactID": ids["customer"], "ContactStatus": "ARCHIVED"}]},
    )
    team.write(
        "POST",
        f"/Contacts/{ids['business']}",
        {"Contacts": [{"ContactID": ids["business"], "EmailAddress": "accounts@acme.example"}]},
    )
    team.write(
        "POST",
        f"/Invoices/{ids['invoice_to_void']}",
        {"Invoices": [{"InvoiceID": ids["invoice_to_void"], "Status": "VOIDED"}]},
    )
    team.write(
        "PUT",
        "/Payments",
        {
            "Payments": [
                {
                    "Invoice": {"InvoiceID": ids["invoice_to_pay"]},
                    "Account": {"Code": "090"},
                    "Amount": 20,
                    "Date": "2026-11-20",
                }
            ]
        },
    )
    # Its first ACCREC invoice makes it a customer in Xero, without moving its UpdatedDateUTC (Xero derives the
    # flag): the incremental read of Contacts does not return it, the invoice does.
    first_sale = team.write("PUT", "/Invoices", {"Invoices": [_invoice(ids["later_customer"], 55)]})[
        "Invoices"
    ][0]
    sandbox.admin.reset_counters()
    ledgers_before = _by_code(pipeline, "sales_ledger")
    invoices_before = _by_code(pipeline, "sales_invoice")

    # --- incremental: exactly those edits ---------------------------------------------------------------------
    pipeline.run_import()
    assert _changed(ledgers_before, _by_code(pipeline, "sales_ledger")) == {
        ids["customer"],
        ids["business"],
        ids["later_customer"],
    }
    assert _changed(invoices_before, _by_code(pipeline, "sales_invoice")) == {
        ids["invoice_to_void"],
        ids["invoice_to_pay"],
        first_sale["InvoiceID"],
    }
    ledger = {r["accounting_code"]: r for r in pipeline.rows("SELECT * FROM sales_ledger")}
    # A customer ledger from its first ACCREC invoice, named as in Xero, with the invoice on it.
    assert (ledger[ids["later_customer"]]["name"], ledger[ids["later_customer"]]["status"]) == (
        "Later Customer Ltd",
        "Active",
    )
    assert (
        pipeline.scalar(
            "SELECT sl.accounting_code FROM sales_invoice si JOIN sales_ledger sl ON sl.id = si.sales_ledger_id "
            "WHERE si.accounting_code = :i",
            i=first_sale["InvoiceID"],
        )
        == ids["later_customer"]
    )
    assert ledger[ids["customer"]]["status"] == "On Stop", "imported, then archived in Xero -> On Stop (I2)"
    assert ledger[ids["business"]]["email"] == "accounts@acme.example"
    voided = pipeline.rows(
        "SELECT status, xero_status FROM sales_invoice WHERE accounting_code = :i", i=ids["invoice_to_void"]
    )
    assert [(v["status"], v["xero_status"]) for v in voided] == [("D", "VOIDED")]
    paid = pipeline.rows(
        "SELECT payment_status, amount_paid FROM sales_invoice WHERE accounting_code = :i",
        i=ids["invoice_to_pay"],
    )
    assert paid[0]["payment_status"] == "partially_paid"
    assert float(paid[0]["amount_paid"]) == pytest.approx(20)
    counters = _counters(pipeline)
    assert counters["totals"]["calls"] == _fewest(pipeline)
    # Not a full read: what changed since the watermark (to the second, as Xero compares) came back.
    endpoints = counters["endpoints"]
    assert endpoints["GET /Contacts"]["records_returned"] < len(ledgers_before)
    assert endpoints["GET /Invoices"]["records_returned"] < len(invoices_before)

    # --- nothing changed: one call per entity, and the CRM stays exactly the same ------------------------------
    before = snapshot(pipeline.engine, CRM_TABLES)
    sandbox.admin.reset_counters()
    dag_run = pipeline.run_import()
    assert _counters(pipeline)["totals"]["calls"] == _fewest(pipeline, nothing_changed=True) == len(ENTITIES)
    assert snapshot(pipeline.engine, CRM_TABLES) == before

    # --- a retried validate and load of the same run changes nothing either ------------------------------------
    extracted = _extract_result(pipeline, dag_run.run_id)
    import_run.validate(pipeline.engine, extracted)
    import_run.load(pipeline.engine, extracted)
    assert snapshot(pipeline.engine, CRM_TABLES) == before
    team.close()


def _by_code(pipeline: Any, table: str) -> dict[str, dict[str, Any]]:
    rows = pipeline.rows(f"SELECT * FROM {table}")
    return {r["accounting_code"]: {k: str(v) for k, v in r.items() if k != "updated_at"} for r in rows}


def _changed(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> set[str]:
    return {code for code in before.keys() | after.keys() if before.get(code) != after.get(code)}


def _counters(pipeline: Any) -> dict[str, Any]:
    tenant = pipeline.tenants["primary"]
    return pipeline.sandbox.admin.counters(tenant)[tenant]


def _fewest(pipeline: Any, *, nothing_changed: bool = False) -> int:
    """The fewest GETs an import needs, from what the sandbox holds (never from what the client read): with
    nothing changed, one per entity; otherwise ceil(records / page size) per paged entity."""
    tenant = pipeline.tenants["primary"]
    since = "2999-01-01T00:00:00" if nothing_changed else None
    held = pipeline.sandbox.admin.records(tenant, modified_since=since)[tenant]
    return fewest_calls(held, [entity.path for entity in ENTITIES], PAGE_SIZE)


def _extract_result(pipeline: Any, run_id: str) -> dict[str, Any]:
    counts = pipeline.scalar("SELECT counts FROM sync_run WHERE run_id = :r AND kind = 'import'", r=run_id)
    counts = counts if isinstance(counts, dict) else json.loads(counts)
    return counts["extract"]


def db_text(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


@pytest.mark.parametrize(
    ("mode", "include_suppliers", "include_b2c"),
    [("none", False, False), ("all", True, True)],
)
def test_missing_record_modes_and_the_secondary_organisation(
    airflow_db, make_sandbox, crm_db, mode, include_suppliers, include_b2c
):
    sandbox = make_sandbox(seed=11, contacts=25, tenants=2)
    pipeline = build_pipeline(crm_db, sandbox, roles=("primary", "secondary"))
    with db.begin(crm_db) as conn:
        company_id = conn.execute(db_text("SELECT id FROM operating_company")).scalar_one()
        company_settings.set_company_settings(
            conn,
            company_id,
            missing_records_mode=mode,
            missing_records_include_suppliers=include_suppliers,
            missing_records_include_b2c=include_b2c,
            b2c_mode="regex",
            b2c_regex=r"^[A-Z][a-z]+ [A-Z][a-z]+$",
        )
    pipeline.run_import()
    ledgers = pipeline.scalar("SELECT COUNT(*) FROM sales_ledger")
    suppliers = pipeline.scalar("SELECT COUNT(*) FROM purchase_ledger")
    without_company = pipeline.scalar("SELECT COUNT(*) FROM sales_ledger WHERE company_id IS NULL")
    assert ledgers > 0 and suppliers > 0
    if mode == "none":
        assert pipeline.scalar("SELECT COUNT(*) FROM company") == 0
        assert without_company == ledgers
    else:
        # Every account, suppliers and B2C included: each ledger got its company, division and contact person.
        assert without_company == 0
        assert pipeline.scalar("SELECT COUNT(*) FROM purchase_ledger WHERE company_id IS NULL") == 0
        assert pipeline.scalar("SELECT COUNT(*) FROM division") >= pipeline.scalar(
            "SELECT COUNT(*) FROM company"
        )
    # The secondary organisation only enriches (I13): nothing in the CRM points at its contacts.
    secondary = pipeline.connections["secondary"]
    secondary_ids = {
        r["xero_id"]
        for r in pipeline.rows("SELECT xero_id FROM val_contacts WHERE connection_id = :c", c=secondary)
    }
    assert secondary_ids, "the secondary organisation was read"
    primary_codes = {r["accounting_code"] for r in pipeline.rows("SELECT accounting_code FROM sales_ledger")}
    assert not primary_codes & secondary_ids
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_invoice") > 0
    runs = pipeline.rows("SELECT connection_id, status FROM sync_run WHERE kind = 'import'")
    assert {(r["connection_id"], r["status"]) for r in runs} == {
        (pipeline.connections["primary"], "success"),
        (secondary, "success"),
    }
