"""Staging converts whatever Xero sends into typed rows plus the raw payload, and never raises."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from xero_crm_sync import db, migrate, staging, validated
from xero_crm_sync.entities import ENTITIES, entity
from xero_crm_sync.xero_values import parse_xero_datetime

CTX = staging.RunContext(run_id="run-1", connection_id=1, extracted_at=datetime(2026, 11, 21, 12, 0, 0))


def invoice(**overrides):
    record = {
        "InvoiceID": "9B7C5F1E-0000-4000-8000-000000000001",
        "Type": "ACCREC",
        "Contact": {"ContactID": "c-1"},
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "Date": "/Date(1573689600000+0000)/",
        "DueDate": "2019-12-14T00:00:00",
        "UpdatedDateUTC": "/Date(1573755038314+0000)/",
        "SubTotal": 30.0,
        "TotalTax": 4.5,
        "Total": 34.5,
        "LineItems": [
            {
                "Description": "Widget",
                "Quantity": 2,
                "UnitAmount": 10,
                "LineAmount": 20,
                "AccountCode": "200",
            },
            {
                "Description": "Gadget",
                "Quantity": 1,
                "UnitAmount": 10,
                "LineAmount": 10,
                "AccountCode": "200",
            },
        ],
    }
    record.update(overrides)
    return record


def test_typed_columns_lines_and_raw_payload():
    page = staging.stage_page(entity("invoices"), [invoice()], CTX)
    (row,) = page.row_dicts()
    assert row["xero_id"] == "9b7c5f1e-0000-4000-8000-000000000001"  # GUIDs compared lower-case
    assert row["date"].isoformat() == "2019-11-14"
    assert row["due_date"].isoformat() == "2019-12-14"
    assert row["updated_date_utc"] == datetime(2019, 11, 14, 18, 10, 38, 314000)
    assert row["total"] == Decimal("34.5")
    assert row["parse_errors"] is None
    assert json.loads(row["raw"])["Contact"] == {"ContactID": "c-1"}
    lines = page.line_dicts("invoice_lines")
    assert [(ln["line_no"], ln["description"], ln["quantity"]) for ln in lines] == [
        (1, "Widget", Decimal("2")),
        (2, "Gadget", Decimal("1")),
    ]
    assert {ln["parent_id"] for ln in lines} == {row["xero_id"]}
    # The payload is written once, on the invoice's row: its lines carry typed columns only.
    assert all("raw" not in ln for ln in lines)
    assert len(row["raw_digest"]) == 32
    assert page.max_updated == row["updated_date_utc"]


def test_bad_values_become_reasons_not_crashes():
    page = staging.stage_page(
        entity("invoices"),
        [invoice(Total="lots", Date="next tuesday", LineItems=[{"Quantity": True}]), "not an object"],
        CTX,
    )
    first, second = page.row_dicts()
    errors = json.loads(first["parse_errors"])
    assert "total: not a number: 'lots'" in errors
    assert "date: not a date: 'next tuesday'" in errors
    assert "LineItems[1].quantity: expected a number, got a boolean" in errors
    assert first["total"] is None
    assert json.loads(second["parse_errors"]) == ["record: expected an object, got str"]


def test_json_columns_are_compact_with_sorted_keys_and_a_lone_surrogate_is_a_reason():
    tracking = [{"Option": "North", "Name": "Région", "TrackingCategoryID": "t-1"}]
    unpaired = [{"Name": "bad \ud800 escape"}]
    page = staging.stage_page(
        entity("invoices"),
        [invoice(LineItems=[{"Tracking": tracking}, {"Tracking": unpaired}, {"Tracking": []}])],
        CTX,
    )
    first, second, third = page.line_dicts("invoice_lines")
    assert first["tracking"] == '[{"Name":"Région","Option":"North","TrackingCategoryID":"t-1"}]'
    assert third["tracking"] == "[]"
    assert second["tracking"] is None
    assert json.loads(page.row_dicts()[0]["parse_errors"]) == [
        "LineItems[2].tracking: text contains an unpaired surrogate (invalid UTF-16 escape)"
    ]


def test_staged_rows_follow_the_written_columns():
    """stage_page builds each row as a list in the order `write_rows` writes it (fix 28): every entity's and line
    table's layout is its staging table's columns, and every value lands under its own name."""
    head = ["run_id", "connection_id", "extracted_at"]
    for spec in ENTITIES:
        tables = staging.TABLES[spec.name]
        page = staging.stage_page(spec, [{}, "not an object"], CTX)
        assert staging.written_columns(tables.staging) == [
            *head,
            *("page", "position", "xero_id"),
            *(c.name for c in spec.columns),
            *("parse_errors", "raw", "raw_digest"),
        ]
        assert list(page.columns) == staging.written_columns(tables.staging)
        assert [len(row) for row in page.rows] == [len(page.columns)] * 2
        for line in spec.lines:
            assert staging.written_columns(tables.line_staging[line.name]) == [
                *head,
                *("parent_id", "parent_page", "parent_position", "line_no"),
                *(c.name for c in line.columns),
                "parse_errors",
            ]
            assert list(page.line_columns[line.name]) == staging.written_columns(
                tables.line_staging[line.name]
            )
    page = staging.stage_page(entity("invoices"), [invoice()], CTX, page=7)
    (row,) = page.row_dicts()
    assert (row["run_id"], row["page"], row["position"], row["status"]) == ("run-1", 7, 0, "AUTHORISED")
    assert row["invoice_id"] == row["xero_id"]
    (line, _) = page.line_dicts("invoice_lines")
    assert (line["parent_id"], line["parent_page"], line["parent_position"]) == (row["xero_id"], 7, 0)
    assert all(len(r) == len(page.line_columns["invoice_lines"]) for r in page.lines["invoice_lines"])


def test_dates_in_every_xero_format():
    assert parse_xero_datetime("/Date(1573755038314+0000)/") == parse_xero_datetime(
        "2019-11-14T18:10:38.314Z"
    )
    assert parse_xero_datetime("/Date(1573755038314)/").year == 2019
    assert parse_xero_datetime("2019-11-14T18:10:38+13:00").hour == 5


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ENTITIES),
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "ContactID",
                    "Name",
                    "InvoiceID",
                    "UpdatedDateUTC",
                    "Total",
                    "LineItems",
                    "Addresses",
                    "Phones",
                    "Contact",
                    "Date",
                    "Status",
                    "SalesDetails",
                    "ContactStatus",
                    "Code",
                    "TaxType",
                ]
            ),
            json_values,
            max_size=8,
        )
        | json_values,
        max_size=4,
    ),
)
def test_any_payload_stages_without_raising(entity_spec, records):
    page = staging.stage_page(entity_spec, records, CTX)
    assert len(page.rows) == len(records)
    for row in page.row_dicts():
        json.loads(row["raw"])  # the payload is kept, as valid JSON


def test_promote_keeps_the_newest_version_and_its_lines(crm_url):
    migrate.migrate(crm_url)
    spec = entity("invoices")
    older = invoice(Status="AUTHORISED", UpdatedDateUTC="/Date(1573755038314+0000)/")
    newer = invoice(
        Status="PAID",
        UpdatedDateUTC="/Date(1573755099000+0000)/",
        LineItems=[{"Description": "Only line", "LineAmount": 30}],
    )
    with db.begin(crm_url) as conn:
        # The same invoice staged twice in one run (it changed while we paged), newer first.
        staging.write_page(conn, spec, staging.stage_page(spec, [newer], CTX, page=1))
        staging.write_page(conn, spec, staging.stage_page(spec, [older], CTX, page=2))
        conn.execute(text("UPDATE stg_invoices SET validation_status = 'valid'"))
        validated.promote(conn, spec, "run-1", 1)
        validated.promote(conn, spec, "run-1", 1)  # a retried task changes nothing
        status = conn.execute(text("SELECT status FROM val_invoices")).scalars().all()
        lines = conn.execute(text("SELECT description FROM val_invoice_lines")).scalars().all()
    assert status == ["PAID"]
    assert lines == ["Only line"]


def test_an_older_run_never_overwrites_a_newer_mirror(crm_url):
    migrate.migrate(crm_url)
    spec = entity("invoices")
    newer_run = staging.RunContext("run-2", 1, CTX.extracted_at)
    with db.begin(crm_url) as conn:
        staging.write_page(
            conn,
            spec,
            staging.stage_page(
                spec,
                [
                    invoice(
                        Status="PAID",
                        UpdatedDateUTC="/Date(1573755099000+0000)/",
                        LineItems=[{"Description": "Newer line", "LineAmount": 30}],
                    )
                ],
                newer_run,
            ),
        )
        staging.write_page(conn, spec, staging.stage_page(spec, [invoice()], CTX))
        conn.execute(text("UPDATE stg_invoices SET validation_status = 'valid'"))
        validated.promote(conn, spec, "run-2", 1)
        validated.promote(conn, spec, "run-1", 1)  # a late rerun of the older run
        assert conn.execute(text("SELECT status, last_run_id FROM val_invoices")).one() == ("PAID", "run-2")
        # Its lines stay the newer version's: the older run promoted no parent, so it replaces no lines.
        assert conn.execute(text("SELECT description FROM val_invoice_lines")).scalars().all() == [
            "Newer line"
        ]


def test_a_rerun_that_stages_another_record_promotes_only_that_record(crm_url):
    """A rerun of a run (a retried task) clears what its first attempt staged, but not the staged rows the mirror
    took from it: their raw payload is the only copy of that version. The rerun numbers its pages after them, so
    each record is promoted with its own lines, and the first record's mirror row still finds its payload."""
    from xero_crm_sync import import_run

    migrate.migrate(crm_url)
    spec = entity("invoices")
    first = invoice(LineItems=[{"Description": "First's line", "LineAmount": 30}])
    other = invoice(
        InvoiceID="9B7C5F1E-0000-4000-8000-000000000009",
        LineItems=[{"Description": "Other's line", "LineAmount": 30}],
    )
    quarantined = invoice(InvoiceID="9B7C5F1E-0000-4000-8000-000000000008", Reference="held back")
    with db.begin(crm_url) as conn:
        kept = []
        for records in ([first, quarantined], [other]):  # the first attempt, then the rerun
            kept.append(import_run.clear_run(conn, spec, "run-1", 1))
            staging.write_page(conn, spec, staging.stage_page(spec, records, CTX, page=kept[-1] + 1))
            conn.execute(
                text("UPDATE stg_invoices SET validation_status = 'valid' WHERE xero_id NOT LIKE '%8'")
            )
            conn.execute(
                text("UPDATE stg_invoices SET validation_status = 'quarantined' WHERE xero_id LIKE '%8'")
            )
            validated.promote(conn, spec, "run-1", 1)
        lines = conn.execute(
            text("SELECT parent_id, description FROM val_invoice_lines ORDER BY parent_id")
        ).all()
        # What analysts read (docs/CRM_SCHEMA.md): each mirrored record's staged payload.
        payloads = conn.execute(
            text(
                "SELECT v.xero_id, CAST(s.raw AS TEXT), s.page FROM val_invoices v JOIN stg_invoices s "
                "ON s.stg_id = v.stg_id AND s.xero_id = v.xero_id ORDER BY v.xero_id"
            )
        ).all()
        staged = conn.execute(text("SELECT xero_id FROM stg_invoices ORDER BY xero_id")).scalars().all()
        staged_lines = conn.execute(text("SELECT COUNT(*) FROM stg_invoice_lines")).scalar_one()
    assert kept == [0, 1]  # nothing to keep at first; then the first attempt's page 1
    assert [tuple(row) for row in lines] == [
        (first["InvoiceID"].lower(), "First's line"),
        (other["InvoiceID"].lower(), "Other's line"),
    ]
    assert [
        (xero_id, json.loads(raw)["LineItems"][0]["Description"], page) for xero_id, raw, page in payloads
    ] == [
        (first["InvoiceID"].lower(), "First's line", 1),
        (other["InvoiceID"].lower(), "Other's line", 2),
    ]
    # The quarantined record of the first attempt was not mirrored: cleared with its lines, as before.
    assert staged == [first["InvoiceID"].lower(), other["InvoiceID"].lower()]
    assert staged_lines == 2


