-- I5/P9: a Xero item whose code matches exactly one unlinked CRM product (and no other unlinked item of this
-- run has that code) links to it instead of creating a second product. do_not_import products are not linked.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
UPDATE product
SET accounting_code = (SELECT v.xero_id FROM val_items v
                       WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.code = product.code
                         AND NOT EXISTS (SELECT 1 FROM product p
                                         WHERE p.operating_company_id = :operating_company_id
                                           AND p.accounting_code = v.xero_id)),
    last_accounting_import_date = :now,
    updated_at = :now
WHERE operating_company_id = :operating_company_id AND accounting_code IS NULL AND do_not_import = FALSE
  AND (SELECT COUNT(*) FROM product p
       WHERE p.operating_company_id = :operating_company_id AND p.accounting_code IS NULL
         AND p.code = product.code) = 1
  AND (SELECT COUNT(*) FROM val_items v
       WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.code = product.code
         AND NOT EXISTS (SELECT 1 FROM product p
                         WHERE p.operating_company_id = :operating_company_id AND p.accounting_code = v.xero_id)) = 1;
