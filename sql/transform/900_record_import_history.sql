-- P8/O2: the import side of the import/export history: one row per CRM record this run created or changed,
-- recognised by last_accounting_import_date = :now (set only when something changed, I14); 'create' when the
-- record was also created at :now. A rerun adds nothing (one row per run and record).
-- Params: :run_id, :connection_id, :operating_company_id, :now.

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'tax_rate', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM tax_rate r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'currency', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM currency r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'sales_ledger', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM sales_ledger r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'purchase_ledger', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM purchase_ledger r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'product', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM product r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'sales_invoice', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM sales_invoice r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'credit_note', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM credit_note r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'purchase_order', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM purchase_order r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'payment', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM payment r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;

INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, run_id, at)
SELECT :connection_id, 'import', 'sales_order', r.id, r.accounting_code,
    CASE WHEN r.created_at = :now THEN 'create' ELSE 'update' END, :run_id, :now
FROM sales_order r
WHERE r.operating_company_id = :operating_company_id AND r.last_accounting_import_date = :now
ON CONFLICT (run_id, direction, record_type, record_id) DO NOTHING;
