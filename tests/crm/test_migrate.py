"""The schema: one idempotent migrate command, registry columns follow the registry, synced records cannot be
deleted (I14), and the connection rules of C2 are enforced by the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.conftest import _make_db
from xero_crm_sync import db, migrate, staging, validation
from xero_crm_sync.entities import ENTITIES


def test_migrate_twice_applies_nothing_the_second_time(crm_url):
    first = migrate.migrate(crm_url)
    assert first[:3] == ["0001_crm_core", "0002_integration", "0003_delete_guards"]
    assert "create table val_contacts" in first
    assert migrate.migrate(crm_url) == []
    with db.begin(crm_url) as conn:
        versions = (
            conn.execute(text("SELECT version FROM schema_migrations ORDER BY version")).scalars().all()
        )
        expected = [m.version for m in migrate.discover(conn.dialect.name)]
    assert versions == expected and expected[:3] == ["0001", "0002", "0003"]


def test_a_registry_column_missing_from_an_existing_table_is_added(crm_url):
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        conn.execute(text("ALTER TABLE val_items DROP COLUMN is_sold"))
    assert migrate.migrate(crm_url) == ["add column val_items.is_sold"]
    with db.begin(crm_url) as conn:
        conn.execute(text("SELECT is_sold FROM val_items"))


@pytest.fixture
def postgresql_url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL only: TOAST compression is its own (SQLite stores the payload as plain text)."""
    yield from _make_db("postgresql", tmp_path)


def test_an_older_line_index_keyed_by_the_parents_xero_id_is_rebuilt_on_the_parents_position(crm_url):
    """Migration 0290 drops the lines' (run, connection, parent_id) index; the registry step creates the declared
    (run, connection, parent_page, parent_position) one under the same name, as it creates any index a table lacks."""
    migrate.migrate(crm_url)
    lines = [ln.name for e in ENTITIES for ln in e.lines]
    with db.begin(crm_url) as conn:
        for name in lines:  # the database as it was before 0290
            conn.execute(text(f"DROP INDEX ix_stg_{name}_parent"))
            conn.execute(
                text(f"CREATE INDEX ix_stg_{name}_parent ON stg_{name} (run_id, connection_id, parent_id)")
            )
        conn.execute(text("DELETE FROM schema_migrations WHERE version = '0290'"))
    done = [step for step in migrate.migrate(crm_url) if not step.startswith("create view ")]
    assert done[0] == "0290_line_staging_parent_position_index"
    assert sorted(done[1:]) == sorted(f"create index ix_stg_{name}_parent" for name in lines)
    with db.begin(crm_url) as conn:
        inspector = inspect(conn)
        for name in lines:
            (index,) = [
                i for i in inspector.get_indexes(f"stg_{name}") if i["name"] == f"ix_stg_{name}_parent"
            ]
            assert index["column_names"] == ["run_id", "connection_id", "parent_page", "parent_position"]
    assert migrate.migrate(crm_url) == []


@pytest.mark.postgres
def test_staged_payloads_are_compressed_with_lz4_on_postgresql(postgresql_url):
    crm_url = postgresql_url
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        compression = _staging_tables(conn, "a.attcompression", payload_only=True)
        # A database staged before this change: its columns have the default (pglz); migrate switches them.
        conn.execute(text("ALTER TABLE stg_invoices ALTER COLUMN raw SET COMPRESSION pglz"))
    assert set(compression) == {f"stg_{e.name}" for e in ENTITIES}
    assert set(compression.values()) == {"l"}
    assert migrate.migrate(crm_url) == ["compress stg_invoices.raw with lz4"]
    assert migrate.migrate(crm_url) == []
    with db.begin(crm_url) as conn:
        # Rows already staged stay readable; new ones are compressed with lz4.
        assert _staging_tables(conn, "a.attcompression", payload_only=True) == compression


def _staging_tables(conn, value: str, *, payload_only: bool = False) -> dict[str, object]:
    """Each staging table (`c`; with `payload_only`, those with a payload column, `a`) -> `value` of it."""
    payload = "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'raw' " if payload_only else ""
    return dict(
        conn.execute(
            text(
                f"SELECT c.relname, {value} FROM pg_class c {payload}"
                "WHERE c.relname LIKE 'stg\\_%' AND c.relkind = 'r' ORDER BY c.relname"
            )
        ).all()
    )


