"""An incremental run reads only its own staged rows. Staging keeps every run's rows, so a statement that walks the
(connection_id, xero_id) index instead of the run's index reads the whole history of an entity: at 100,000
contacts on SQLite that cost 0.2-0.6 s per entity for a handful of changed records (issue 13, fix 14 in
docs/BENCHMARKS.md). SQLite plans these without statistics, so the plan read here is the plan a big database gets."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, text

from xero_crm_sync import db, migrate, validated, validation
from xero_crm_sync.entities import ENTITIES

PARAMS = {"run_id": "r-1", "connection_id": 1}


def _plan(conn, statement: str, params: dict | tuple = PARAMS) -> str:
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_promotion_and_validation_batches_search_the_runs_index_on_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.migrate(url)
    engine = db.get_engine(url)
    with engine.connect() as conn:
        for entity in ENTITIES:
            by_run = f"USING INDEX ix_stg_{entity.name}_run"
            by_id = f"ix_stg_{entity.name}_xero_id"
            upsert = validated.promote_sql(entity)[0]
            plan = _plan(conn, upsert)
            assert by_run in plan and by_id not in plan, (entity.name, plan)

            seen: list[str] = []

            def capture(_conn, _cursor, statement, *_args, _seen=seen):
                if statement.lstrip().upper().startswith("SELECT S.STG_ID"):
                    _seen.append(statement)

            event.listen(engine, "before_cursor_execute", capture)
            try:
                list(validation._batches(conn, entity, "r-1", 1))
            finally:
                event.remove(engine, "before_cursor_execute", capture)
            assert seen, entity.name
            plan = _plan(conn, seen[0], ("r-1", 1))  # as executed: positional parameters
            assert by_run in plan and by_id not in plan, (entity.name, plan)
    engine.dispose()


def test_the_product_diff_finds_a_taken_code_by_index_on_sqlite(tmp_path: Path):
    """The push diff asks, per product it returns, whether a linked product already has its code (any case): an
    index probe on the lowered code, not a scan of the company's products per row (migration 0280)."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.migrate(url)
    engine = db.get_engine(url)
    diff = db.read_sql(db.SQL_DIR / "push" / "050_diff_products.sql").strip().rstrip(";")
    with engine.connect() as conn:
        plan = _plan(conn, diff, {"operating_company_id": 1, "connection_id": 1, "order_id": None})
    engine.dispose()
    assert "USING INDEX ix_product_code_lower" in plan, plan


def test_each_document_line_reads_its_product_off_an_index_on_sqlite(tmp_path: Path):
    """A CRM line takes the product with its item code, a synced one first: read off an index kept in that order
    (migration 0310), not sorted per line (a first sync sorts for each of a million lines otherwise)."""
    from xero_crm_sync import transform

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.migrate(url)
    engine = db.get_engine(url)
    with engine.connect() as conn:
        for entity, lines in transform.loaded_lines().values():
            sql = transform.document_lines_sql(entity, lines)
            upsert = next(s for s in db.split_statements(sql) if s.lstrip().startswith("INSERT INTO"))
            plan = _plan(conn, upsert, {**PARAMS, "operating_company_id": 1})
            assert "SEARCH p USING INDEX ix_product_code_pick" in plan, (lines.name, plan)
            assert "TEMP B-TREE" not in plan, (lines.name, plan)
    engine.dispose()


def test_a_runs_lines_are_read_by_their_parents_position_on_sqlite(tmp_path: Path):
    """Staged lines are indexed by their parent's (page, position) in the run, an index appended to in order
    (fix 23): the lines' sums that validation compares with SubTotal and the promotion's copy of the lines both
    search it, never the whole table."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.migrate(url)
    engine = db.get_engine(url)
    with engine.connect() as conn:
        for entity in (e for e in ENTITIES if e.lines):
            statements = validated.promote_sql(entity)
            for statement in statements[:4]:  # the mirror's upsert and the promoted parents' temporary table
                conn.execute(text(statement), PARAMS)
            for spec in entity.lines:
                by_parent = f"USING INDEX ix_stg_{spec.name}_parent (run_id=? AND connection_id=?"
                copy_lines = next(s for s in statements if f"FROM {spec.staging_table} l" in s)
                assert by_parent in _plan(conn, copy_lines), (spec.name, _plan(conn, copy_lines))
            conn.execute(text(statements[-1]))
        seen: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        invoices = next(e for e in ENTITIES if e.name == "invoices")
        documents = validation._Documents(validation.document_lines(invoices), PARAMS)
        assert validation._line_sums(conn, documents).empty
        plan = _plan(conn, seen[-1], ("r-1", 1))
        assert "USING INDEX ix_stg_invoice_lines_parent (run_id=? AND connection_id=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # grouped in the index's order, no sort
    engine.dispose()
