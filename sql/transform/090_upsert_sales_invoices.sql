-- I7: Xero ACCREC invoices -> sales_invoice, keyed on the InvoiceID. Bills (ACCPAY) are not imported: the CRM
-- neither reads nor writes them (seed 000; P5).
-- Params: :run_id, :connection_id, :operating_company_id, :now, :today.
-- status 'D' when Xero says VOIDED or DELETED (CRM reporting leaves them out), else 'A'; xero_status keeps
-- Xero's. The invoice links to its customer through the contact's accounting code; an invoice whose contact is
-- not (yet) a CRM customer is loaded unlinked (xero_contact_id kept) and linked by the second statement once
-- the customer arrives. It also links to the CRM order it was pushed from (sales_order.xero_invoice_id).
-- Unchanged invoices keep their import date; do_not_import invoices are left alone.
-- A new invoice arrives with its payment status (I8), by the rule of 130 (which keeps every invoice's status
-- current afterwards: changed ones, and those that time turns overdue) applied to the same Xero values, so a first
-- sync writes each invoice once instead of twice; tests/crm/test_payments.py checks that 130 then
-- has nothing to change. Its became_overdue_at stays NULL: first imported already overdue notifies nobody (130).
INSERT INTO sales_invoice (
    operating_company_id, accounting_code, sales_ledger_id, sales_order_id, xero_contact_id, invoice_number,
    reference, status, xero_status, line_amount_types, invoice_date, due_date, currency_code, currency_rate,
    sub_total, total_tax, total, total_discount, amount_due, amount_paid, amount_credited, fully_paid_on_date,
    payment_status, last_accounting_import_date, created_at, updated_at)
SELECT :operating_company_id, v.xero_id,
    (SELECT sl.id FROM sales_ledger sl
     WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code = v.contact_id),
    (SELECT so.id FROM sales_order so
     WHERE so.operating_company_id = :operating_company_id AND so.xero_invoice_id = v.xero_id),
    v.contact_id, v.invoice_number, v.reference,
    CASE WHEN v.status IN ('VOIDED', 'DELETED') THEN 'D' ELSE 'A' END, v.status,
    v.line_amount_types, v.date, v.due_date, v.currency_code, v.currency_rate, v.sub_total, v.total_tax, v.total,
    v.total_discount, v.amount_due, v.amount_paid, v.amount_credited, v.fully_paid_on_date,
    CASE
        WHEN v.status IN ('VOIDED', 'DELETED') THEN NULL
        WHEN v.status = 'PAID' OR (COALESCE(v.total, 0) <> 0 AND COALESCE(v.amount_due, 0) <= 0) THEN 'paid'
        WHEN v.status = 'AUTHORISED' AND v.due_date < :today AND COALESCE(v.amount_due, 0) > 0 THEN 'overdue'
        WHEN COALESCE(v.amount_paid, 0) + COALESCE(v.amount_credited, 0) > 0 THEN 'partially_paid'
        ELSE 'unpaid'
    END,
    :now, :now, :now
FROM val_invoices v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.type = 'ACCREC'
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    sales_ledger_id = excluded.sales_ledger_id,
    sales_order_id = COALESCE(excluded.sales_order_id, sales_invoice.sales_order_id),
    xero_contact_id = excluded.xero_contact_id,
    invoice_number = excluded.invoice_number,
    reference = excluded.reference,
    status = excluded.status,
    xero_status = excluded.xero_status,
    line_amount_types = excluded.line_amount_types,
    invoice_date = excluded.invoice_date,
    due_date = excluded.due_date,
    currency_code = excluded.currency_code,
    currency_rate = excluded.currency_rate,
    sub_total = excluded.sub_total,
    total_tax = excluded.total_tax,
    total = excluded.total,
    total_discount = excluded.total_discount,
    amount_due = excluded.amount_due,
    amount_paid = excluded.amount_paid,
    amount_credited = excluded.amount_credited,
    fully_paid_on_date = excluded.fully_paid_on_date,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE sales_invoice.do_not_import = FALSE
  AND (sales_invoice.sales_ledger_id, sales_invoice.xero_contact_id, sales_invoice.invoice_number,
       sales_invoice.reference, sales_invoice.status, sales_invoice.xero_status, sales_invoice.line_amount_types,
       sales_invoice.invoice_date, sales_invoice.due_date, sales_invoice.currency_code, sales_invoice.currency_rate,
       sales_invoice.sub_total, sales_invoice.total_tax, sales_invoice.total, sales_invoice.total_discount,
       sales_invoice.amount_due, sales_invoice.amount_paid, sales_invoice.amount_credited,
       sales_invoice.fully_paid_on_date)
      IS DISTINCT FROM
      (excluded.sales_ledger_id, excluded.xero_contact_id, excluded.invoice_number,
       excluded.reference, excluded.status, excluded.xero_status, excluded.line_amount_types,
       excluded.invoice_date, excluded.due_date, excluded.currency_code, excluded.currency_rate,
       excluded.sub_total, excluded.total_tax, excluded.total, excluded.total_discount,
       excluded.amount_due, excluded.amount_paid, excluded.amount_credited,
       excluded.fully_paid_on_date);

-- Invoices loaded before their customer existed in the CRM link up as soon as it does (any run).
UPDATE sales_invoice
SET sales_ledger_id = (SELECT sl.id FROM sales_ledger sl
                       WHERE sl.operating_company_id = sales_invoice.operating_company_id
                         AND sl.accounting_code = sales_invoice.xero_contact_id)
WHERE operating_company_id = :operating_company_id AND sales_ledger_id IS NULL AND do_not_import = FALSE
  AND EXISTS (SELECT 1 FROM sales_ledger sl
              WHERE sl.operating_company_id = sales_invoice.operating_company_id
                AND sl.accounting_code = sales_invoice.xero_contact_id);

-- An order pushed after its invoice was first imported (or whose InvoiceID was recorded late) links too.
UPDATE sales_invoice
SET sales_order_id = (SELECT so.id FROM sales_order so
                      WHERE so.operating_company_id = sales_invoice.operating_company_id
                        AND so.xero_invoice_id = sales_invoice.accounting_code)
WHERE operating_company_id = :operating_company_id AND sales_order_id IS NULL
  -- Driven by the orders that have an invoice (few), not by every invoice (the unique key finds each).
  AND accounting_code IN (SELECT so.xero_invoice_id FROM sales_order so
                          WHERE so.operating_company_id = :operating_company_id AND so.xero_invoice_id IS NOT NULL);