@pytest.mark.postgres
def test_the_verdict_rewrites_each_staged_row_in_its_own_page_on_postgresql(postgresql_url):
    """Issue 13: the staged record tables leave half of each page free, so that validation's verdict on every row
    of a run is a HOT update (nothing added to the table's indexes); line tables, never updated, fill their pages."""
    crm_url = postgresql_url
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        settings = _staging_tables(conn, "COALESCE(array_to_string(c.reloptions, ','), '')")
        # A database staged before this change: its tables fill their pages; migrate leaves the room.
        conn.execute(text("ALTER TABLE stg_invoices RESET (fillfactor)"))
    assert {name for name, value in settings.items() if value == "fillfactor=50"} == {
        f"stg_{e.name}" for e in ENTITIES
    }
    assert {name for name, value in settings.items() if value == ""} == {
        f"stg_{line.name}" for e in ENTITIES for line in e.lines
    }
    assert migrate.migrate(crm_url) == ["leave room for the verdict in stg_invoices (fillfactor=50)"]
    assert migrate.migrate(crm_url) == []

    invoices = next(e for e in ENTITIES if e.name == "invoices")
    context = staging.RunContext(run_id="verdict", connection_id=1, extracted_at=datetime(2026, 1, 1))
    # Payloads of the size of a real invoice's (1.8 KiB stored at 100,000 contacts).
    records = [
        {"InvoiceID": f"inv-{n}", "Type": "ACCREC", "Reference": f"{n:04d} " + "x" * 1800, "LineItems": []}
        for n in range(400)
    ]
    with db.begin(crm_url) as conn:
        staging.write_page(conn, invoices, staging.stage_page(invoices, records, context))
    with db.begin(crm_url) as conn:
        conn.execute(
            text(validation.VERDICT_VALID.format(table="stg_invoices")),
            {"run_id": "verdict", "connection_id": 1},
        )
        updated, hot = conn.execute(
            text(
                "SELECT pg_stat_get_xact_tuples_updated(CAST('stg_invoices' AS regclass)), "
                "pg_stat_get_xact_tuples_hot_updated(CAST('stg_invoices' AS regclass))"
            )
        ).one()
    assert updated == hot == len(records)


@pytest.mark.postgres
def test_staged_payloads_are_json_text_and_an_older_jsonb_column_is_converted(postgresql_url):
    crm_url = postgresql_url
    created = migrate.migrate(crm_url)
    assert [
        step for step in created if step.endswith(" as json")
    ] == []  # created as json, nothing to convert
    types = text(
        "SELECT c.relname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE a.attname = 'raw' AND c.relname LIKE 'stg\\_%' AND c.relkind = 'r' ORDER BY c.relname"
    )
    payload = '{"Name":"Ana  Ltd","Total":1.50,"Lines":[]}'
    with db.begin(crm_url) as conn:
        assert set(dict(conn.execute(types).all()).values()) == {"json"}
        # A database staged before this change: its payload column is jsonb, with a row in it.
        conn.execute(text("ALTER TABLE stg_invoices ALTER COLUMN raw TYPE jsonb USING raw::jsonb"))
        conn.execute(
            text(
                "INSERT INTO stg_invoices (run_id, connection_id, extracted_at, raw) "
                "VALUES ('old', 1, CURRENT_TIMESTAMP, CAST(:p AS jsonb))"
            ),
            {"p": payload},
        )
    # The rewrite drops the column's compression setting: lz4 is set again after it.
    assert migrate.migrate(crm_url) == [
        "store stg_invoices.raw as json",
        "compress stg_invoices.raw with lz4",
    ]
    assert migrate.migrate(crm_url) == []
    with db.begin(crm_url) as conn:
        assert dict(conn.execute(types).all())["stg_invoices"] == "json"
        # The older row reads the same, for analysts' operators too.
        assert conn.execute(text("SELECT raw ->> 'Name', raw -> 'Total' FROM stg_invoices")).one() == (
            "Ana  Ltd",
            1.5,
        )
        assert migrate._raw_columns(conn, "a.attcompression <> 'l'") == []
        # A record staged from now on (COPY) is kept as the very text whose digest staging recorded.
        invoices = next(e for e in ENTITIES if e.name == "invoices")
        record = {"InvoiceID": "inv-1", "Reference": "caf\u00e9  x", "Total": 1.5, "LineItems": []}
        context = staging.RunContext(run_id="new", connection_id=1, extracted_at=datetime(2026, 1, 1))
        staging.write_page(conn, invoices, staging.stage_page(invoices, [record], context))
        stored, same = conn.execute(
            text("SELECT raw, md5(CAST(raw AS TEXT)) = raw_digest FROM stg_invoices WHERE run_id = 'new'")
        ).one()
    assert stored == record and same


