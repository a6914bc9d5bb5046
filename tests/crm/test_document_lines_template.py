"""I7 lines come from one template rendered per registry line entity: what `sql --show-lines` prints is what the
import runs, `sql --lines` runs it by hand, and a new line entity in a registry gets a working upsert."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from xero_crm_sync import db, migrate, transform
from xero_crm_sync.company_settings import get_company_settings
from xero_crm_sync.entities import entity, line_items

from .helpers import T0, contact, credit_note, gid, invoice, item, line, purchase_order

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, url: str | None = None) -> str:
    env = dict(os.environ, **({"CRM_DATABASE_URL": url} if url else {}))
    done = subprocess.run(
        [sys.executable, "-m", "xero_crm_sync", "sql", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout


def test_what_show_lines_prints_is_what_the_import_runs(crm):
    executed: list[str] = []

    def record(conn: Any, clause: Any, *args: Any) -> None:
        if hasattr(clause, "text"):
            executed.append(clause.text)

    event.listen(crm.engine, "before_execute", record)
    try:
        crm.run(
            {
                "contacts": [contact("acme", "Acme Ltd"), contact("supp", "Supp Ltd", customer=False, supplier=True)],
                "items": [item("WIDGET")],
                "invoices": [invoice("INV-1", "acme", total=250, lines=[line("WIDGET", 2, 100), line(None, 1, 50)])],
                "credit_notes": [credit_note("CN-1", "acme")],
                "purchase_orders": [purchase_order("PO-1", "supp", lines=[line("WIDGET", 5, 10)])],
            }
        )  # fmt: skip
    finally:
        event.remove(crm.engine, "before_execute", record)
    for name in ("invoice_lines", "credit_note_lines", "purchase_order_lines"):
        shown = db.split_statements(_cli("--show-lines", name))
        assert len(shown) == 2
        # The import ran exactly these statements, one after the other (a statement is run as its text).
        first = executed.index(shown[0])
        assert executed[first + 1] == shown[1], name
    counts = crm.one(
        "SELECT (SELECT COUNT(*) FROM sales_invoice_line l JOIN sales_invoice d ON d.id = l.sales_invoice_id"
        "        WHERE d.operating_company_id = :company_id) AS invoice_lines,"
        " (SELECT COUNT(*) FROM credit_note_line l JOIN credit_note d ON d.id = l.credit_note_id"
        "        WHERE d.operating_company_id = :company_id) AS credit_note_lines,"
        " (SELECT COUNT(*) FROM purchase_order_line l JOIN purchase_order d ON d.id = l.purchase_order_id"
        "        WHERE d.operating_company_id = :company_id) AS purchase_order_lines"
    )
    assert counts == {"invoice_lines": 2, "credit_note_lines": 1, "purchase_order_lines": 1}


def test_sql_lines_runs_the_template_by_hand(crm, migrated_url):
    crm.run(
        {"contacts": [contact("acme")], "invoices": [invoice("INV-1", "acme", lines=[line("A"), line("B")])]}
    )
    crm.execute("DELETE FROM sales_invoice_line WHERE line_no = 2 AND sales_invoice_id IN"
                " (SELECT id FROM sales_invoice WHERE operating_company_id = :company_id)")  # fmt: skip
    params = [f"run_id={crm.last_run_id}", f"connection_id={crm.connection_id}"]
    params.append(f"operating_company_id={crm.company_id}")
    out = _cli("--lines", "invoice_lines", *(a for p in params for a in ("--param", p)), url=migrated_url)
    # Nothing to delete (the CRM holds no line Xero dropped); the lost line is back; the other one was unchanged.
    assert "2 statements, rows affected [0, 1]" in out
    assert (
        crm.scalar(
            "SELECT COUNT(*) FROM sales_invoice_line l JOIN sales_invoice d ON d.id = l.sales_invoice_id"
            " WHERE d.operating_company_id = :company_id"
        )
        == 2
    )


# A kind of document the registry does not have: its tables as the registry's conventions and the CRM's line
# shape would make them.
QUOTE_TABLES = """
CREATE TABLE IF NOT EXISTS quote (
    id {{identity}}, operating_company_id BIGINT NOT NULL, accounting_code TEXT,
    do_not_import BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS quote_line (
    id {{identity}}, quote_id BIGINT NOT NULL REFERENCES quote (id) ON DELETE CASCADE, line_no INTEGER NOT NULL,
    line_item_id TEXT, product_id BIGINT REFERENCES product (id), item_code TEXT, description TEXT,
    quantity NUMERIC(19, 4), unit_price NUMERIC(19, 4), discount_rate NUMERIC(19, 4), account_code TEXT,
    tax_type TEXT, tax_amount NUMERIC(19, 4), line_amount NUMERIC(19, 4), tracking {{json}},
    UNIQUE (quote_id, line_no));
CREATE TABLE IF NOT EXISTS val_quotes (
    connection_id INTEGER NOT NULL, xero_id TEXT NOT NULL, last_run_id TEXT NOT NULL,
    PRIMARY KEY (connection_id, xero_id));
CREATE TABLE IF NOT EXISTS val_quote_lines (
    connection_id INTEGER NOT NULL, parent_id TEXT NOT NULL, line_no INTEGER NOT NULL, line_item_id TEXT,
    item_code TEXT, description TEXT, quantity NUMERIC(19, 4), unit_amount NUMERIC(19, 4),
    discount_rate NUMERIC(19, 4), account_code TEXT, tax_type TEXT, tax_amount NUMERIC(19, 4),
    line_amount NUMERIC(19, 4), tracking {{json}}, PRIMARY KEY (connection_id, parent_id, line_no));
"""
UPSERT_QUOTES = """-- the documents' own step; their lines' step is derived from the registry and runs after it
INSERT INTO quote (operating_company_id, accounting_code)
SELECT :operating_company_id, v.xero_id FROM val_quotes v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
  AND NOT EXISTS (SELECT 1 FROM quote q
                  WHERE q.operating_company_id = :operating_company_id AND q.accounting_code = v.xero_id);
"""


def test_a_new_line_entity_in_the_registry_gets_a_working_upsert(crm, tmp_path):
    quotes = replace(entity("invoices"), name="quotes", lines=(line_items("quote_lines", "quote"),))
    (tmp_path / "050_upsert_quotes.sql").write_text(UPSERT_QUOTES)
    steps = transform.primary_steps((quotes,), tmp_path, python_steps={})
    assert [s.name for s in steps] == ["quotes", "quote_lines"]
    crm.run({"items": [item("WIDGET")]})
    widget = crm.scalar("SELECT id FROM product WHERE operating_company_id = :company_id AND code = 'WIDGET'")
    quote_id = gid(f"quote-{crm.tag}")

    def run(run_id: str, lines: list[tuple[int, str | None, float]]) -> list[int]:
        with crm.engine.begin() as conn:
            dialect = conn.dialect.name
            if run_id != "rerun":
                for statement in db.split_statements(migrate.expand_macros(QUOTE_TABLES, dialect)):
                    conn.execute(text(statement))
                conn.execute(
                    text("DELETE FROM val_quote_lines WHERE connection_id = :c"), {"c": crm.connection_id}
                )
                conn.execute(
                    text("DELETE FROM val_quotes WHERE connection_id = :c AND xero_id = :x"),
                    {"c": crm.connection_id, "x": quote_id},
                )
                conn.execute(
                    text("INSERT INTO val_quotes VALUES (:c, :x, :r)"),
                    {"c": crm.connection_id, "x": quote_id, "r": run_id},
                )
                for line_no, code, quantity in lines:
                    conn.execute(
                        text(
                            "INSERT INTO val_quote_lines (connection_id, parent_id, line_no, item_code, quantity,"
                            " unit_amount) VALUES (:c, :x, :n, :code, :q, 10)"
                        ),
                        {"c": crm.connection_id, "x": quote_id, "n": line_no, "code": code, "q": quantity},
                    )
            ctx = transform.ImportContext(
                run_id="run-2" if run_id == "rerun" else run_id, connection_id=crm.connection_id,
                operating_company_id=crm.company_id, role="primary", now=T0, full=False,
                settings=get_company_settings(conn, crm.company_id),
            )  # fmt: skip
            return [step.run(conn, ctx) for step in steps]

    def quote_lines() -> list[tuple]:
        return [
            (r["line_no"], r["item_code"], r["quantity"], r["unit_price"], r["product_id"])
            for r in crm.rows(
                "SELECT l.* FROM quote_line l JOIN quote q ON q.id = l.quote_id"
                " WHERE q.operating_company_id = :company_id ORDER BY l.line_no"
            )
        ]

    assert run("run-1", [(1, "WIDGET", 2), (2, None, 1)]) == [1, 2]
    assert quote_lines() == [(1, "WIDGET", 2, 10, widget), (2, None, 1, 10, None)]
    first_id = crm.scalar("SELECT MIN(l.id) FROM quote_line l JOIN quote q ON q.id = l.quote_id"
                          " WHERE q.operating_company_id = :company_id")  # fmt: skip
    # Xero changed line 1 and dropped line 2: updated in place, the other one deleted.
    assert run("run-2", [(1, "WIDGET", 3)]) == [0, 2]
    assert quote_lines() == [(1, "WIDGET", 3, 10, widget)]
    assert crm.scalar("SELECT id FROM quote_line WHERE quote_id = (SELECT id FROM quote"
                      " WHERE operating_company_id = :company_id)") == first_id  # fmt: skip
    # Rerunning the run changes nothing.
    assert run("rerun", []) == [0, 0]
    assert quote_lines() == [(1, "WIDGET", 3, 10, widget)]
