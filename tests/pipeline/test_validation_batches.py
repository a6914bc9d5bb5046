"""Validation as Great Expectations is meant to be used: one suite per entity derived from the registry, run over a
batch (the run's frame), failures mapped back to their records by GX's `unexpected_index_list`; records identical to
their mirrored valid version are not re-checked. The payload is written once (staging), and an older database's
redundant copies are dropped by `migrate`."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect, text

from tests.chaos.bad_input import Fuzzed, new_run_id, prepare_crm, run_pages, templates
from xero_crm_sync import migrate, staging, validation
from xero_crm_sync.entities import ENTITIES, entity


@pytest.fixture(scope="module")
def crm(crm_url_module: str) -> Iterator[tuple[Any, int]]:
    yield prepare_crm(crm_url_module)


def test_validation_reads_back_every_column_an_expectation_checks_and_no_other():
    # What the frame holds besides the entity's checked columns: the staged row's identity and parse errors, and
    # for documents what `_add_document_checks` computes from the totals and the lines.
    computed = {"stg_id", "xero_id", "parse_errors", "totals_gap", "lines_gap", "unknown_codes"}
    for spec in ENTITIES:
        checked = set(validation.checked_columns(spec))
        referenced = set()
        for check in validation.build_checks(spec):
            kwargs = check.expectation.configuration.kwargs
            referenced |= {kwargs["column"]} if "column" in kwargs else set(kwargs.get("column_list", ()))
        assert referenced <= checked | computed, spec.name
        # Nothing read back for nothing: each checked column is an expectation's or a document total's.
        totals = (
            {*validation.DOCUMENT_TOTALS, "line_amount_types"} if validation.document_lines(spec) else set()
        )
        assert checked <= referenced | totals | {spec.key_column.name}, spec.name
    assert len(validation.checked_columns(entity("contacts"))) < len(entity("contacts").columns) / 4


def test_the_frames_great_expectations_sees_hold_only_the_checked_columns(crm, monkeypatch):
    engine, connection_id = crm
    frames: dict[str, set[str]] = {}
    real = validation.evaluate

    def seen(spec, frame):
        frames.setdefault(spec.name, set(frame.columns))
        return real(spec, frame)

    monkeypatch.setattr(validation, "evaluate", seen)
    records = {name: [Fuzzed(copy.deepcopy(templates()[name][0]))] for name in ("contacts", "invoices")}
    run_pages(engine, connection_id, new_run_id(), records)
    for name in ("contacts", "invoices"):
        spec = entity(name)
        typed = frames[name] & {c.name for c in spec.columns}
        assert typed == set(validation.checked_columns(spec)), name
    assert "email_address" not in frames["contacts"] and "reference" not in frames["invoices"]


def test_every_enumeration_and_required_field_of_the_registry_is_an_expectation():
    for spec in ENTITIES:
        configs = {
            (c.expectation.expectation_type, json.dumps(c.expectation.configuration.kwargs, sort_keys=True))
            for c in validation.build_checks(spec)
        }
        for column in spec.columns:
            if column.allowed:
                kwargs = {"column": column.name, "value_set": list(column.allowed)}
                assert ("expect_column_values_to_be_in_set", json.dumps(kwargs, sort_keys=True)) in configs
            if column.required and column.name != spec.key_column.name:
                kwargs = {"column": column.name}
                assert ("expect_column_values_to_not_be_null", json.dumps(kwargs, sort_keys=True)) in configs
    assert {e.name for e in ENTITIES if validation.document_lines(e)} == {
        "invoices",
        "credit_notes",
        "purchase_orders",
    }


def test_the_suite_and_its_batch_definition_are_built_once_per_process():
    assert validation.suite_for(entity("contacts")) is validation.suite_for(entity("contacts"))


def _contact(i: int, **overrides: Any) -> dict[str, Any]:
    record = copy.deepcopy(templates()["contacts"][i])
    record.update(overrides)
    return record


def test_only_new_versions_go_through_the_suite_and_failures_keep_their_own_reasons(crm, monkeypatch):
    engine, connection_id = crm
    a, b, c = (_contact(i) for i in range(3))
    first = run_pages(engine, connection_id, new_run_id(), {"contacts": [Fuzzed(a), Fuzzed(b), Fuzzed(c)]})

    batches: list[int] = []
    real = validation.evaluate
    monkeypatch.setattr(validation, "evaluate", lambda e, frame: batches.append(len(frame)) or real(e, frame))
    # Next run: a unchanged, b with a status Xero does not have, c renamed.
    run_id = new_run_id()
    bogus = {**b, "ContactStatus": "BOGUS"}
    renamed = {**c, "Name": f"{c['Name']} (renamed)"}
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM val_contacts")).scalar_one()
    extracted = run_pages(
        engine, connection_id, run_id, {"contacts": [Fuzzed(a), Fuzzed(bogus), Fuzzed(renamed)]}
    )
    assert first["run_id"] != extracted["run_id"]
    assert batches == [2]  # one batch of the two new versions; the unchanged record skipped the suite
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT xero_id, validation_status FROM stg_contacts WHERE run_id = :r"), {"r": run_id}
            ).all()
        )
        reasons = dict(
            conn.execute(
                text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
            ).all()
        )
        names = dict(conn.execute(text("SELECT xero_id, name FROM val_contacts")).all())
        after = conn.execute(text("SELECT COUNT(*) FROM val_contacts")).scalar_one()
    ids = [x["ContactID"].lower() for x in (a, b, c)]
    assert statuses == {ids[0]: "valid", ids[1]: "quarantined", ids[2]: "valid"}
    assert list(reasons) == [ids[1]]
    assert "contact_status 'BOGUS' is not one of ACTIVE, ARCHIVED, GDPRREQUEST" in str(reasons[ids[1]])
    assert names[ids[2]] == renamed["Name"] and after == before


def test_a_run_with_nothing_new_never_runs_the_suite(crm, monkeypatch):
    engine, connection_id = crm
    records = [Fuzzed(_contact(i)) for i in (4, 5)]
    run_pages(engine, connection_id, new_run_id(), {"contacts": records})

    def refuse(*_args: Any) -> None:
        raise AssertionError("nothing changed: Great Expectations must not run")

    monkeypatch.setattr(validation, "evaluate", refuse)
    run_id = new_run_id()
    run_pages(engine, connection_id, run_id, {"contacts": records})
    with engine.connect() as conn:
        statuses = conn.execute(
            text("SELECT validation_status FROM stg_contacts WHERE run_id = :r"), {"r": run_id}
        ).scalars()
        assert set(statuses) == {"valid"}


def test_migrate_drops_the_payload_copies_an_older_database_kept(crm_url):
    migrate.migrate(crm_url)
    from xero_crm_sync import db

    with db.begin(crm_url) as conn:
        conn.exec_driver_sql("ALTER TABLE val_invoices ADD COLUMN raw TEXT")
        conn.exec_driver_sql("ALTER TABLE stg_invoice_lines ADD COLUMN raw TEXT")
    done = migrate.migrate(crm_url)
    assert {"drop column val_invoices.raw", "drop column stg_invoice_lines.raw"} <= set(done)
    with db.begin(crm_url) as conn:
        inspector = inspect(conn)
        for table in ("val_invoices", "stg_invoice_lines", "val_invoice_lines"):
            assert "raw" not in {c["name"] for c in inspector.get_columns(table)}
        assert "raw" in {c["name"] for c in inspector.get_columns("stg_invoices")}
        assert "ix_stg_invoice_lines_run" not in {
            i["name"] for i in inspector.get_indexes("stg_invoice_lines")
        }
    assert migrate.migrate(crm_url) == []
    assert set(staging.RETIRED_COLUMNS) >= {"val_contacts", "stg_contact_persons", "val_invoice_lines"}


def test_batches_bound_memory_and_never_split_a_records_copies(crm, monkeypatch):
    """Validation reads an entity in batches (BATCH_ROWS); two different versions of one invoice with the same
    UpdatedDateUTC are caught even when a batch would end between them, because a batch never splits one id's copies."""
    engine, connection_id = crm
    monkeypatch.setattr(validation, "BATCH_ROWS", 3)
    batches: list[int] = []
    real = validation.evaluate
    monkeypatch.setattr(validation, "evaluate", lambda e, frame: batches.append(len(frame)) or real(e, frame))
    template = templates()["invoices"][0]
    invoices = []
    for n in range(5):
        record = copy.deepcopy(template)
        record["InvoiceID"] = f"00000000-0000-4000-8000-0000000ba{n:03d}"
        invoices.append(record)
    twin = {**copy.deepcopy(invoices[2]), "Reference": "same UpdatedDateUTC, other content"}
    run_id = new_run_id()
    run_pages(engine, connection_id, run_id, {"invoices": [Fuzzed(r) for r in [*invoices, twin]]})
    with engine.connect() as conn:
        quarantined = conn.execute(
            text("SELECT xero_id FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
        ).scalars()
        assert sorted(quarantined) == [invoices[2]["InvoiceID"]] * 2
    assert len(batches) >= 2 and sum(batches) == 6


def test_a_documents_lines_are_summed_with_its_own_staged_row_across_pages(crm):
    """SubTotal must match the sum of the document's lines. Lines find their staged parent by its (page, position)
    in the run, so the same position on another page, or another copy of the invoice, never lends its lines."""
    engine, connection_id = crm
    template = templates()["invoices"][0]

    def invoice(n: int, *, lines_off_by: float = 0.0) -> dict[str, Any]:
        record = copy.deepcopy(template)
        record["InvoiceID"] = f"00000000-0000-4000-8000-00000005a{n:03d}"
        record["LineItems"][0]["LineAmount"] = round(record["LineItems"][0]["LineAmount"] + lines_off_by, 2)
        return record

    pages = [
        [invoice(1, lines_off_by=50.0), invoice(2)],  # page 1: a bad one at position 0
        [invoice(3), invoice(4, lines_off_by=-0.5)],  # page 2: a good one at position 0, a bad one at 1
    ]
    run_id = new_run_id()
    ctx = staging.RunContext(run_id, connection_id, staging.now_utc_naive())
    invoices = entity("invoices")
    with engine.begin() as conn:
        for number, records in enumerate(pages, start=1):
            staging.write_page(conn, invoices, staging.stage_page(invoices, records, ctx, page=number))
    with engine.begin() as conn:
        report = validation.validate_entity(conn, invoices, run_id, connection_id)
    with engine.connect() as conn:
        quarantined = dict(
            conn.execute(
                text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
            ).all()
        )
    assert sorted(quarantined) == [pages[0][0]["InvoiceID"], pages[1][1]["InvoiceID"]]
    assert all("does not match the sum of its lines" in str(r) for r in quarantined.values())
    assert "2024.73" in str(quarantined[pages[0][0]["InvoiceID"]])  # its own lines' sum, not another row's
    assert report.valid == 2
