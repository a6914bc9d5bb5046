"""A fresh CRM database per benchmark run: a SQLite file in a scratch directory, or a PostgreSQL database created on
the local server (BENCH_POSTGRES_URL, default the test server) and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
KINDS = ("sqlite", "postgresql")


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # any failure means "not reachable"
        return False


@contextmanager
def fresh_database(kind: str, scratch: Path) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database of `kind`; removed on exit."""
    from xero_crm_sync import db

    if kind == "sqlite":
        path = scratch / f"crm-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        try:
            yield url
        finally:
            db.dispose_engine(url)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if kind != "postgresql":
        raise ValueError(f"database kind is one of {KINDS}")
    name = f"xcs_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        db.dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL server processes serving `url`'s database right now (their CPU is database work)."""
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": name}
                ).scalars()
            )
    finally:
        admin.dispose()
