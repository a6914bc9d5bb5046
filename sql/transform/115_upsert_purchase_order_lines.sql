-- I7: the lines of this run's purchase orders, keyed on (purchase order, line number): a changed line is updated in
-- place, a line Xero no longer has is deleted, an unchanged line is untouched (stable ids, idempotent reruns).
-- The product is the CRM product with the line's item code (a synced one first).
-- Params: :run_id, :connection_id, :operating_company_id.
INSERT INTO purchase_order_line (
    purchase_order_id, line_no, line_item_id, product_id, item_code, description, quantity, unit_price,
    discount_rate, account_code, tax_type, tax_amount, line_amount, tracking)
SELECT d.id, l.line_no, l.line_item_id,
    (SELECT p.id FROM product p
     WHERE p.operating_company_id = :operating_company_id AND p.code = l.item_code
     ORDER BY CASE WHEN p.accounting_code IS NULL THEN 1 ELSE 0 END, p.id LIMIT 1),
    l.item_code, l.description, l.quantity, l.unit_amount, l.discount_rate, l.account_code, l.tax_type,
    l.tax_amount, l.line_amount, l.tracking
FROM val_purchase_order_lines l
JOIN val_purchase_orders v ON v.connection_id = l.connection_id AND v.xero_id = l.parent_id
JOIN purchase_order d ON d.operating_company_id = :operating_company_id AND d.accounting_code = l.parent_id
WHERE l.connection_id = :connection_id AND v.last_run_id = :run_id AND d.do_not_import = FALSE
ON CONFLICT (purchase_order_id, line_no) DO UPDATE SET
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
WHERE (purchase_order_line.line_item_id, purchase_order_line.product_id, purchase_order_line.item_code,
       purchase_order_line.description, purchase_order_line.quantity, purchase_order_line.unit_price,
       purchase_order_line.discount_rate, purchase_order_line.account_code, purchase_order_line.tax_type,
       purchase_order_line.tax_amount, purchase_order_line.line_amount, purchase_order_line.tracking)
      IS DISTINCT FROM
      (excluded.line_item_id, excluded.product_id, excluded.item_code,
       excluded.description, excluded.quantity, excluded.unit_price,
       excluded.discount_rate, excluded.account_code, excluded.tax_type,
       excluded.tax_amount, excluded.line_amount, excluded.tracking);

DELETE FROM purchase_order_line
WHERE purchase_order_id IN (
        SELECT d.id FROM purchase_order d
        JOIN val_purchase_orders v ON v.connection_id = :connection_id AND v.xero_id = d.accounting_code
        WHERE d.operating_company_id = :operating_company_id AND d.do_not_import = FALSE
          AND v.last_run_id = :run_id)
  AND NOT EXISTS (
        SELECT 1 FROM val_purchase_order_lines l
        JOIN purchase_order d ON d.accounting_code = l.parent_id
        WHERE l.connection_id = :connection_id AND d.id = purchase_order_line.purchase_order_id
          AND l.line_no = purchase_order_line.line_no);