def test_seed_demo_is_idempotent(crm_url):
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        company_id = migrate.seed_demo(conn)
        assert migrate.seed_demo(conn) == company_id
        users = conn.execute(
            text("SELECT name FROM crm_user WHERE operating_company_id = :c"), {"c": company_id}
        ).all()
        warehouses = conn.execute(text("SELECT name FROM warehouse WHERE is_default = TRUE")).all()
    assert [u.name for u in users] == ["Unassigned"] and [w.name for w in warehouses] == ["Main"]


@pytest.fixture
def seeded(crm_url):
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        company_id = migrate.seed_demo(conn)
    return crm_url, company_id


def test_deleting_a_synced_record_is_refused_an_unsynced_one_is_not(seeded):
    url, company_id = seeded
    with db.begin(url) as conn:
        conn.execute(
            text("INSERT INTO sales_ledger (operating_company_id, name, accounting_code) VALUES (:c, 'Synced', 'abc-123'),"
                 " (:c, 'Local', NULL)"),
            {"c": company_id},
        )  # fmt: skip
    with pytest.raises(
        DBAPIError, match=r"cannot delete sales_ledger.*it is synced with Xero \(accounting code"
    ):
        with db.begin(url) as conn:
            conn.execute(text("DELETE FROM sales_ledger WHERE name = 'Synced'"))
    if url.startswith("postgresql"):  # PostgreSQL names the code; SQLite's RAISE only takes a literal
        with pytest.raises(DBAPIError, match="accounting code abc-123"), db.begin(url) as conn:
            conn.execute(text("DELETE FROM sales_ledger WHERE name = 'Synced'"))
    with db.begin(url) as conn:
        assert conn.execute(text("DELETE FROM sales_ledger WHERE name = 'Local'")).rowcount == 1
        assert conn.execute(text("SELECT COUNT(*) FROM sales_ledger")).scalar() == 1


@pytest.mark.parametrize("table", ["product", "sales_invoice", "payment", "tax_rate", "sales_order"])
def test_every_synced_table_refuses_the_delete(seeded, table):
    url, company_id = seeded
    values = {
        "product": "(operating_company_id, code, accounting_code) VALUES (:c, 'P', 'x')",
        "sales_invoice": "(operating_company_id, accounting_code) VALUES (:c, 'x')",
        "payment": "(operating_company_id, amount, accounting_code) VALUES (:c, 1, 'x')",
        "tax_rate": "(operating_company_id, name, accounting_code) VALUES (:c, 'T', 'x')",
        "sales_order": "(operating_company_id, xero_invoice_id) VALUES (:c, 'x')",
    }[table]
    with db.begin(url) as conn:
        conn.execute(text(f"INSERT INTO {table} {values}"), {"c": company_id})
    with pytest.raises(DBAPIError, match=f"cannot delete {table}"), db.begin(url) as conn:
        conn.execute(text(f"DELETE FROM {table}"))


def _connect(url, company_id, role, tenant, status="active"):
    with db.begin(url) as conn:
        conn.execute(
            text(
                "INSERT INTO xero_connection (operating_company_id, role, tenant_id, status) VALUES (:c, :r, :t, :s)"
            ),
            {"c": company_id, "r": role, "t": tenant, "s": status},
        )


