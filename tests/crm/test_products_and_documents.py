"""I1 tax rates/currencies (S7), I5 products, I6 stock, I7 invoices, credit notes, purchase orders and lines."""

from __future__ import annotations

from datetime import timedelta

from .helpers import T0, contact, credit_note, gid, invoice, item, line, purchase_order

LATER = T0 + timedelta(hours=1)


def test_tax_rates_and_currencies(crm):
    crm.run(
        {
            "tax_rates": [
                {"TaxType": "OUTPUT2", "Name": "20% (VAT on Income)", "EffectiveRate": 20, "Status": "ACTIVE"}
            ],
            "currencies": [
                {"Code": "GBP", "Description": "British Pound"},
                {"Code": "EUR", "Description": "Euro"},
            ],
        }
    )
    rate = crm.one("SELECT * FROM tax_rate WHERE operating_company_id = :company_id")
    assert (rate["accounting_code"], rate["name"], rate["effective_rate"]) == (
        "OUTPUT2",
        "20% (VAT on Income)",
        20,
    )
    codes = crm.rows(
        "SELECT code, accounting_code FROM currency WHERE operating_company_id = :company_id ORDER BY code"
    )
    assert codes == [{"code": "EUR", "accounting_code": "EUR"}, {"code": "GBP", "accounting_code": "GBP"}]


def test_currency_import_off_imports_no_currency(crm):
    crm.settings(import_currencies=False)
    counts = crm.run({"currencies": [{"Code": "USD", "Description": "US Dollar"}]})
    assert counts["currencies"] == 0
    assert crm.scalar("SELECT COUNT(*) FROM currency WHERE operating_company_id = :company_id") == 0


def test_items_become_products_and_tracked_items_get_stock_in_the_default_warehouse(crm):
    crm.run(
        {
            "items": [
                item("WIDGET", IsTrackedAsInventory=True, QuantityOnHand=12, TotalCostPool=51,
                     PurchaseDetails={"UnitPrice": 4.25, "COGSAccountCode": "310", "TaxType": "INPUT2"},
                     InventoryAssetAccountCode="630"),
                item("SERVICE"),
            ]
        }
    )  # fmt: skip
    widget = crm.one("SELECT * FROM product WHERE operating_company_id = :company_id AND code = 'WIDGET'")
    assert widget["accounting_code"] == gid("WIDGET")
    assert (widget["name"], widget["description"]) == ("WIDGET name", "WIDGET description")
    assert (widget["sell_price"], widget["cost_price"]) == (10.5, 4.25)
    assert (widget["sales_account_code"], widget["purchase_account_code"]) == ("200", "310")
    assert (widget["sales_tax_type"], widget["purchase_tax_type"]) == ("OUTPUT2", "INPUT2")
    assert widget["is_tracked"] in (True, 1)
    stock = crm.rows(
        "SELECT s.quantity_on_hand, w.name, w.is_default FROM stock_level s JOIN warehouse w ON w.id = s.warehouse_id"
        " JOIN product p ON p.id = s.product_id WHERE p.operating_company_id = :company_id"
    )
    assert stock == [{"quantity_on_hand": 12, "name": "Main", "is_default": stock[0]["is_default"]}]
    assert stock[0]["is_default"] in (True, 1)
    # Stock changes in Xero update the one stock row.
    crm.run({"items": [item("WIDGET", IsTrackedAsInventory=True, QuantityOnHand=7, updated=LATER)]})
    assert (
        crm.scalar(
            "SELECT SUM(s.quantity_on_hand) FROM stock_level s JOIN product p ON p.id = s.product_id"
            " WHERE p.operating_company_id = :company_id"
        )
        == 7
    )


def test_an_item_links_to_the_unlinked_product_with_its_code(crm):
    crm.execute(
        "INSERT INTO product (operating_company_id, code, name) VALUES (:company_id, 'GADGET', 'Gadget (CRM)')"
    )
    crm.run({"items": [item("GADGET")]})
    products = crm.rows(
        "SELECT code, name, accounting_code FROM product WHERE operating_company_id = :company_id"
    )
    assert products == [{"code": "GADGET", "name": "GADGET name", "accounting_code": gid("GADGET")}]


