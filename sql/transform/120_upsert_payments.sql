-- I8: Xero receivable payments -> payment, keyed on the PaymentID, linked to the CRM sales invoice or credit
-- note they pay (loaded unlinked, and linked later, when that document is not in the CRM yet). Payments on
-- bills (ACCPAY invoices, or AP* payment types) are not imported, like the bills. A payment deleted in Xero stays,
-- marked is_deleted. Unchanged payments keep their import date; do_not_import ones are left alone.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
INSERT INTO payment (
    operating_company_id, accounting_code, sales_invoice_id, credit_note_id, xero_invoice_id, xero_credit_note_id,
    payment_date, amount, currency_rate, payment_type, reference, is_reconciled, xero_status, is_deleted,
    last_accounting_import_date, created_at, updated_at)
SELECT :operating_company_id, v.xero_id,
    (SELECT si.id FROM sales_invoice si
     WHERE si.operating_company_id = :operating_company_id AND si.accounting_code = v.invoice_id),
    (SELECT cn.id FROM credit_note cn
     WHERE cn.operating_company_id = :operating_company_id AND cn.accounting_code = v.credit_note_id),
    v.invoice_id, v.credit_note_id, v.date, v.amount, v.currency_rate, v.payment_type, v.reference, v.is_reconciled,
    v.status, CASE WHEN v.status = 'DELETED' THEN TRUE ELSE FALSE END,
    :now, :now, :now
FROM val_payments v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
  AND COALESCE(v.payment_type, '') NOT IN ('ACCPAYPAYMENT', 'APCREDITPAYMENT', 'APOVERPAYMENTPAYMENT',
                                           'APPREPAYMENTPAYMENT')
  AND NOT EXISTS (SELECT 1 FROM val_invoices i
                  WHERE i.connection_id = :connection_id AND i.xero_id = v.invoice_id AND i.type = 'ACCPAY')
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    sales_invoice_id = excluded.sales_invoice_id,
    credit_note_id = excluded.credit_note_id,
    xero_invoice_id = excluded.xero_invoice_id,
    xero_credit_note_id = excluded.xero_credit_note_id,
    payment_date = excluded.payment_date,
    amount = excluded.amount,
    currency_rate = excluded.currency_rate,
    payment_type = excluded.payment_type,
    reference = excluded.reference,
    is_reconciled = excluded.is_reconciled,
    xero_status = excluded.xero_status,
    is_deleted = excluded.is_deleted,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE payment.do_not_import = FALSE
  AND (payment.sales_invoice_id, payment.credit_note_id, payment.xero_invoice_id, payment.xero_credit_note_id,
       payment.payment_date, payment.amount, payment.currency_rate, payment.payment_type, payment.reference,
       payment.is_reconciled, payment.xero_status, payment.is_deleted)
      IS DISTINCT FROM
      (excluded.sales_invoice_id, excluded.credit_note_id, excluded.xero_invoice_id, excluded.xero_credit_note_id,
       excluded.payment_date, excluded.amount, excluded.currency_rate, excluded.payment_type, excluded.reference,
       excluded.is_reconciled, excluded.xero_status, excluded.is_deleted);

UPDATE payment
SET sales_invoice_id = (SELECT si.id FROM sales_invoice si
                        WHERE si.operating_company_id = payment.operating_company_id
                          AND si.accounting_code = payment.xero_invoice_id)
WHERE operating_company_id = :operating_company_id AND sales_invoice_id IS NULL AND xero_invoice_id IS NOT NULL
  AND do_not_import = FALSE
  AND EXISTS (SELECT 1 FROM sales_invoice si
              WHERE si.operating_company_id = payment.operating_company_id
                AND si.accounting_code = payment.xero_invoice_id);

UPDATE payment
SET credit_note_id = (SELECT cn.id FROM credit_note cn
                      WHERE cn.operating_company_id = payment.operating_company_id
                        AND cn.accounting_code = payment.xero_credit_note_id)
WHERE operating_company_id = :operating_company_id AND credit_note_id IS NULL AND xero_credit_note_id IS NOT NULL
  AND do_not_import = FALSE
  AND EXISTS (SELECT 1 FROM credit_note cn
              WHERE cn.operating_company_id = payment.operating_company_id
                AND cn.accounting_code = payment.xero_credit_note_id);
