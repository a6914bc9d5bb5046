"""SQLite storage for bulk staging (issue 13): a new CRM database is created with 16 KiB pages, and every connection
copies the write-ahead log back into the database every ~128 MiB; a database created before keeps its page size and
works as it did."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from xero_crm_sync import db, migrate


def _pragmas(url: str) -> dict[str, object]:
    with db.get_engine(url).connect() as conn:
        return {
            name: conn.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("page_size", "journal_mode", "wal_autocheckpoint", "journal_size_limit")
        }


def test_a_new_database_has_16_kib_pages_and_checkpoints_every_128_mib(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.migrate(url)
    assert _pragmas(url) == {
        "page_size": 16_384,
        "journal_mode": "wal",
        "wal_autocheckpoint": 8_192,  # pages: 128 MiB
        "journal_size_limit": 128 * 1024 * 1024,
    }
    db.dispose_engine(url)


def test_a_database_created_with_4_kib_pages_keeps_them_and_migrates(tmp_path: Path):
    path = tmp_path / "older.db"
    older = sqlite3.connect(path)
    older.execute("PRAGMA page_size=4096")
    older.execute("CREATE TABLE note (text TEXT)")
    older.commit()
    older.close()
    url = f"sqlite:///{path}"
    migrate.migrate(url)
    assert _pragmas(url)["page_size"] == 4_096
    assert _pragmas(url)["wal_autocheckpoint"] == 32_768  # the same 128 MiB in its pages
    with db.begin(url) as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM stg_invoices")).scalar() == 0
    db.dispose_engine(url)
