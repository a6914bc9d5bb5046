"""Issue 13: extract validates each entity as soon as it is read, while the next entity is being read, and the
validate step passes those verdicts on instead of validating again; the load steps whose entities are all read
and validated commit while the rest is read (load ahead), and the load step runs only the others."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.chaos.state import crm_state
from tests.e2e.conftest import build_pipeline
from xero_crm_sync import crashpoints, import_run, transform, validation
from xero_crm_sync.entities import entity


def _order_of_validation(
    monkeypatch: pytest.MonkeyPatch, delay: dict[str, float] | None = None
) -> list[tuple]:
    """Note each entity's checks (when they start) and the commit of its verdicts (when it is done, with the
    thread that wrote them), beside the crash points passed; `delay`: seconds to hold an entity's verdicts back."""
    events: list[tuple] = []
    check, record = import_run.check_entity, import_run.record_entity

    def checking(engine, entity, *args, **kwargs):
        events.append(("check", entity.name))
        return check(engine, entity, *args, **kwargs)

    def recording(engine, entity, *args, **kwargs):
        time.sleep((delay or {}).get(entity.name, 0))
        report = record(engine, entity, *args, **kwargs)
        events.append(("recorded", entity.name, threading.current_thread().name))
        return report

    monkeypatch.setattr(import_run, "check_entity", checking)
    monkeypatch.setattr(import_run, "record_entity", recording)
    return events


def test_each_entity_is_checked_before_the_next_one_is_staged(make_sandbox, crm_db, monkeypatch):
    """Each entity's Great Expectations checks run right after its last page; its verdicts and promotion commit
    then too on SQLite (one writer), and on PostgreSQL on the load-ahead worker, in order, while the next entity is
    staged. By the end of extract every entity's verdicts have committed."""
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    events = _order_of_validation(monkeypatch)
    with crashpoints.observe() as seen:
        extracted = import_run.extract(pipeline.engine, pipeline.store, info, "early-validation", full=True)
    result = extracted.as_dict()
    entities = result["entities"]
    names = list(entities)
    # Checked right after each entity's last page: extract.entity, check, extract.entity, check, ...
    marks = iter(e[1] for e in events if e[0] == "check")
    boundaries = [
        f"check {next(marks)}" if p == "validate.checked" else p
        for p in seen
        if p in ("extract.entity", "validate.checked")
    ]
    assert boundaries == [x for name in names for x in ("extract.entity", f"check {name}")]
    recorded = [e for e in events if e[0] == "recorded"]
    assert [e[1] for e in recorded] == names  # each entity's verdicts once, in order
    for name in names:  # never before its checks
        assert events.index(("check", name)) < events.index(next(e for e in recorded if e[1] == name))
    postgres = pipeline.engine.dialect.name == "postgresql"
    assert {e[2].startswith("load-ahead") for e in recorded} == {postgres}
    assert all(
        item["validated"]["checked"] == item["records"] for item in entities.values() if item["records"]
    )
    mirrored = pipeline.scalar("SELECT COUNT(*) FROM val_contacts WHERE last_run_id = 'early-validation'")
    assert mirrored == entities["contacts"]["records"]

    with crashpoints.observe() as seen:
        reports = import_run.validate(pipeline.engine, result)
    assert "validate.entity" not in seen  # nothing validated twice
    assert reports["entities"]["contacts"] == entities["contacts"]["validated"]


def test_a_documents_checks_wait_for_the_accounts_and_tax_rates_verdicts(make_sandbox, crm_db, monkeypatch):
    """A document's lines are checked against the accounts and tax rates as mirrored: on PostgreSQL, where
    verdicts commit on the load-ahead worker, the invoices' checks wait until those two have committed (an empty
    mirror reads as "not read yet" and would let an unknown code through)."""
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    events = _order_of_validation(monkeypatch, delay={"accounts": 3.0, "tax_rates": 3.0})
    import_run.extract(pipeline.engine, pipeline.store, info, "documents-wait", full=True)
    recorded = {e[1]: events.index(e) for e in events if e[0] == "recorded"}
    for documents in ("invoices", "credit_notes", "purchase_orders"):
        assert validation.mirrors_read(entity(documents)) == {"accounts", "tax_rates"}
        checked = events.index(("check", documents))
        assert checked > recorded["accounts"] and checked > recorded["tax_rates"], (documents, events)


