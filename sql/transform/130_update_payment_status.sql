-- I8: the payment status of every sales invoice of the operating company, from Xero's amounts and the due date
-- on :today (so an invoice nobody touched still turns overdue as time passes), then the same on the CRM order
-- the invoice came from.
-- Params: :operating_company_id, :now, :today.
--   paid            Xero says PAID, or nothing is left to pay on a non-zero invoice
--   overdue         an AUTHORISED invoice with something left to pay, past its due date (before partially paid:
--                   a part-paid invoice past due is overdue)
--   partially_paid  something was paid or credited, something is left
--   unpaid          otherwise (drafts included); NULL for voided/deleted invoices (status 'D')
-- became_overdue_at is set once, when an import sees an invoice that was already known turn overdue; it drives
-- the one-time notification (140). An invoice first imported already overdue is flagged but notifies nobody,
-- so a first sync does not flood account managers with old debts.
-- Not an import of Xero data: last_accounting_import_date stays. 090 gives a new invoice its status by the same
-- rule (change both together), so on a first sync this step has nothing to write.
UPDATE sales_invoice
SET payment_status = n.payment_status,
    became_overdue_at = CASE
        WHEN n.payment_status = 'overdue' AND sales_invoice.payment_status IS NOT NULL
             AND sales_invoice.became_overdue_at IS NULL THEN :now
        ELSE sales_invoice.became_overdue_at END
FROM (
    SELECT i.id,
        CASE
            WHEN i.status = 'D' THEN NULL
            WHEN i.xero_status = 'PAID' OR (COALESCE(i.total, 0) <> 0 AND COALESCE(i.amount_due, 0) <= 0) THEN 'paid'
            WHEN i.xero_status = 'AUTHORISED' AND i.due_date < :today AND COALESCE(i.amount_due, 0) > 0 THEN 'overdue'
            WHEN COALESCE(i.amount_paid, 0) + COALESCE(i.amount_credited, 0) > 0 THEN 'partially_paid'
            ELSE 'unpaid'
        END AS payment_status
    FROM sales_invoice i
    WHERE i.operating_company_id = :operating_company_id AND i.do_not_import = FALSE
) n
WHERE sales_invoice.id = n.id AND sales_invoice.payment_status IS DISTINCT FROM n.payment_status;

-- The order (deal) shows its invoice's payment status and is flagged while the invoice is overdue.
UPDATE sales_order
SET payment_status = si.payment_status,
    is_overdue = CASE WHEN si.payment_status = 'overdue' THEN TRUE ELSE FALSE END,
    last_accounting_import_date = :now,
    updated_at = :now
FROM sales_invoice si
WHERE si.operating_company_id = :operating_company_id AND si.accounting_code = sales_order.xero_invoice_id
  -- Only invoices that have an order (few): the unique key finds each, instead of reading every invoice.
  AND si.accounting_code IN (SELECT o.xero_invoice_id FROM sales_order o
                             WHERE o.operating_company_id = :operating_company_id AND o.xero_invoice_id IS NOT NULL)
  AND sales_order.operating_company_id = :operating_company_id AND sales_order.do_not_import = FALSE
  AND (sales_order.payment_status, sales_order.is_overdue)
      IS DISTINCT FROM (si.payment_status, CASE WHEN si.payment_status = 'overdue' THEN TRUE ELSE FALSE END);