def test_the_bulk_writers_store_exactly_what_sqlalchemy_core_stores(crm_url):
    """write_rows bypasses SQLAlchemy's per-row parameter handling (the driver's executemany on SQLite, COPY on
    PostgreSQL) for speed; every typed value must read back as a Core INSERT of the same row stores it."""
    from sqlalchemy import insert

    migrate.migrate(crm_url)
    spec = entity("invoices")
    records = [
        invoice(),
        invoice(
            InvoiceID="9B7C5F1E-0000-4000-8000-000000000002", Total=1e15, SubTotal=-0.005, Reference=True
        ),
        invoice(InvoiceID="9B7C5F1E-0000-4000-8000-000000000003", Reference="naïve \x00 text", Date="bad"),
        invoice(
            InvoiceID="9B7C5F1E-0000-4000-8000-000000000004", LineItems=[{"Quantity": "2.5", "Tracking": []}]
        ),
        "not an object",
    ]
    tables = staging.TABLES[spec.name]
    pairs = ((tables.staging, "rows"), (tables.line_staging["invoice_lines"], "lines"))
    with db.begin(crm_url) as conn:
        staging.write_page(conn, spec, staging.stage_page(spec, records, CTX))
        core = staging.stage_page(spec, records, staging.RunContext("run-core", 1, CTX.extracted_at))
        for table, part in pairs:
            # Core binds a JSON or JSONB column's value, where COPY (and SQLite) take the JSON text itself.
            json_columns = [
                c.name
                for c in table.columns
                if c.type.dialect_impl(conn.dialect).__visit_name__ in ("JSON", "JSONB")
            ]
            rows = core.row_dicts() if part == "rows" else core.line_dicts("invoice_lines")
            conn.execute(
                insert(table),
                [{**r, **{c: json.loads(r[c]) for c in json_columns if r[c] is not None}} for r in rows],
            )

        def stored(table_name: str, run_id: str) -> list[tuple]:
            rows = conn.execute(
                text(f"SELECT * FROM {table_name} WHERE run_id = :r ORDER BY stg_id"), {"r": run_id}
            )
            return [
                tuple(v for k, v in row._mapping.items() if k not in ("stg_id", "run_id")) for row in rows
            ]

        for table, _ in pairs:
            assert stored(table.name, "run-1") == stored(table.name, "run-core") != []


