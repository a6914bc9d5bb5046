-- I1/S7: Xero currencies -> currency, keyed on the code (a currency a CRM user created first is linked, not
-- duplicated). transform.py skips this file when the operating company turned currency import off (S7).
-- Params: :run_id, :connection_id, :operating_company_id, :now.
INSERT INTO currency (operating_company_id, code, accounting_code, description, last_accounting_import_date, created_at)
SELECT :operating_company_id, v.code, v.xero_id, v.description, :now, :now
FROM val_currencies v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
ON CONFLICT (operating_company_id, code) DO UPDATE SET
    accounting_code = excluded.accounting_code,
    description = excluded.description,
    last_accounting_import_date = excluded.last_accounting_import_date
WHERE currency.do_not_import = FALSE
  AND (currency.accounting_code, currency.description) IS DISTINCT FROM (excluded.accounting_code, excluded.description);
