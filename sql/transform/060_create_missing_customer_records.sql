-- I4 (S3-S6): give each customer imported in this run that lacks them a Company, a Division and a Contact.
-- Params: :run_id, :connection_id, :operating_company_id, :now, :missing_records_mode ('none' | 'active' | 'all'),
--         :include_b2c, :default_account_manager_id (S4), :default_role_code (S5), :default_company_type_id (S6).
-- Eligible ledgers: synced from this run's contacts, not do_not_import, Active (mode 'active') or any status
-- (mode 'all'), B2C ones only when :include_b2c. Mode 'none' creates nothing.
-- Created records carry source_accounting_code = the ContactID, so a rerun finds them instead of creating twice,
-- and a contact that is also a supplier shares them (065). A ledger that already has a company (or division)
-- keeps it and gets only what it lacks, inside that company. One UPDATE links all three at the end.

INSERT INTO company (operating_company_id, name, company_type_id, account_manager_id, source, source_accounting_code,
    created_at)
SELECT sl.operating_company_id, sl.name, CAST(:default_company_type_id AS INTEGER),
    COALESCE(sl.account_manager_id, CAST(:default_account_manager_id AS BIGINT)), 'xero_import', sl.accounting_code,
    :now
FROM sales_ledger sl
WHERE sl.operating_company_id = :operating_company_id AND sl.company_id IS NULL AND sl.do_not_import = FALSE
  AND sl.accounting_code IN (SELECT v.xero_id FROM val_contacts v
                             WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND (:missing_records_mode = 'all' OR sl.status = 'Active')
  AND (:include_b2c = TRUE OR sl.is_b2c = FALSE)
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

INSERT INTO division (operating_company_id, company_id, name, source, source_accounting_code, created_at)
SELECT sl.operating_company_id, COALESCE(sl.company_id, c.id), sl.name, 'xero_import', sl.accounting_code, :now
FROM sales_ledger sl
LEFT JOIN company c ON c.operating_company_id = sl.operating_company_id AND c.source_accounting_code = sl.accounting_code
WHERE sl.operating_company_id = :operating_company_id AND sl.division_id IS NULL AND sl.do_not_import = FALSE
  AND COALESCE(sl.company_id, c.id) IS NOT NULL
  AND sl.accounting_code IN (SELECT v.xero_id FROM val_contacts v
                             WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND (:missing_records_mode = 'all' OR sl.status = 'Active')
  AND (:include_b2c = TRUE OR sl.is_b2c = FALSE)
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

-- The contact person is the Xero contact's primary person (FirstName, LastName, EmailAddress); a contact without
-- a person name (e.g. a consumer) gives its own name as the last name.
INSERT INTO contact (operating_company_id, company_id, division_id, first_name, last_name, email, phone, mobile,
    role_code, source, source_accounting_code, created_at)
SELECT sl.operating_company_id, COALESCE(sl.company_id, c.id), COALESCE(sl.division_id, d.id), v.first_name,
    CASE WHEN COALESCE(v.first_name, '') = '' AND COALESCE(v.last_name, '') = '' THEN sl.name ELSE v.last_name END,
    COALESCE(v.email_address, sl.email), sl.phone, sl.mobile, :default_role_code, 'xero_import', sl.accounting_code,
    :now
FROM sales_ledger sl
JOIN val_contacts v ON v.connection_id = :connection_id AND v.xero_id = sl.accounting_code
LEFT JOIN company c ON c.operating_company_id = sl.operating_company_id AND c.source_accounting_code = sl.accounting_code
LEFT JOIN division d ON d.operating_company_id = sl.operating_company_id AND d.source_accounting_code = sl.accounting_code
WHERE sl.operating_company_id = :operating_company_id AND sl.contact_id IS NULL AND sl.do_not_import = FALSE
  AND COALESCE(sl.company_id, c.id) IS NOT NULL AND v.last_run_id = :run_id
  AND :missing_records_mode <> 'none' AND (:missing_records_mode = 'all' OR sl.status = 'Active')
  AND (:include_b2c = TRUE OR sl.is_b2c = FALSE)
ON CONFLICT (operating_company_id, source_accounting_code) DO NOTHING;

UPDATE sales_ledger
SET company_id = COALESCE(company_id,
        (SELECT c.id FROM company c WHERE c.operating_company_id = sales_ledger.operating_company_id
                                      AND c.source_accounting_code = sales_ledger.accounting_code)),
    division_id = COALESCE(division_id,
        (SELECT d.id FROM division d WHERE d.operating_company_id = sales_ledger.operating_company_id
                                       AND d.source_accounting_code = sales_ledger.accounting_code)),
    contact_id = COALESCE(contact_id,
        (SELECT p.id FROM contact p WHERE p.operating_company_id = sales_ledger.operating_company_id
                                      AND p.source_accounting_code = sales_ledger.accounting_code))
WHERE operating_company_id = :operating_company_id AND do_not_import = FALSE
  AND (company_id IS NULL OR division_id IS NULL OR contact_id IS NULL)
  AND accounting_code IN (SELECT v.xero_id FROM val_contacts v
                          WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id)
  AND :missing_records_mode <> 'none' AND (:missing_records_mode = 'all' OR status = 'Active')
  AND (:include_b2c = TRUE OR is_b2c = FALSE)
  AND (company_id IS NOT NULL
       OR EXISTS (SELECT 1 FROM company c WHERE c.operating_company_id = sales_ledger.operating_company_id
                                            AND c.source_accounting_code = sales_ledger.accounting_code));