def test_a_line_takes_the_synced_product_when_the_crm_has_its_code_twice(crm):
    # Two CRM products share a code: a CRM-only one (the older) and one synced with Xero. A line is linked to the
    # synced one, whichever came first.
    crm.execute(
        "INSERT INTO product (operating_company_id, code, name) VALUES (:company_id, 'DUP', 'CRM only')"
    )
    crm.execute(
        "INSERT INTO product (operating_company_id, code, name, accounting_code)"
        " VALUES (:company_id, 'DUP', 'Synced', :x)",
        x=gid("DUP"),
    )
    crm.run({"contacts": [contact("acme")], "invoices": [invoice("INV-1", "acme", lines=[line("DUP")])]})
    linked = crm.rows(
        "SELECT p.name FROM sales_invoice_line l JOIN product p ON p.id = l.product_id"
        " JOIN sales_invoice d ON d.id = l.sales_invoice_id WHERE d.operating_company_id = :company_id"
    )
    assert linked == [{"name": "Synced"}]


def _invoice(crm, key):
    return crm.one(
        "SELECT * FROM sales_invoice WHERE operating_company_id = :company_id AND accounting_code = :x",
        x=gid(key),
    )


def _lines(crm, table, parent_column, parent_id):
    return crm.rows(f"SELECT * FROM {table} WHERE {parent_column} = :p ORDER BY line_no", p=parent_id)


def test_invoice_with_lines_links_to_customer_and_product(crm):
    crm.run(
        {
            "contacts": [contact("acme", "Acme Ltd")],
            "items": [item("WIDGET")],
            "invoices": [
                invoice("INV-1", "acme", total=250, lines=[line("WIDGET", 2, 100), line(None, 1, 50)])
            ],
        }
    )
    inv = _invoice(crm, "INV-1")
    assert inv["sales_ledger_id"] == crm.ledger("acme")["id"]
    assert (inv["invoice_number"], inv["status"], inv["xero_status"], inv["total"]) == (
        "INV-1",
        "A",
        "AUTHORISED",
        250,
    )
    assert (inv["due_date"], inv["currency_code"]) == ("2026-03-31", "GBP")
    lines = _lines(crm, "sales_invoice_line", "sales_invoice_id", inv["id"])
    product_id = crm.scalar(
        "SELECT id FROM product WHERE operating_company_id = :company_id AND code = 'WIDGET'"
    )
    assert [
        (x["line_no"], x["item_code"], x["quantity"], x["unit_price"], x["product_id"]) for x in lines
    ] == [
        (1, "WIDGET", 2, 100, product_id),
        (2, None, 1, 50, None),
    ]


def test_changed_invoice_replaces_its_lines(crm):
    crm.run(
        {
            "contacts": [contact("acme")],
            "invoices": [invoice("INV-1", "acme", lines=[line("A"), line("B"), line("C")])],
        }
    )
    inv_id = _invoice(crm, "INV-1")["id"]
    first_line_id = _lines(crm, "sales_invoice_line", "sales_invoice_id", inv_id)[0]["id"]
    crm.run(
        {"invoices": [invoice("INV-1", "acme", lines=[line("A"), line("D", 3, 10)], updated=LATER)]},
        now=LATER,
    )
    lines = _lines(crm, "sales_invoice_line", "sales_invoice_id", inv_id)
    assert [(x["item_code"], x["quantity"]) for x in lines] == [("A", 1), ("D", 3)]
    assert lines[0]["id"] == first_line_id  # an unchanged line stays the same row


