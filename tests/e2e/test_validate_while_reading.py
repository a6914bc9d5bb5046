"""Issue 13: extract validates each entity as soon as it is read, while the next entity is being read, and the
validate step passes those verdicts on instead of validating again; the load steps whose entities are all read
and validated commit while the rest is read (load ahead), and the load step runs only the others."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.state import crm_state
from tests.e2e.conftest import build_pipeline
from xero_crm_sync import crashpoints, import_run, transform


def test_each_entity_is_validated_before_the_next_one_is_staged(make_sandbox, crm_db):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    with crashpoints.observe() as seen:
        extracted = import_run.extract(pipeline.engine, pipeline.store, info, "early-validation", full=True)
    result = extracted.as_dict()
    entities = result["entities"]
    # One validation right after each entity's last page: extract.entity, validate.entity, extract.entity, ...
    boundaries = [p for p in seen if p in ("extract.entity", "validate.entity")]
    assert boundaries == ["extract.entity", "validate.entity"] * len(entities)
    assert all(
        item["validated"]["checked"] == item["records"] for item in entities.values() if item["records"]
    )
    mirrored = pipeline.scalar("SELECT COUNT(*) FROM val_contacts WHERE last_run_id = 'early-validation'")
    assert mirrored == entities["contacts"]["records"]

    with crashpoints.observe() as seen:
        reports = import_run.validate(pipeline.engine, result)
    assert "validate.entity" not in seen  # nothing validated twice
    assert reports["entities"]["contacts"] == entities["contacts"]["validated"]


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
