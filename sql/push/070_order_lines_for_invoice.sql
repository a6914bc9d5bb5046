-- P6: the lines of one order, in order, with what the line leaves empty taken from its product: item code,
-- description (else the product's description, else its name), sales tax type and sales account code.
-- product_in_xero says whether the product is in Xero yet (an unknown ItemCode is rejected by Xero).
-- Params: :order_id.
SELECT l.line_no,
    COALESCE(l.item_code, p.code) AS item_code,
    COALESCE(l.description, p.description, p.name) AS description,
    l.quantity, l.unit_price,
    COALESCE(l.tax_type, p.sales_tax_type) AS tax_type,
    l.discount_rate,
    COALESCE(l.account_code, p.sales_account_code) AS account_code,
    l.product_id,
    CASE WHEN l.product_id IS NULL OR p.accounting_code IS NOT NULL THEN TRUE ELSE FALSE END AS product_in_xero
FROM sales_order_line l
LEFT JOIN product p ON p.id = l.product_id
WHERE l.sales_order_id = :order_id
ORDER BY l.line_no;
