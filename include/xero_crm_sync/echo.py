"""The echo rule: a write that only echoes the other side's own write is not sent back. One home for both halves.

- import -> push: what an import wrote into a customer or product is what Xero holds, so the push must not send
  it back. `adopt_imported` records it as pushed (last_export_hash adopts the current hash) when the mirror shows
  Xero holds exactly the pushed fields. The import runs it after its load for the records it read, the push before
  its diff for every record (SQL: `sql/echo/`).
- push -> import: a Xero record that holds exactly what our last push sent, while the CRM changed the record since,
  is only the echo of our write; the import's upserts leave the CRM's change alone (`NOT EXISTS ... is the echo`
  in `sql/transform/040_upsert_sales_ledgers.sql` and `075_upsert_products.sql`).

Both halves compare the hashes of one file per record type, `sql/views/010_push_customer_fields.sql` and
`020_push_product_fields.sql`: `fields_hash` (the CRM's pushed fields), `last_export_hash` (as last pushed or
adopted) and `mirror_hash` (the same fields as the import's mirror says Xero holds them).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from xero_crm_sync import db

ECHO_SQL = db.SQL_DIR / "echo"
ADOPT_SQL: dict[str, Path] = {
    "sales_ledger": ECHO_SQL / "010_adopt_imported_customers.sql",
    "product": ECHO_SQL / "020_adopt_imported_products.sql",
}


def adopt_imported(
    conn: Connection, record_type: str, *, operating_company_id: int, connection_id: int, run_id: str | None
) -> int:
    """Record as pushed the `record_type` records ('sales_ledger' or 'product') whose pushed fields Xero already
    holds: those one import run read (`run_id`), or every record (None). Returns how many adopted their hash."""
    params = {"operating_company_id": operating_company_id, "connection_id": connection_id, "run_id": run_id}
    return sum(max(count, 0) for count in db.run_sql_file(conn, ADOPT_SQL[record_type], params))
