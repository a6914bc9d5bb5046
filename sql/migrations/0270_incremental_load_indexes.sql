-- Issue 13: an incremental import's load touched every invoice of the company in five statements, whatever the run
-- brought (100,000 contacts, SQLite: about 1.5 s of a 1%-changed run). Each of those statements only wants a few
-- rows, and these indexes name them:
-- - invoices not yet linked to a sales ledger (090 links them once the customer arrives);
-- - invoices that turned overdue under our watch (140 notifies their account managers once);
-- - what this run wrote (900 records the run's history by `last_accounting_import_date = :now`).
-- Partial indexes: the same syntax and meaning on SQLite and PostgreSQL.
CREATE INDEX IF NOT EXISTS ix_sales_invoice_no_ledger ON sales_invoice (operating_company_id)
    WHERE sales_ledger_id IS NULL;
CREATE INDEX IF NOT EXISTS ix_sales_invoice_became_overdue ON sales_invoice (operating_company_id)
    WHERE became_overdue_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_sales_invoice_imported ON sales_invoice (operating_company_id, last_accounting_import_date);
CREATE INDEX IF NOT EXISTS ix_sales_ledger_imported ON sales_ledger (operating_company_id, last_accounting_import_date);
