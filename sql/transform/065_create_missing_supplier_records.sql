-- I4 (S3 "suppliers included"): the same for suppliers imported in this run, when :include_suppliers.
-- Params: :run_id, :connection_id, :operating_company_id, :now, :missing_records_mode, :include_suppliers,
--         :default_account_manager_id, :default_role_code, :default_company_type_id.
-- A supplier that is also a customer first takes the company, division and contact of its sales ledger; only
-- what is still missing is created (keyed on the ContactID like 060, so shared rather than duplicated).
-- One UPDATE links all three at the end.

-- A company only where neither the supplier nor its customer side (060) has one.
INSERT INTO company (operating_company_id, name, company_type_id, account_manager_id, source, source_accounting_code,
    created_at)
SELECT pl.operating_company_id, pl.name, CAST(:default_company_type_id AS INTEGER),
    CAST(:default_account_manager_id AS BIGINT), 'xero_import', pl.accounting_code, :now
FROM purchase_ledger pl
LEFT JOIN sales_ledger sl ON sl.operating_company_id = pl.operating_company_id AND sl.accounting_code = pl.accounting_code
WHERE pl.operating_company_id = :operating_company_id AND pl.company_id IS NULL AND pl.do_not_import = FALSE
  AND sl.company_id IS NULL
  AND pl.accounting_code IN (SELECT v.xero_id FROM val_contacts v
                             WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND :include_suppliers = TRUE
  AND (:missing_records_mode = 'all' OR pl.status = 'Active')
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

INSERT INTO division (operating_company_id, company_id, name, source, source_accounting_code, created_at)
SELECT pl.operating_company_id, COALESCE(pl.company_id, sl.company_id, c.id), pl.name, 'xero_import', pl.accounting_code,
    :now
FROM purchase_ledger pl
LEFT JOIN sales_ledger sl ON sl.operating_company_id = pl.operating_company_id AND sl.accounting_code = pl.accounting_code
LEFT JOIN company c ON c.operating_company_id = pl.operating_company_id AND c.source_accounting_code = pl.accounting_code
WHERE pl.operating_company_id = :operating_company_id AND pl.division_id IS NULL AND pl.do_not_import = FALSE
  AND sl.division_id IS NULL AND COALESCE(pl.company_id, sl.company_id, c.id) IS NOT NULL
  AND pl.accounting_code IN (SELECT v.xero_id FROM val_contacts v
                             WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND :include_suppliers = TRUE
  AND (:missing_records_mode = 'all' OR pl.status = 'Active')
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

INSERT INTO contact (operating_company_id, company_id, division_id, first_name, last_name, email, phone, mobile,
    role_code, source, source_accounting_code, created_at)
SELECT pl.operating_company_id, COALESCE(pl.company_id, sl.company_id, c.id), COALESCE(pl.division_id, sl.division_id, d.id),
    v.first_name,
    CASE WHEN COALESCE(v.first_name, '') = '' AND COALESCE(v.last_name, '') = '' THEN pl.name ELSE v.last_name END,
    COALESCE(v.email_address, pl.email), pl.phone, pl.mobile, :default_role_code, 'xero_import', pl.accounting_code,
    :now
FROM purchase_ledger pl
JOIN val_contacts v ON v.connection_id = :connection_id AND v.xero_id = pl.accounting_code
LEFT JOIN sales_ledger sl ON sl.operating_company_id = pl.operating_company_id AND sl.accounting_code = pl.accounting_code
LEFT JOIN company c ON c.operating_company_id = pl.operating_company_id AND c.source_accounting_code = pl.accounting_code
LEFT JOIN division d ON d.operating_company_id = pl.operating_company_id AND d.source_accounting_code = pl.accounting_code
WHERE pl.operating_company_id = :operating_company_id AND pl.contact_id IS NULL AND pl.do_not_import = FALSE
  AND sl.contact_id IS NULL AND COALESCE(pl.company_id, sl.company_id, c.id) IS NOT NULL AND v.last_run_id = :run_id
  AND :missing_records_mode <> 'none' AND :include_suppliers = TRUE
  AND (:missing_records_mode = 'all' OR pl.status = 'Active')
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

UPDATE purchase_ledger
SET company_id = COALESCE(company_id,
        (SELECT sl.company_id FROM sales_ledger sl WHERE sl.operating_company_id = purchase_ledger.operating_company_id
                                                     AND sl.accounting_code = purchase_ledger.accounting_code),
        (SELECT c.id FROM company c WHERE c.operating_company_id = purchase_ledger.operating_company_id
                                      AND c.source_accounting_code = purchase_ledger.accounting_code)),
    division_id = COALESCE(division_id,
        (SELECT sl.division_id FROM sales_ledger sl WHERE sl.operating_company_id = purchase_ledger.operating_company_id
                                                      AND sl.accounting_code = purchase_ledger.accounting_code),
        (SELECT d.id FROM division d WHERE d.operating_company_id = purchase_ledger.operating_company_id
                                       AND d.source_accounting_code = purchase_ledger.accounting_code)),
    contact_id = COALESCE(contact_id,
        (SELECT sl.contact_id FROM sales_ledger sl WHERE sl.operating_company_id = purchase_ledger.operating_company_id
                                                     AND sl.accounting_code = purchase_ledger.accounting_code),
        (SELECT p.id FROM contact p WHERE p.operating_company_id = purchase_ledger.operating_company_id
                                      AND p.source_accounting_code = purchase_ledger.accounting_code))
WHERE operating_company_id = :operating_company_id AND do_not_import = FALSE
  AND (company_id IS NULL OR division_id IS NULL OR contact_id IS NULL)
  AND accounting_code IN (SELECT v.xero_id FROM val_contacts v
                          WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND :include_suppliers = TRUE
  AND (:missing_records_mode = 'all' OR status = 'Active')
  AND (company_id IS NOT NULL
       OR EXISTS (SELECT 1 FROM sales_ledger sl WHERE sl.operating_company_id = purchase_ledger.operating_company_id
                                                  AND sl.accounting_code = purchase_ledger.accounting_code
                                                  AND sl.company_id IS NOT NULL)
       OR EXISTS (SELECT 1 FROM company c WHERE c.operating_company_id = purchase_ledger.operating_company_id
                                            AND c.source_accounting_code = purchase_ledger.accounting_code));
