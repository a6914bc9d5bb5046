"""Run the push's SQL steps (`sql/push/*.sql`) with bound parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping

from xero_crm_sync import db

PUSH_SQL = db.SQL_DIR / "push"

DIFF_CUSTOMERS = PUSH_SQL / "020_diff_customers.sql"
MATCH_CUSTOMERS_MIRROR = PUSH_SQL / "030_match_customers_mirror.sql"
DIFF_PRODUCTS = PUSH_SQL / "050_diff_products.sql"
ORDER_FOR_INVOICE = PUSH_SQL / "060_order_for_invoice.sql"
ORDER_LINES_FOR_INVOICE = PUSH_SQL / "070_order_lines_for_invoice.sql"
OUTBOX_PENDING = PUSH_SQL / "080_outbox_pending.sql"


def fetch(conn: Connection, path: Any, params: Mapping[str, Any] | None = None) -> list[RowMapping]:
    """The rows of a SQL file holding one SELECT (parameters it does not name are ignored)."""
    statements = db.split_statements(db.read_sql(path))
    if len(statements) != 1:
        raise ValueError(f"{path}: expected one SELECT, found {len(statements)} statements")
    return list(
        db.execute_statement(conn, statements[0], dict(params or {}), source=str(path)).mappings().all()
    )


def execute(conn: Connection, path: Any, params: Mapping[str, Any] | None = None) -> int:
    """Run a SQL file of statements; the total rowcount."""
    return sum(max(count, 0) for count in db.run_sql_file(conn, path, params))
