"""The import's step list is derived from sql/transform/ and the entity registry, in the order it always ran; the
document lines template renders table names from the registry only, and refuses anything but plain names."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace

import pytest

from xero_crm_sync import db, echo, import_run, migrate, transform
from xero_crm_sync.entities import ENTITIES, entity, line_items

# The order the import has always run in, when each step was listed by hand: the names are the keys of the counts
# every run records (sync_run.counts), and each step reads what the ones before it wrote.
EXPECTED_PRIMARY = [
    "tax_rates", "currencies", "roles_from_transactions", "link_existing_ledgers", "ambiguous_matches",
    "sales_ledgers", "purchase_ledgers", "classify_b2c", "missing_customer_records", "missing_supplier_records",
    "link_existing_products", "products", "stock_levels", "sales_invoices", "sales_invoice_lines", "credit_notes",
    "credit_note_lines", "purchase_orders", "purchase_order_lines", "payments", "payment_status",
    "overdue_notifications", "adopt_imported_customers", "adopt_imported_products", "history",
]  # fmt: skip


def test_the_derived_steps_run_in_the_order_they_always_did() -> None:
    assert [s.name for s in transform.PRIMARY_STEPS] == EXPECTED_PRIMARY
    assert [s.name for s in transform.SECONDARY_STEPS] == ["enrich_from_secondary", "history"]
    sources = {s.name: s.source for s in transform.PRIMARY_STEPS}
    assert sources["currencies"] == "sql/transform/020_upsert_currencies.sql"
    assert (
        sources["credit_note_lines"]
        == "sql/transform/templates/upsert_document_lines.sql (credit_note_lines)"
    )


def test_every_document_line_entity_of_the_registry_is_loaded_and_contact_persons_are_not() -> None:
    assert list(transform.loaded_lines()) == ["invoice_lines", "credit_note_lines", "purchase_order_lines"]


def test_the_secondary_organisation_reads_what_the_registry_marks() -> None:
    assert [e.name for e in import_run.entities_for("secondary")] == ["tracking_categories", "contacts"]
    assert import_run.entities_for("primary") == ENTITIES


def test_the_template_renders_each_line_entity_from_the_registry() -> None:
    sql = transform.document_lines_sql(entity("purchase_orders"), entity("purchase_orders").lines[0])
    statements = db.split_statements(sql)
    assert [db.tables_written(s) for s in statements] == [["purchase_order_line"], ["purchase_order_line"]]
    body = "\n".join(statements)
    for name in (
        "purchase_order_id",
        "val_purchase_orders",
        "val_purchase_order_lines",
        "JOIN purchase_order d",
    ):
        assert name in body
    assert "{{" not in body and "invoice" not in body
    # Values stay bound parameters.
    assert db.parameter_names(body) == {"run_id", "connection_id", "operating_company_id"}


@pytest.mark.parametrize(
    "bad", ["sales_invoice; DROP TABLE product", "Sales_Invoice", 'sales_invoice"', "sales invoice"]
)
def test_the_template_refuses_anything_but_a_plain_table_name(bad: str) -> None:
    invoices = entity("invoices")
    lines = replace(line_items("invoice_lines", "sales_invoice"), crm_document_table=bad)
    with pytest.raises(ValueError, match="plain SQL name"):
        transform.document_lines_sql(invoices, lines)


def test_a_placeholder_without_a_value_is_an_error_naming_the_template() -> None:
    with pytest.raises(KeyError, match="upsert_x.sql: no value for {{line_table}}"):
        db.render_template("DELETE FROM {{line_table}}", {}, source="upsert_x.sql")
    # Comment lines document placeholders and are left alone.
    assert db.render_template("-- {{line_table}}\nSELECT 1", {}) == "-- {{line_table}}\nSELECT 1"


def test_lines_whose_documents_no_step_writes_stop_the_import_from_starting(tmp_path) -> None:
    quotes = replace(entity("invoices"), name="quotes", lines=(line_items("quote_lines", "quote"),))
    (tmp_path / "010_upsert_something.sql").write_text("UPDATE product SET name = name WHERE id = 0;\n")
    with pytest.raises(RuntimeError, match="quote_lines"):
        transform.primary_steps((quotes,), tmp_path, python_steps={})


def test_each_step_knows_the_entities_it_reads_from_its_sql_and_the_views_it_names() -> None:
    reads = {s.name: s.reads for s in transform.PRIMARY_STEPS}
    assert reads["roles_from_transactions"] == {"contacts", "invoices", "credit_notes", "purchase_orders"}
    assert reads["sales_invoice_lines"] == {"invoices"}
    assert reads["payments"] >= {"payments"}
    assert reads["history"] == frozenset()  # CRM tables only
    # Through a view (sql/views/020_push_product_fields.sql reads val_items).
    assert transform.entities_read("SELECT id FROM push_product_mirror") == {"items"}
    assert transform.entities_read("SELECT 1 FROM sales_invoice") == frozenset()


def test_the_steps_that_may_load_ahead_are_the_leading_ones_whose_entities_are_settled() -> None:
    every = {e.name for e in ENTITIES}
    ahead = [s.name for s in transform.ready_ahead(transform.PRIMARY_STEPS, every - {"payments"})]
    assert ahead == EXPECTED_PRIMARY[: EXPECTED_PRIMARY.index("payments")]
    # Invoices unread: the roles step needs them, so nothing after it runs ahead either (leading steps only).
    ahead = [s.name for s in transform.ready_ahead(transform.PRIMARY_STEPS, every - {"invoices"})]
    assert ahead == ["tax_rates", "currencies"]
    # Everything settled: every step but the history, which each load (ahead or not) runs last.
    assert [s.name for s in transform.ready_ahead(transform.PRIMARY_STEPS, every)] == EXPECTED_PRIMARY[:-1]
    # A step that does not say what it reads never runs ahead.
    unknown = transform.Step("unknown", lambda conn, ctx: 0)
    assert transform.ready_ahead([transform.PRIMARY_STEPS[0], unknown], every) == [transform.PRIMARY_STEPS[0]]


def _text_of(step: transform.Step) -> str:
    """What a step runs, as text: its SQL (a rendered template for the lines), or its Python and the SQL it runs."""
    if step.source.startswith("sql/transform/templates/"):
        name = step.source.split("(")[1].rstrip(")")
        document, lines = transform.loaded_lines()[name]
        return transform.document_lines_sql(document, lines)
    if step.source.startswith("sql/"):
        return (db.SQL_DIR.parent / step.source).read_text()
    body = inspect.getsource(step.run)
    return body + "".join(db.read_sql(path) for path in echo.ADOPT_SQL.values() if path.name == step.source)


def test_only_the_document_lines_may_commit_beside_the_later_steps_and_no_later_step_reads_them() -> None:
    steps = transform.PRIMARY_STEPS
    assert [s.name for s in steps if s.detachable] == [
        "sales_invoice_lines", "credit_note_lines", "purchase_order_lines"
    ]  # fmt: skip
    views = {name.lower(): body.lower() for name, body in migrate.view_definitions().items()}
    identifiers = re.compile(r"[a-z_][a-z0-9_]*")
    for index, step in enumerate(steps):
        if not step.detachable:
            continue
        written = set(db.tables_written(_text_of(step)))
        assert written == {step.name.removesuffix("s")}
        for later in steps[index + 1 :]:
            text = re.sub(r"--[^\n]*", "", _text_of(later)).lower()  # what it runs, not its comments
            named = set(identifiers.findall(text))
            for view in named & views.keys():  # through a view it names
                named |= set(identifiers.findall(views[view]))
            assert not named & written, (
                f"{later.name} reads {sorted(named & written)}, written by {step.name}"
            )


def test_the_detachable_steps_ready_ahead_are_those_not_done() -> None:
    every = {e.name for e in ENTITIES}
    assert transform.detachable_ahead(every - {"payments"}) == [
        "sales_invoice_lines", "credit_note_lines", "purchase_order_lines"
    ]  # fmt: skip
    assert transform.detachable_ahead(every - {"invoices"}) == []  # the roles step needs the invoices
    assert transform.detachable_ahead(every, done={"sales_invoice_lines"}) == [
        "credit_note_lines", "purchase_order_lines"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="payments is not a step that may run on its own"):
        transform.run_detached(None, "payments", run_id="r", connection_id=1, now=None, full=True)  # type: ignore[arg-type]


def test_the_counts_of_a_load_in_pieces_come_in_step_order_with_one_history() -> None:
    ahead = {
        "tax_rates": 1,
        "sales_invoices": 2,
        "history": 3,
        "purchase_order_lines": 4,
        "sales_invoice_lines": 5,
    }
    rest = {"payments": 6, "history": 7}
    assert list(transform.merge_counts(ahead, rest).items()) == [
        ("tax_rates", 1), ("sales_invoices", 2), ("sales_invoice_lines", 5), ("purchase_order_lines", 4),
        ("payments", 6), ("history", 10),
    ]  # fmt: skip
