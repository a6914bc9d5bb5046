"""SQL files may say "Xero's" in a comment: the parameters after it still bind (found while fixing a transform
step, whose new comment silently turned `:connection_id` into text and failed every load)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from xero_crm_sync import db


def test_an_apostrophe_in_a_comment_does_not_hide_the_parameters_after_it(tmp_path: Path):
    sql = tmp_path / "step.sql"
    sql.write_text("SELECT :a AS a,\n  -- Xero's own value: kept as text\n  'x:y' AS literal,\n  :b AS b;\n")
    engine = db.get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        [statement] = db.split_statements(sql.read_text())
        assert db.parameter_names(statement) == {"a", "b"}
        assert db.run_sql_file(conn, sql, {"a": 1, "b": 2}) == [-1]
        row = conn.execute(text(db._escape_literal_colons(statement)), {"a": 1, "b": 2}).one()
    assert tuple(row) == (1, "x:y", 2)
    db.dispose_engine(f"sqlite:///{tmp_path / 'x.db'}")