def test_one_primary_and_one_secondary_per_company_and_one_company_per_organisation(seeded):
    url, company_id = seeded
    _connect(url, company_id, "primary", "org-1")
    _connect(url, company_id, "secondary", "org-2")
    with pytest.raises(IntegrityError):
        _connect(url, company_id, "primary", "org-3")  # a second primary
    with pytest.raises(IntegrityError):
        _connect(url, company_id, "secondary", "org-1")  # the primary's organisation again
    with db.begin(url) as conn:
        other = conn.execute(
            text("INSERT INTO operating_company (name) VALUES ('Other') RETURNING id")
        ).scalar_one()
    with pytest.raises(IntegrityError):
        _connect(url, other, "primary", "org-1")  # one organisation belongs to one operating company
    with pytest.raises(IntegrityError):
        _connect(url, company_id, "tertiary", "org-9")
    # A disconnected connection is history: the company may connect a new primary.
    with db.begin(url) as conn:
        conn.execute(text("UPDATE xero_connection SET status = 'disconnected' WHERE tenant_id = 'org-1'"))
    _connect(url, company_id, "primary", "org-3")


# The commit before the push's views moved from migrations 0050-0052 into sql/views/ (main's history is never
# rewritten, so any clone has it).
_BEFORE_VIEWS = "cf88461"
_FORMER_FILES = (
    "0050_push.sql",
    "0051_push_person_placeholder.sql",
    "0052_push_on_stop_is_not_archive.sql",
)


def _former_migrations(tmp_path):
    """The migrations as a database that applied the former 0050-0052 (views inside) ran them."""
    import shutil
    import subprocess

    directory = tmp_path / "former"
    directory.mkdir()
    for path in migrate.MIGRATIONS_DIR.glob("*.sql"):
        if not path.name.startswith("0050_"):
            shutil.copy(path, directory / path.name)
    for name in _FORMER_FILES:
        shown = subprocess.run(
            ["git", "-C", str(migrate.MIGRATIONS_DIR), "show", f"{_BEFORE_VIEWS}:sql/migrations/{name}"],
            capture_output=True,
            text=True,
        )
        assert shown.returncode == 0, f"this test reads the former {name} from git history: {shown.stderr}"
        (directory / name).write_text(shown.stdout, encoding="utf-8")
    return directory


def test_a_database_that_applied_the_former_view_migrations_migrates_cleanly(crm_url, tmp_path, caplog):
    with db.begin(crm_url) as conn:
        migrate.apply_migrations(conn, _former_migrations(tmp_path))
        migrate.sync_registry_tables(conn)
        company_id = migrate.seed_demo(conn)
        conn.execute(
            text("INSERT INTO sales_ledger (operating_company_id, name, status, on_stop_source)"
                 " VALUES (:c, 'Held', 'On Stop', 'user')"),
            {"c": company_id},
        )  # fmt: skip
    caplog.set_level("WARNING", logger="xero_crm_sync.migrate")
    done = migrate.migrate(crm_url)
    assert done == [f"create view {name}" for name in migrate.view_names()]
    assert not caplog.records, "an applied migration whose text moved is not a warning"
    assert migrate.migrate(crm_url) == []
    with db.begin(crm_url) as conn:
        checksums = dict(conn.execute(text("SELECT version, checksum FROM schema_migrations")).all())
        status = conn.execute(text("SELECT contact_status FROM push_customer_fields")).scalar_one()
        conn.execute(text("SELECT id, mirror_hash FROM push_customer_mirror")).all()
    current = {m.version: m.checksum() for m in migrate.discover("sqlite")}
    assert checksums["0050"] == current["0050"]
    assert {"0051", "0052"} <= checksums.keys()  # retired: kept as history
    assert status == "ACTIVE"  # the views are the files' (a user's On Stop is not pushed as ARCHIVED)


def test_a_changed_view_file_is_recreated_and_a_missing_view_restored(crm_url, tmp_path, monkeypatch):
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        conn.exec_driver_sql("DROP VIEW export_in_flight")
    assert migrate.migrate(crm_url) == [f"create view {name}" for name in migrate.view_names()]
    views = tmp_path / "views"
    views.mkdir()
    for path in migrate.view_files():
        (views / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (views / "900_extra.sql").write_text("CREATE VIEW extra_view AS SELECT 1 AS one;\n", encoding="utf-8")
    monkeypatch.setattr(migrate, "VIEWS_DIR", views)
    assert "create view extra_view" in migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        assert conn.execute(text("SELECT one FROM extra_view")).scalar_one() == 1


@pytest.mark.postgres
def test_our_postgresql_sessions_run_without_jit(postgresql_url):
    """Set per session, whatever the server's default (db.py says why): a first sync's bulk statements were each
    compiled for ~1 s and ran no faster."""
    with db.get_engine(postgresql_url).connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar() == "off"
