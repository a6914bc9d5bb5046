-- P9: before creating Xero contacts, candidates from the import's mirror (val_contacts: what Xero said at the
-- last import) for every unlinked, exportable customer: same ContactNumber as the CRM id (what the push writes
-- there), same email (case-insensitive), or same name. Contacts already linked to a CRM customer are not
-- candidates. include/xero_crm_sync/push/matching.py decides among them (number, then email, then name; email
-- and name among active contacts only).
-- Params: :operating_company_id, :connection_id.
SELECT sl.id AS ledger_id, v.xero_id, v.contact_number, v.email_address, v.name, v.contact_status
FROM sales_ledger sl
JOIN val_contacts v ON v.connection_id = :connection_id AND v.contact_number = CAST(sl.id AS TEXT)
WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code IS NULL AND sl.do_not_export = FALSE
  AND NOT EXISTS (SELECT 1 FROM sales_ledger o
                  WHERE o.operating_company_id = :operating_company_id AND o.accounting_code = v.xero_id)
UNION
SELECT sl.id, v.xero_id, v.contact_number, v.email_address, v.name, v.contact_status
FROM sales_ledger sl
JOIN val_contacts v ON v.connection_id = :connection_id AND LOWER(v.email_address) = LOWER(TRIM(sl.email))
WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code IS NULL AND sl.do_not_export = FALSE
  AND COALESCE(TRIM(sl.email), '') <> ''
  AND NOT EXISTS (SELECT 1 FROM sales_ledger o
                  WHERE o.operating_company_id = :operating_company_id AND o.accounting_code = v.xero_id)
UNION
SELECT sl.id, v.xero_id, v.contact_number, v.email_address, v.name, v.contact_status
FROM sales_ledger sl
JOIN val_contacts v ON v.connection_id = :connection_id AND LOWER(v.name) = LOWER(TRIM(sl.name))
WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code IS NULL AND sl.do_not_export = FALSE
  AND NOT EXISTS (SELECT 1 FROM sales_ledger o
                  WHERE o.operating_company_id = :operating_company_id AND o.accounting_code = v.xero_id);
