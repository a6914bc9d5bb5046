-- P6: one confirmed order as the Draft ACCREC invoice needs it: its customer (and whether the customer is in Xero
-- yet), currency (the order's, else the customer's), customer reference, delivery charge and the invoice's date
-- (the order date, else the day it was confirmed).
-- Params: :order_id.
SELECT o.id, o.operating_company_id, o.order_number, o.status, o.customer_reference,
    COALESCE(o.currency_code, sl.currency_code) AS currency_code, o.delivery_charge, o.order_date,
    o.confirmed_at, o.xero_invoice_id, o.do_not_export, o.created_at,
    sl.id AS sales_ledger_id, sl.name AS customer_name, sl.accounting_code AS contact_id,
    sl.do_not_export AS customer_do_not_export
FROM sales_order o
LEFT JOIN sales_ledger sl ON sl.id = o.sales_ledger_id
WHERE o.id = :order_id;
