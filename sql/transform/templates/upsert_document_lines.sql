-- I7: the lines of this run's documents of one kind (sales invoices, credit notes, purchase orders), keyed on
-- (document, line number): a changed line is updated in place, a line Xero no longer has is deleted, an unchanged
-- line is untouched (stable ids, idempotent reruns). The product is the CRM product with the line's item code (a
-- synced one first).
--
-- A template: the import renders it once per registry line entity that names its CRM tables
-- (entities.line_items(name, crm_document_table): invoice_lines, credit_note_lines, purchase_order_lines) and runs
-- it right after the step that loads the documents. Only these table and column names are substituted, from the
-- registry and checked to be plain identifiers; every value stays a bound parameter.
--   {{document_table}}       the CRM documents, e.g. sales_invoice (keyed on operating_company_id, accounting_code)
--   {{line_table}}           their CRM lines, e.g. sales_invoice_line (unique on document_id, line_no)
--   {{document_id}}          the line table's reference to its document, e.g. sales_invoice_id
--   {{validated_documents}}  the validated mirror of the Xero documents, e.g. val_invoices
--   {{validated_lines}}      the validated mirror of their LineItems, e.g. val_invoice_lines
-- Print the SQL for one line entity, or run it by hand (in one transaction, like the `sql` command runs a file):
--   .venv/bin/python -m xero_crm_sync sql --show-lines invoice_lines
--   .venv/bin/python -m xero_crm_sync sql --lines invoice_lines --param run_id=R --param connection_id=1 \
--       --param operating_company_id=1
-- Params: :run_id, :connection_id, :operating_company_id.
-- First the lines Xero no longer has, then the upsert: deleted after it, every line just inserted was looked up in
-- the mirror again (a first sync's 800,000 invoice lines: ~2 s on SQLite); before it, only the lines the CRM
-- already held for these documents are (issue 13).
DELETE FROM {{line_table}}
WHERE {{document_id}} IN (
        SELECT d.id FROM {{document_table}} d
        JOIN {{validated_documents}} v ON v.connection_id = :connection_id AND v.xero_id = d.accounting_code
        WHERE d.operating_company_id = :operating_company_id AND d.do_not_import = FALSE
          AND v.last_run_id = :run_id)
  AND NOT EXISTS (
        SELECT 1 FROM {{validated_lines}} l
        JOIN {{document_table}} d ON d.accounting_code = l.parent_id
        WHERE l.connection_id = :connection_id AND d.id = {{line_table}}.{{document_id}}
          AND l.line_no = {{line_table}}.line_no);

INSERT INTO {{line_table}} (
    {{document_id}}, line_no, line_item_id, product_id, item_code, description, quantity, unit_price,
    discount_rate, account_code, tax_type, tax_amount, line_amount, tracking)
SELECT d.id, l.line_no, l.line_item_id,
    (SELECT p.id FROM product p
     WHERE p.operating_company_id = :operating_company_id AND p.code = l.item_code
     ORDER BY CASE WHEN p.accounting_code IS NULL THEN 1 ELSE 0 END, p.id LIMIT 1),
    l.item_code, l.description, l.quantity, l.unit_amount, l.discount_rate, l.account_code, l.tax_type,
    l.tax_amount, l.line_amount, l.tracking
FROM {{validated_lines}} l
JOIN {{validated_documents}} v ON v.connection_id = l.connection_id AND v.xero_id = l.parent_id
JOIN {{document_table}} d ON d.operating_company_id = :operating_company_id AND d.accounting_code = l.parent_id
WHERE l.connection_id = :connection_id AND v.last_run_id = :run_id AND d.do_not_import = FALSE
ON CONFLICT ({{document_id}}, line_no) DO UPDATE SET
    line_item_id = excluded.line_item_id,
    product_id = excluded.product_id,
    item_code = excluded.item_code,
    description = excluded.description,
    quantity = excluded.quantity,
    unit_price = excluded.unit_price,
    discount_rate = excluded.discount_rate,
    account_code = excluded.account_code,
    tax_type = excluded.tax_type,
    tax_amount = excluded.tax_amount,
    line_amount = excluded.line_amount,
    tracking = excluded.tracking
WHERE ({{line_table}}.line_item_id, {{line_table}}.product_id, {{line_table}}.item_code,
       {{line_table}}.description, {{line_table}}.quantity, {{line_table}}.unit_price,
       {{line_table}}.discount_rate, {{line_table}}.account_code, {{line_table}}.tax_type,
       {{line_table}}.tax_amount, {{line_table}}.line_amount, {{line_table}}.tracking)
      IS DISTINCT FROM
      (excluded.line_item_id, excluded.product_id, excluded.item_code,
       excluded.description, excluded.quantity, excluded.unit_price,
       excluded.discount_rate, excluded.account_code, excluded.tax_type,
       excluded.tax_amount, excluded.line_amount, excluded.tracking);
