"""Big loads refresh PostgreSQL's planner statistics (a first sync otherwise plans nested loops over a million lines);
small ones and SQLite never pay for it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import PG_AVAILABLE, create_pg_database, drop_pg_database
from xero_crm_sync import db


@pytest.fixture
def pg_url():
    if not PG_AVAILABLE:
        pytest.fail("needs PostgreSQL (TEST_POSTGRES_URL, default 127.0.0.1:5432)")
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def _table_with_rows(conn, rows: int) -> None:
    conn.execute(text("CREATE TABLE bench_t (id INTEGER PRIMARY KEY, v TEXT)"))
    if rows:
        conn.execute(
            text("INSERT INTO bench_t (id, v) VALUES (:id, :v)"), [{"id": i, "v": "x"} for i in range(rows)]
        )


def _reltuples(conn) -> float:
    return conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'bench_t'")).scalar_one()


def test_tables_written_by_a_sql_file():
    sql = "-- c\nINSERT INTO a (x) SELECT 1;\nupdate b SET x = 1;\n  DELETE FROM c WHERE x IN (SELECT 1 FROM d);"
    assert db.tables_written(sql) == ["a", "b", "c"]


@pytest.mark.postgres
def test_a_big_write_is_analysed_in_the_same_transaction_and_a_small_one_is_not(pg_url):
    with db.begin(pg_url) as conn:
        _table_with_rows(conn, 5000)
        assert _reltuples(conn) < 0  # never analysed: the planner would guess
        assert db.refresh_statistics(conn, ["bench_t"], 5000) == ["bench_t"]
        assert _reltuples(conn) == 5000  # sees this transaction's own rows
        # 100 more rows are not worth an ANALYZE; nor is 10% growth under 1,000 rows.
        assert db.refresh_statistics(conn, ["bench_t"], 100) == []
        assert db.refresh_statistics(conn, ["bench_t", "no_such_table"], 999) == []


def test_sqlite_never_analyses(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with db.begin(url) as conn:
        _table_with_rows(conn, 1200)
        assert db.refresh_statistics(conn, ["bench_t"], 1200) == []
    db.dispose_engine(url)
