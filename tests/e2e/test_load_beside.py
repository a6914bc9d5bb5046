"""Issue 13, on PostgreSQL: the document lines (800,000 invoice lines at 100,000 contacts, the load's largest step)
commit on a connection of their own, beside the later load steps, which load ahead after the last entity too;
SQLite (one writer at a time) keeps every step in line. Either way the CRM and its history are what a load in one
piece gives, and a step that fails beside the others is run again by the load step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from tests.chaos.state import crm_state
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.conftest import build_pipeline
from xero_crm_sync import db, import_run, transform

LINES = ["sales_invoice_lines", "credit_note_lines", "purchase_order_lines"]


def _import(pipeline, run_id: str) -> dict:
    info = pipeline.store.get(pipeline.connections["primary"])
    extracted = import_run.extract(pipeline.engine, pipeline.store, info, run_id, full=True).as_dict()
    import_run.validate(pipeline.engine, extracted)
    return {"extracted": extracted, "loaded": import_run.load(pipeline.engine, extracted, full=True)}


def test_the_document_lines_commit_on_their_own_beside_the_later_steps(make_sandbox, crm_db, tmp_path: Path):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    statements: dict[int, list[str]] = {}
    committed: list[set[str]] = []

    def executed(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.setdefault(id(conn), []).append(" ".join(statement.split()))

    def commit(conn) -> None:
        committed.append(set(db.tables_written("\n".join(statements.pop(id(conn), [])))))

    event.listen(pipeline.engine, "before_cursor_execute", executed)
    event.listen(pipeline.engine, "commit", commit)
    try:
        run = _import(pipeline, "beside")
    finally:
        event.remove(pipeline.engine, "before_cursor_execute", executed)
        event.remove(pipeline.engine, "commit", commit)

    lines_commits = [w for w in committed if "sales_invoice_line" in w]
    assert len(lines_commits) == 1
    loaded_ahead = [name for name in run["extracted"]["loaded_ahead"] if name != transform.HISTORY]
    if pipeline.engine.dialect.name == "postgresql":
        # Each kind of line in a transaction that wrote nothing else ...
        for table in ("sales_invoice_line", "credit_note_line", "purchase_order_line"):
            assert [w for w in committed if table in w] == [{table}]
        # ... and every step, the payments' included, committed during extract: the load step ran only the history.
        assert loaded_ahead == [s.name for s in transform.PRIMARY_STEPS[:-1]]
    else:
        # In line with the invoices, in the load ahead's one transaction; the payments' steps wait for the load.
        assert {"sales_invoice", "sales_invoice_line", "credit_note_line"} <= lines_commits[0]
        assert "payments" not in loaded_ahead and set(LINES) <= set(loaded_ahead)
    # Every step reported once, in step order, whichever transaction ran it.
    assert list(run["loaded"]["counts"]) == [s.name for s in transform.PRIMARY_STEPS]
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_invoice_line") == run["loaded"]["counts"][LINES[0]] > 0

    whole = build_pipeline(f"sqlite:///{tmp_path / 'whole.db'}", sandbox)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(import_run, "load_ahead", lambda *args, **kwargs: None)
        _import(whole, "whole")
    assert crm_state(pipeline.engine, {}) == crm_state(whole.engine, {})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_pg_database("beside")
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.mark.postgres
def test_a_step_that_fails_beside_the_others_is_run_by_the_load_step(
    make_sandbox, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(postgres_url, sandbox)
    run_detached = transform.run_detached

    def failing(conn, name, **kwargs):
        if name == "sales_invoice_lines":
            raise RuntimeError("the database went away")
        return run_detached(conn, name, **kwargs)

    monkeypatch.setattr(transform, "run_detached", failing)
    run = _import(pipeline, "failed-beside")
    # Not counted as loaded ahead, so the load step ran it (and only it, besides the history).
    assert "sales_invoice_lines" not in run["extracted"]["loaded_ahead"]
    assert "credit_note_lines" in run["extracted"]["loaded_ahead"]
    lines = pipeline.scalar("SELECT COUNT(*) FROM sales_invoice_line")
    assert lines == run["loaded"]["counts"]["sales_invoice_lines"] > 0
    monkeypatch.setattr(transform, "run_detached", run_detached)

    whole = build_pipeline(f"sqlite:///{tmp_path / 'whole.db'}", sandbox)
    monkeypatch.setattr(import_run, "load_ahead", lambda *args, **kwargs: None)
    _import(whole, "whole")
    assert crm_state(pipeline.engine, {}) == crm_state(whole.engine, {})
