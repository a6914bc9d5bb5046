"""Each quarantined record carries the reason it failed, not another check's (found by the bad-input campaign).

Great Expectations returns a suite's results grouped its own way, not in the order the expectations were given;
pairing them by position gave a record that appeared twice the reason "status 'AUTHORISED' is not one of ...,
AUTHORISED, ..." and the record with a bogus status the duplicate's reason.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.chaos.bad_input import Fuzzed, new_run_id, prepare_crm, run_pages, templates, wire_records


@pytest.fixture(scope="module")
def crm(crm_url_module: str) -> Iterator[tuple[Any, int]]:
    """One CRM per backend for the module; each test is its own run, with its own record ids."""
    yield prepare_crm(crm_url_module)


def test_each_quarantined_record_gets_its_own_reason(crm):
    engine, connection_id = crm
    invoice = copy.deepcopy(templates()["invoices"][0])
    invoice["InvoiceID"] = "00000000-0000-4000-8000-00000000d0b1"
    changed = {**copy.deepcopy(invoice), "Reference": "another version, same UpdatedDateUTC"}
    bogus = {**copy.deepcopy(invoice), "InvoiceID": "00000000-0000-4000-8000-0000000b0905", "Status": "BOGUS"}
    run_id = new_run_id()
    run_pages(engine, connection_id, run_id, {"invoices": [Fuzzed(invoice), Fuzzed(changed), Fuzzed(bogus)]})

    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r ORDER BY id"),
            {"r": run_id},
        ).all()
    reasons = {}
    for xero_id, why in rows:
        reasons.setdefault(xero_id, []).extend(json.loads(why) if isinstance(why, str) else why)
    assert reasons == {
        invoice["InvoiceID"]: [
            "InvoiceID appears twice in this run with different content and the same UpdatedDateUTC"
        ]
        * 2,
        bogus["InvoiceID"]: [
            "status 'BOGUS' is not one of DRAFT, SUBMITTED, AUTHORISED, PAID, VOIDED, DELETED"
        ],
    }


def test_a_record_without_its_id_is_quarantined_and_the_run_goes_on(crm):
    """pandas 3 reads a missing id as NaN, not None: it was taken for an id, and PostgreSQL refused to compare
    NaN with text, failing validation for the whole run (found by the bad-input campaign)."""
    engine, connection_id = crm
    good, no_id, no_name = (copy.deepcopy(templates()["contacts"][i]) for i in range(3))
    no_id.pop("ContactID")
    no_name.pop("Name")
    run_id = new_run_id()
    run_pages(engine, connection_id, run_id, {"contacts": [Fuzzed(good), Fuzzed(no_id), Fuzzed(no_name)]})

    with engine.connect() as conn:
        quarantined = conn.execute(
            text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r ORDER BY id"),
            {"r": run_id},
        ).all()
        mirrored = (
            conn.execute(text("SELECT xero_id FROM val_contacts WHERE last_run_id = :r"), {"r": run_id})
            .scalars()
            .all()
        )
    assert sorted(
        (x or "", "ContactID is missing" in r or "Name is missing" in r) for x, r in quarantined
    ) == [
        ("", True),
        (no_name["ContactID"], True),
    ]
    assert mirrored == [good["ContactID"]]


def test_a_record_that_is_not_an_object_is_quarantined_with_its_payload(crm):
    """A bare string in Xero's list: PostgreSQL hands its JSONB payload back as a Python str, which was taken for
    JSON text and refused on the way into quarantined_record, failing validation for the whole run."""
    engine, connection_id = crm
    good = copy.deepcopy(templates()["items"][0])
    good["ItemID"] = "00000000-0000-4000-8000-0000000900d1"
    run_id = new_run_id()
    run_pages(
        engine, connection_id, run_id, {"items": [Fuzzed("just a string\\ with a backslash"), Fuzzed(good)]}
    )

    with engine.connect() as conn:
        [(raw, reasons)] = conn.execute(
            text("SELECT CAST(raw AS TEXT), reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
        ).all()
        mirrored = conn.execute(
            text("SELECT xero_id FROM val_items WHERE last_run_id = :r"), {"r": run_id}
        ).scalars()
        assert list(mirrored) == [good["ItemID"]]
    assert json.loads(raw) == "just a string\\ with a backslash"
    assert "record: expected an object, got str" in str(reasons)


def test_an_unknown_account_code_or_tax_type_quarantines_its_invoice_but_a_deleted_items_code_does_not(crm):
    """Account codes and tax types must exist in the organisation; an item code need not: the accounts team may
    rename or delete an item that earlier invoices use, and those invoices must still load (a later void or
    payment would otherwise never reach the CRM)."""
    engine, connection_id = crm
    lists = {"accounts": wire_records("Accounts"), "tax_rates": wire_records("TaxRates")}
    run_pages(
        engine, connection_id, new_run_id(), {name: [Fuzzed(r) for r in rs] for name, rs in lists.items()}
    )

    template = templates()["invoices"][0]
    wrong_account, wrong_tax, renamed_item = (copy.deepcopy(template) for _ in range(3))
    wrong_account["InvoiceID"] = "00000000-0000-4000-8000-0000000acc01"
    wrong_account["LineItems"][0]["AccountCode"] = "NO-SUCH-ACCOUNT"
    wrong_tax["InvoiceID"] = "00000000-0000-4000-8000-0000000acc03"
    wrong_tax["LineItems"][0]["TaxType"] = "NO-SUCH-TAX"
    renamed_item["InvoiceID"] = "00000000-0000-4000-8000-0000000acc02"
    renamed_item["LineItems"][0]["ItemCode"] = "ITEM-RENAMED-SINCE"
    run_id = new_run_id()
    invoices = [Fuzzed(wrong_account), Fuzzed(wrong_tax), Fuzzed(renamed_item)]
    run_pages(engine, connection_id, run_id, {"invoices": invoices})

    with engine.connect() as conn:
        quarantined = conn.execute(
            text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
        ).all()
        loaded = conn.execute(
            text(
                "SELECT l.item_code, l.product_id FROM sales_invoice i "
                "JOIN sales_invoice_line l ON l.sales_invoice_id = i.id WHERE i.accounting_code = :x"
            ),
            {"x": renamed_item["InvoiceID"]},
        ).all()
    reasons = {xero_id: str(r) for xero_id, r in quarantined}
    assert sorted(reasons) == [wrong_account["InvoiceID"], wrong_tax["InvoiceID"]]
    assert "unknown codes on its lines: account NO-SUCH-ACCOUNT" in reasons[wrong_account["InvoiceID"]]
    assert "unknown codes on its lines: tax type NO-SUCH-TAX" in reasons[wrong_tax["InvoiceID"]]
    assert ("ITEM-RENAMED-SINCE", None) in [tuple(row) for row in loaded]
