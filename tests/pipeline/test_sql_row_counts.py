"""A SQL step's count is the rows it changed, on both databases, whatever its first word: the import's summary
shows each step's count (the echo rule's adoption, `adopt_imported_customers`, begins with `WITH` since issue 13,
and Python's sqlite3 counts only statements that begin with INSERT, UPDATE, DELETE or REPLACE)."""

from __future__ import annotations

from sqlalchemy import text

from xero_crm_sync import db


def test_a_data_change_that_begins_with_with_reports_the_rows_it_changed(crm_url: str):
    engine = db.get_engine(crm_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counted (id INTEGER PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO counted (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')"))
        counts = db.run_sql(
            conn,
            """
            -- two of the three rows
            WITH wanted AS MATERIALIZED (SELECT id FROM counted WHERE id > :above)
            UPDATE counted SET v = 'x' FROM wanted WHERE wanted.id = counted.id;
            WITH unwanted AS MATERIALIZED (SELECT id FROM counted WHERE id > 100)
            UPDATE counted SET v = 'y' FROM unwanted WHERE unwanted.id = counted.id;
            WITH every AS (SELECT id FROM counted) SELECT COUNT(*) FROM every;
            DELETE FROM counted WHERE id = 1;
            """,
            {"above": 1},
        )
        assert counts[:2] == [2, 0]
        assert counts[2] in (-1, 1)  # a query: SQLite's driver says -1, psycopg the rows it returned
        assert counts[3] == 1
        assert conn.execute(text("SELECT COUNT(*) FROM counted WHERE v = 'x'")).scalar_one() == 2