def _page(number: int) -> staging.StagedPage:
    spec = entity("invoices")
    record = invoice(InvoiceID=f"9B7C5F1E-0000-4000-8000-00000000010{number}")
    return staging.stage_page(spec, [record], CTX, page=number)


def test_staged_pages_are_committed_together_on_sqlite_and_kept_when_the_read_stops(crm_url, monkeypatch):
    """Fix 22: on SQLite, pages are committed together while the next page is already read, until they hold
    enough rows (each page here: an invoice and its two lines, 3 rows); a page whose successor is not here yet is
    committed at once (the write lock is never held while Xero is waited for); on PostgreSQL each page at once.
    What an analyst's connection sees follows the commits; a read that stops (Xero's daily limit) keeps what it
    wrote; a page the database refuses takes the pages pending with it."""
    migrate.migrate(crm_url)
    engine = db.get_engine(crm_url)
    spec = entity("invoices")
    monkeypatch.setattr(staging, "SQLITE_ROWS_PER_COMMIT", 5)
    per_page = engine.dialect.name == "postgresql"

    def visible() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM stg_invoices WHERE run_id = 'run-1'")).scalar_one()

    class DailyLimit(Exception):
        pass

    with pytest.raises(DailyLimit), staging.PageWriter(engine) as writer:
        writer.write(spec, _page(1), next_page_ready=True)
        assert visible() == (1 if per_page else 0)  # 3 rows pending of 5
        writer.write(spec, _page(2), next_page_ready=True)
        assert visible() == 2  # 6 rows: committed together
        writer.write(spec, _page(3), next_page_ready=False)
        assert visible() == 3  # nothing read ahead: committed at once
        writer.write(spec, _page(4), next_page_ready=True)
        assert visible() == (4 if per_page else 3)
        raise DailyLimit("the read stops here")
    assert visible() == 4  # what was written is kept

    refused = _page(6)
    # The database refuses it (NOT NULL): the driver's own error.
    refused.rows[0][refused.columns.index("raw")] = None
    with pytest.raises(Exception, match="(?i)null"), staging.PageWriter(engine) as writer:
        writer.write(spec, _page(5), next_page_ready=True)
        writer.write(spec, refused, next_page_ready=True)
    assert visible() == (5 if per_page else 4)  # SQLite: page 5, pending with the refused one, is rolled back
    lines = "SELECT COUNT(*) FROM stg_invoice_lines WHERE run_id = 'run-1'"
    with engine.connect() as conn:
        assert conn.execute(text(lines)).scalar_one() == 2 * visible()
