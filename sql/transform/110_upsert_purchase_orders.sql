-- I7: Xero purchase orders -> purchase_order, keyed on the PurchaseOrderID, linked to the supplier (purchase
-- ledger) through the contact's accounting code; loaded unlinked (and linked later) when the contact is not a
-- CRM supplier yet.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
-- status 'D' when DELETED (Xero's only cancelled state for purchase orders; VOIDED accepted too), else 'A'.
-- Unchanged orders keep their import date; do_not_import ones are left alone.
INSERT INTO purchase_order (
    operating_company_id, accounting_code, purchase_ledger_id, xero_contact_id, purchase_order_number, reference,
    status, xero_status, line_amount_types, order_date, delivery_date, currency_code, currency_rate, sub_total,
    total_tax, total, last_accounting_import_date, created_at, updated_at)
SELECT :operating_company_id, v.xero_id,
    (SELECT pl.id FROM purchase_ledger pl
     WHERE pl.operating_company_id = :operating_company_id AND pl.accounting_code = v.contact_id),
    v.contact_id, v.purchase_order_number, v.reference,
    CASE WHEN v.status IN ('VOIDED', 'DELETED') THEN 'D' ELSE 'A' END, v.status,
    v.line_amount_types, v.date, v.delivery_date, v.currency_code, v.currency_rate, v.sub_total, v.total_tax,
    v.total, :now, :now, :now
FROM val_purchase_orders v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    purchase_ledger_id = excluded.purchase_ledger_id,
    xero_contact_id = excluded.xero_contact_id,
    purchase_order_number = excluded.purchase_order_number,
    reference = excluded.reference,
    status = excluded.status,
    xero_status = excluded.xero_status,
    line_amount_types = excluded.line_amount_types,
    order_date = excluded.order_date,
    delivery_date = excluded.delivery_date,
    currency_code = excluded.currency_code,
    currency_rate = excluded.currency_rate,
    sub_total = excluded.sub_total,
    total_tax = excluded.total_tax,
    total = excluded.total,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE purchase_order.do_not_import = FALSE
  AND (purchase_order.purchase_ledger_id, purchase_order.xero_contact_id, purchase_order.purchase_order_number,
       purchase_order.reference, purchase_order.status, purchase_order.xero_status,
       purchase_order.line_amount_types, purchase_order.order_date, purchase_order.delivery_date,
       purchase_order.currency_code, purchase_order.currency_rate, purchase_order.sub_total,
       purchase_order.total_tax, purchase_order.total)
      IS DISTINCT FROM
      (excluded.purchase_ledger_id, excluded.xero_contact_id, excluded.purchase_order_number,
       excluded.reference, excluded.status, excluded.xero_status,
       excluded.line_amount_types, excluded.order_date, excluded.delivery_date,
       excluded.currency_code, excluded.currency_rate, excluded.sub_total,
       excluded.total_tax, excluded.total);

UPDATE purchase_order
SET purchase_ledger_id = (SELECT pl.id FROM purchase_ledger pl
                          WHERE pl.operating_company_id = purchase_order.operating_company_id
                            AND pl.accounting_code = purchase_order.xero_contact_id)
WHERE operating_company_id = :operating_company_id AND purchase_ledger_id IS NULL AND do_not_import = FALSE
  AND EXISTS (SELECT 1 FROM purchase_ledger pl
              WHERE pl.operating_company_id = purchase_order.operating_company_id
                AND pl.accounting_code = purchase_order.xero_contact_id);
