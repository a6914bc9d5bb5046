-- I7: Xero customer credit notes (ACCRECCREDIT) -> credit_note, keyed on the CreditNoteID. Supplier credit notes
-- (ACCPAYCREDIT) belong with bills and are not imported.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
-- status 'D' when VOIDED or DELETED, else 'A'. Linked to the customer through the contact's accounting code;
-- loaded unlinked (and linked later) when the contact is not a CRM customer yet. Unchanged credit notes keep
-- their import date; do_not_import ones are left alone.
INSERT INTO credit_note (
    operating_company_id, accounting_code, sales_ledger_id, xero_contact_id, credit_note_number, reference, status,
    xero_status, line_amount_types, credit_note_date, currency_code, currency_rate, sub_total, total_tax, total,
    remaining_credit, last_accounting_import_date, created_at, updated_at)
SELECT :operating_company_id, v.xero_id,
    (SELECT sl.id FROM sales_ledger sl
     WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code = v.contact_id),
    v.contact_id, v.credit_note_number, v.reference,
    CASE WHEN v.status IN ('VOIDED', 'DELETED') THEN 'D' ELSE 'A' END, v.status,
    v.line_amount_types, v.date, v.currency_code, v.currency_rate, v.sub_total, v.total_tax, v.total,
    v.remaining_credit, :now, :now, :now
FROM val_credit_notes v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.type = 'ACCRECCREDIT'
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    sales_ledger_id = excluded.sales_ledger_id,
    xero_contact_id = excluded.xero_contact_id,
    credit_note_number = excluded.credit_note_number,
    reference = excluded.reference,
    status = excluded.status,
    xero_status = excluded.xero_status,
    line_amount_types = excluded.line_amount_types,
    credit_note_date = excluded.credit_note_date,
    currency_code = excluded.currency_code,
    currency_rate = excluded.currency_rate,
    sub_total = excluded.sub_total,
    total_tax = excluded.total_tax,
    total = excluded.total,
    remaining_credit = excluded.remaining_credit,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE credit_note.do_not_import = FALSE
  AND (credit_note.sales_ledger_id, credit_note.xero_contact_id, credit_note.credit_note_number,
       credit_note.reference, credit_note.status, credit_note.xero_status, credit_note.line_amount_types,
       credit_note.credit_note_date, credit_note.currency_code, credit_note.currency_rate, credit_note.sub_total,
       credit_note.total_tax, credit_note.total, credit_note.remaining_credit)
      IS DISTINCT FROM
      (excluded.sales_ledger_id, excluded.xero_contact_id, excluded.credit_note_number,
       excluded.reference, excluded.status, excluded.xero_status, excluded.line_amount_types,
       excluded.credit_note_date, excluded.currency_code, excluded.currency_rate, excluded.sub_total,
       excluded.total_tax, excluded.total, excluded.remaining_credit);

UPDATE credit_note
SET sales_ledger_id = (SELECT sl.id FROM sales_ledger sl
                       WHERE sl.operating_company_id = credit_note.operating_company_id
                         AND sl.accounting_code = credit_note.xero_contact_id)
WHERE operating_company_id = :operating_company_id AND sales_ledger_id IS NULL AND do_not_import = FALSE
  AND EXISTS (SELECT 1 FROM sales_ledger sl
              WHERE sl.operating_company_id = credit_note.operating_company_id
                AND sl.accounting_code = credit_note.xero_contact_id);
