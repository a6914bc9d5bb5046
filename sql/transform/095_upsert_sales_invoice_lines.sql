-- I7: the lines of this run's sales invoices, keyed on (invoice, line number): a changed line is updated in
-- place, a line Xero no longer has is deleted, an unchanged line is untouched (stable ids, idempotent reruns).
-- The product is the CRM product with the line's item code (a synced one first).
-- Params: :run_id, :connection_id, :operating_company_id.
INSERT INTO sales_invoice_line (
    sales_invoice_id, line_no, line_item_id, product_id, item_code, description, quantity, unit_price,
    discount_rate, account_code, tax_type, tax_amount, line_amount, tracking)
SELECT si.id, l.line_no, l.line_item_id,
    (SELECT p.id FROM product p
     WHERE p.operating_company_id = :operating_company_id AND p.code = l.item_code
     ORDER BY CASE WHEN p.accounting_code IS NULL THEN 1 ELSE 0 END, p.id LIMIT 1),
    l.item_code, l.description, l.quantity, l.unit_amount, l.discount_rate, l.account_code, l.tax_type,
    l.tax_amount, l.line_amount, l.tracking
FROM val_invoice_lines l
JOIN val_invoices v ON v.connection_id = l.connection_id AND v.xero_id = l.parent_id
JOIN sales_invoice si ON si.operating_company_id = :operating_company_id AND si.accounting_code = l.parent_id
WHERE l.connection_id = :connection_id AND v.last_run_id = :run_id AND si.do_not_import = FALSE
ON CONFLICT (sales_invoice_id, line_no) DO UPDATE SET
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
WHERE (sales_invoice_line.line_item_id, sales_invoice_line.product_id, sales_invoice_line.item_code,
       sales_invoice_line.description, sales_invoice_line.quantity, sales_invoice_line.unit_price,
       sales_invoice_line.discount_rate, sales_invoice_line.account_code, sales_invoice_line.tax_type,
       sales_invoice_line.tax_amount, sales_invoice_line.line_amount, sales_invoice_line.tracking)
      IS DISTINCT FROM
      (excluded.line_item_id, excluded.product_id, excluded.item_code,
       excluded.description, excluded.quantity, excluded.unit_price,
       excluded.discount_rate, excluded.account_code, excluded.tax_type,
       excluded.tax_amount, excluded.line_amount, excluded.tracking);

DELETE FROM sales_invoice_line
WHERE sales_invoice_id IN (
        SELECT si.id FROM sales_invoice si
        JOIN val_invoices v ON v.connection_id = :connection_id AND v.xero_id = si.accounting_code
        WHERE si.operating_company_id = :operating_company_id AND si.do_not_import = FALSE
          AND v.last_run_id = :run_id)
  AND NOT EXISTS (
        SELECT 1 FROM val_invoice_lines l
        JOIN sales_invoice si ON si.accounting_code = l.parent_id
        WHERE l.connection_id = :connection_id AND si.id = sales_invoice_line.sales_invoice_id
          AND l.line_no = sales_invoice_line.line_no);