def test_voided_and_deleted_documents_come_back_with_status_d(crm):
    crm.run(
        {
            "contacts": [contact("acme"), contact("supp", customer=False, supplier=True)],
            "invoices": [invoice("INV-V", "acme"), invoice("INV-X", "acme", status="DRAFT")],
            "credit_notes": [credit_note("CN-1", "acme")],
            "purchase_orders": [purchase_order("PO-1", "supp")],
        }
    )
    assert _invoice(crm, "INV-V")["status"] == "A"
    crm.run(
        {
            "invoices": [invoice("INV-V", "acme", status="VOIDED", updated=LATER),
                         invoice("INV-X", "acme", status="DELETED", updated=LATER)],
            "credit_notes": [credit_note("CN-1", "acme", status="VOIDED", updated=LATER)],
            "purchase_orders": [purchase_order("PO-1", "supp", status="DELETED", updated=LATER)],
        }
    )  # fmt: skip
    assert (_invoice(crm, "INV-V")["status"], _invoice(crm, "INV-V")["xero_status"]) == ("D", "VOIDED")
    assert _invoice(crm, "INV-X")["status"] == "D"
    assert crm.scalar("SELECT status FROM credit_note WHERE operating_company_id = :company_id") == "D"
    assert crm.scalar("SELECT status FROM purchase_order WHERE operating_company_id = :company_id") == "D"


def test_credit_notes_and_purchase_orders_link_to_their_ledgers(crm):
    crm.run(
        {
            "contacts": [contact("acme"), contact("supp", customer=False, supplier=True)],
            "credit_notes": [credit_note("CN-1", "acme"), credit_note("CN-AP", "supp", type="ACCPAYCREDIT")],
            "purchase_orders": [purchase_order("PO-1", "supp", lines=[line("X", 5, 10)])],
        }
    )
    cn = crm.one(
        "SELECT * FROM credit_note WHERE operating_company_id = :company_id"
    )  # ACCPAYCREDIT not imported
    assert (cn["credit_note_number"], cn["sales_ledger_id"], cn["total"]) == (
        "CN-1",
        crm.ledger("acme")["id"],
        20,
    )
    assert len(_lines(crm, "credit_note_line", "credit_note_id", cn["id"])) == 1
    po = crm.one("SELECT * FROM purchase_order WHERE operating_company_id = :company_id")
    assert po["purchase_ledger_id"] == crm.ledger("supp", "purchase_ledger")["id"]
    assert [x["quantity"] for x in _lines(crm, "purchase_order_line", "purchase_order_id", po["id"])] == [5]


def test_bills_are_not_imported(crm):
    crm.run(
        {
            "contacts": [contact("supp", customer=False, supplier=True)],
            "invoices": [invoice("BILL-1", "supp", type="ACCPAY")],
        }
    )
    assert crm.scalar("SELECT COUNT(*) FROM sales_invoice WHERE operating_company_id = :company_id") == 0


def test_invoice_of_a_contact_not_in_the_crm_loads_unlinked_and_links_when_the_customer_arrives(crm):
    crm.run({"invoices": [invoice("INV-1", "later")]})
    inv = _invoice(crm, "INV-1")
    assert (inv["sales_ledger_id"], inv["xero_contact_id"]) == (None, gid("later"))
    crm.run({"contacts": [contact("later", "Later Ltd")]})
    assert _invoice(crm, "INV-1")["sales_ledger_id"] == crm.ledger("later")["id"]


def test_do_not_import_invoice_is_left_alone(crm):
    crm.run({"contacts": [contact("acme")], "invoices": [invoice("INV-1", "acme", total=100)]})
    crm.execute("UPDATE sales_invoice SET do_not_import = TRUE WHERE operating_company_id = :company_id")
    crm.run(
        {
            "invoices": [
                invoice("INV-1", "acme", total=999, status="VOIDED", lines=[line(unit=999)], updated=LATER)
            ]
        }
    )
    inv = _invoice(crm, "INV-1")
    assert (inv["total"], inv["status"]) == (100, "A")
    assert [x["unit_price"] for x in _lines(crm, "sales_invoice_line", "sales_invoice_id", inv["id"])] == [
        100
    ]