def _import(pipeline, run_id: str) -> dict:
    info = pipeline.store.get(pipeline.connections["primary"])
    extracted = import_run.extract(pipeline.engine, pipeline.store, info, run_id, full=True).as_dict()
    import_run.validate(pipeline.engine, extracted)
    return import_run.load(pipeline.engine, extracted, full=True)


def _history(pipeline, run_id: str) -> Counter:
    rows = pipeline.rows(
        "SELECT record_type, record_id, operation FROM sync_history WHERE run_id = :r AND direction = 'import'",
        r=run_id,
    )
    return Counter((r["record_type"], r["record_id"], r["operation"]) for r in rows)


def test_the_load_steps_of_entities_already_read_commit_while_the_payments_are_read(
    make_sandbox, crm_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    with crashpoints.observe() as seen:
        extracted = import_run.extract(pipeline.engine, pipeline.store, info, "ahead", full=True).as_dict()
    # Committed during extract (on PostgreSQL in a thread, while the payments are staged), with every step up to
    # the purchase order lines; on PostgreSQL the payments' steps too, after the last entity, beside the document
    # lines (tests/e2e/test_load_beside.py).
    assert "load_ahead.committed" in seen
    ahead = [name for name in extracted["loaded_ahead"] if name != transform.HISTORY]
    assert "sales_invoice_lines" in ahead and "purchase_order_lines" in ahead
    postgres = pipeline.engine.dialect.name == "postgresql"
    assert ("payments" in ahead and "payment_status" in ahead) is postgres
    # What a user sees in between: the invoices are in the CRM (no payment yet on SQLite), and no watermark has
    # moved (a crash now re-reads everything; the steps rewrite nothing).
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_invoice") > 0
    assert (pipeline.scalar("SELECT COUNT(*) FROM payment") > 0) is postgres
    assert pipeline.scalar("SELECT COUNT(*) FROM sync_watermark WHERE connection_id = :c", c=info.id) == 0

    import_run.validate(pipeline.engine, extracted)
    with crashpoints.observe() as seen:
        loaded = import_run.load(pipeline.engine, extracted, full=True)
    # The load ran only the other steps (and the history), and reports every step once, in order.
    assert seen.count("load.step") == len(transform.PRIMARY_STEPS) - len(ahead)
    assert list(loaded["counts"]) == [s.name for s in transform.PRIMARY_STEPS]
    assert pipeline.scalar("SELECT COUNT(*) FROM payment") == loaded["counts"]["payments"] > 0
    # The echo rule's adoption counted as it changed (its statement begins with WITH: tests/pipeline/test_sql_row_counts.py).
    adopted = "SELECT COUNT(*) FROM sales_ledger WHERE last_export_hash IS NOT NULL"
    assert pipeline.scalar(adopted) == loaded["counts"]["adopt_imported_customers"] > 0
    assert pipeline.scalar("SELECT COUNT(*) FROM sync_watermark WHERE connection_id = :c", c=info.id) > 0
    history = _history(pipeline, "ahead")
    assert sum(history.values()) == loaded["counts"]["history"]
    assert max(history.values()) == 1  # one history row per record and run

    # The same CRM and the same history as a load in one piece (no load ahead) of the same organisation.
    whole = build_pipeline(f"sqlite:///{tmp_path / 'whole.db'}", sandbox)
    monkeypatch.setattr(import_run, "load_ahead", lambda *args, **kwargs: None)
    _import(whole, "whole")
    assert crm_state(pipeline.engine, {}) == crm_state(whole.engine, {})
    assert Counter((t, op) for t, _, op in _history(pipeline, "ahead")) == Counter(
        (t, op) for t, _, op in _history(whole, "whole")
    )


def test_an_extract_retried_after_its_entities_were_mirrored_keeps_their_payloads(
    make_sandbox, crm_db, tmp_path: Path
):
    """Extract validates and mirrors each entity as it goes, so a retried extract (same run id: Airflow's retry)
    finds the mirror pointing at its first attempt's staged rows. It keeps them (their raw payload is the only
    copy of that version), stages its own pages after theirs, and ends with the CRM a single attempt gives."""
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    first = import_run.extract(pipeline.engine, pipeline.store, info, "retried", full=True).as_dict()
    pages = first["entities"]["invoices"]["pages"]
    assert pipeline.scalar("SELECT COUNT(*) FROM val_invoices WHERE last_run_id = 'retried'") > 0
    extracted = import_run.extract(pipeline.engine, pipeline.store, info, "retried", full=True).as_dict()
    import_run.validate(pipeline.engine, extracted)
    import_run.load(pipeline.engine, extracted, full=True)

    # Nothing held back (a line joined to another attempt's parent would break its document's sums) ...
    assert pipeline.scalar("SELECT COUNT(*) FROM quarantined_record WHERE run_id = 'retried'") == 0
    # ... every mirrored record finds its own payload ...
    orphans = pipeline.scalar(
        "SELECT COUNT(*) FROM val_invoices v LEFT JOIN stg_invoices s ON s.stg_id = v.stg_id "
        "AND s.xero_id = v.xero_id WHERE s.stg_id IS NULL"
    )
    assert orphans == 0
    # ... the retry's pages come after the first attempt's, and each line belongs to one staged parent.
    assert pipeline.scalar("SELECT MAX(page) FROM stg_invoices WHERE run_id = 'retried'") == 2 * pages
    assert pipeline.scalar("SELECT COUNT(*) FROM val_invoice_lines") == pipeline.scalar(
        "SELECT COUNT(*) FROM stg_invoice_lines WHERE parent_page > :p", p=pages
    )
    once = build_pipeline(f"sqlite:///{tmp_path / 'once.db'}", sandbox)
    _import(once, "once")
    assert crm_state(pipeline.engine, {}) == crm_state(once.engine, {})


def test_only_staged_pages_commit_without_waiting_for_the_wal_flush(make_sandbox, crm_db):
    """Issue 13, fix 21: a staged page's commit does not wait for PostgreSQL's WAL flush. That is safe only
    because such a transaction holds nothing but the page (the validation and load commits after it flush it
    too): no other statement may ever share it, and the setting must not outlive it."""
    from sqlalchemy import event

    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    statements: dict[int, list[str]] = {}
    committed: list[list[str]] = []

    def executed(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.setdefault(id(conn), []).append(" ".join(statement.split()))

    def commit(conn) -> None:
        committed.append(statements.pop(id(conn), []))

    event.listen(pipeline.engine, "before_cursor_execute", executed)
    event.listen(pipeline.engine, "commit", commit)
    try:
        extracted = import_run.extract(
            pipeline.engine, pipeline.store, info, "async-pages", full=True
        ).as_dict()
    finally:
        event.remove(pipeline.engine, "before_cursor_execute", executed)
        event.remove(pipeline.engine, "commit", commit)
    unflushed = [t for t in committed if any("synchronous_commit" in s for s in t)]
    pages = sum(item["pages"] for item in extracted["entities"].values())
    staged = pipeline.scalar("SELECT COUNT(*) FROM stg_invoices WHERE run_id = 'async-pages'")
    assert pages >= len(extracted["entities"]) and staged > 0
    if pipeline.engine.dialect.name == "postgresql":
        # One per page, holding only the page's rows (COPY goes to the driver directly, below these statements).
        assert unflushed == [["SET LOCAL synchronous_commit = off"]] * pages
        with pipeline.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    else:
        assert unflushed == []  # SQLite's commits are what its own settings make them


def test_a_crm_write_is_not_held_back_while_great_expectations_runs(make_sandbox, crm_db, monkeypatch):
    """Validation reads and checks with no write pending, then writes its verdicts and promotion in one short
    transaction: on SQLite, whose one write lock every writer shares, a sales user's edit (or the push) committed
    while an entity's suite runs goes through at once instead of waiting for the whole validation."""
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    written: list[str] = []
    evaluate = validation.evaluate

    def edit_then_evaluate(entity, frame):
        if entity.name == "contacts" and not written:
            with pipeline.engine.connect() as conn:
                sqlite = conn.dialect.name == "sqlite"
                if sqlite:  # a blocked edit fails within 0.2 s
                    conn.connection.driver_connection.execute("PRAGMA busy_timeout = 200")
                with conn.begin():
                    conn.execute(
                        text("UPDATE xero_connection SET tenant_name = tenant_name || '' WHERE id = :c"),
                        {"c": info.id},
                    )
                if sqlite:
                    conn.connection.driver_connection.execute("PRAGMA busy_timeout = 60000")
            written.append(entity.name)
        return evaluate(entity, frame)

    monkeypatch.setattr(validation, "evaluate", edit_then_evaluate)
    result = import_run.extract(pipeline.engine, pipeline.store, info, "edit-beside", full=True).as_dict()
    assert written == ["contacts"]
    assert (
        result["entities"]["contacts"]["validated"]["valid"] == result["entities"]["contacts"]["records"] > 0
    )
