"""The analyst queries in docs/CRM_SCHEMA.md run on both databases and return what they promise."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from .helpers import contact, invoice

DOC = Path(__file__).resolve().parents[2] / "docs" / "CRM_SCHEMA.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_every_documented_query_runs(crm):
    crm.run(
        {
            "contacts": [contact("acme", "Acme Ltd"), contact("old", "Old Ltd", status="ARCHIVED")],
            "invoices": [invoice("INV-9", "old")],
        }
    )
    assert len(QUERIES) >= 10
    results = []
    with crm.engine.connect() as conn:
        for query in QUERIES:
            results.append(conn.execute(text(query)).mappings().all())
    not_in_crm = next(
        r for r, q in zip(results, QUERIES, strict=True) if "not in the CRM" in q or "match_outcome" in q
    )
    assert any(row["name"] == "Old Ltd" for row in not_in_crm)
    unlinked = next(r for r, q in zip(results, QUERIES, strict=True) if "si.sales_ledger_id IS NULL" in q)
    assert any(row["invoice_number"] == "INV-9" for row in unlinked)
