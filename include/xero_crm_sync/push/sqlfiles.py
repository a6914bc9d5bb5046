"""Run the push's SQL steps (`sql/push/*.sql`) with bound parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, text

from xero_crm_sync import db

PUSH_SQL = db.SQL_DIR / "push"
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_]\w*)")  # as db.run_sql_file reads them

ADOPT_CUSTOMERS = PUSH_SQL / "010_adopt_imported_customers.sql"
DIFF_CUSTOMERS = PUSH_SQL / "020_diff_customers.sql"
MATCH_CUSTOMERS_MIRROR = PUSH_SQL / "030_match_customers_mirror.sql"
ADOPT_PRODUCTS = PUSH_SQL / "040_adopt_imported_products.sql"
DIFF_PRODUCTS = PUSH_SQL / "050_diff_products.sql"
ORDER_FOR_INVOICE = PUSH_SQL / "060_order_for_invoice.sql"
ORDER_LINES_FOR_INVOICE = PUSH_SQL / "070_order_lines_for_invoice.sql"
OUTBOX_PENDING = PUSH_SQL / "080_outbox_pending.sql"


def fetch(conn: Connection, path: Any, params: Mapping[str, Any] | None = None) -> list[RowMapping]:
    """The rows of a SQL file holding one SELECT (parameters it does not name are ignored)."""
    statements = db.split_statements(db.read_sql(path))
    if len(statements) != 1:
        raise ValueError(f"{path}: expected one SELECT, found {len(statements)} statements")
    statement = statements[0]
    names = set(_PARAM.findall(statement))
    given = dict(params or {})
    missing = names - given.keys()
    if missing:
        raise KeyError(f"{path}: statement needs parameters {sorted(missing)}")
    return list(conn.execute(text(statement), {k: given[k] for k in names}).mappings().all())


def execute(conn: Connection, path: Any, params: Mapping[str, Any] | None = None) -> int:
    """Run a SQL file of statements; the total rowcount."""
    return sum(max(count, 0) for count in db.run_sql_file(conn, path, params))
