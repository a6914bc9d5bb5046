-- P4 "no change, no call": a customer whose pushed fields are exactly what Xero already holds (as the last import
-- read them into val_contacts) is not changed, so an import never triggers a push back of the same values. Its
-- last_export_hash adopts the current hash. The mirror counts only when it was read after our last push to that
-- contact; before that it may still show the values we have since overwritten.
-- The mirror's fields are mapped the way push_customer_fields maps the CRM's (see 0050_push.sql).
-- Params: :operating_company_id, :connection_id, :run_id (NULL: every record).
UPDATE sales_ledger
SET last_export_hash = (SELECT f.fields_hash FROM push_customer_fields f WHERE f.id = sales_ledger.id)
WHERE sales_ledger.operating_company_id = :operating_company_id
  AND sales_ledger.accounting_code IS NOT NULL
  -- The import runs this after its load with its :run_id, for the records it read (a push passes NULL: all).
  AND (CAST(:run_id AS TEXT) IS NULL
       OR sales_ledger.accounting_code IN (SELECT r.xero_id FROM val_contacts r
                                      WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
  AND EXISTS (
    SELECT 1
    FROM push_customer_fields f
    JOIN val_contacts v ON v.connection_id = :connection_id AND v.xero_id = f.accounting_code
    WHERE f.id = sales_ledger.id
      AND f.last_export_hash IS DISTINCT FROM f.fields_hash
      AND (sales_ledger.last_accounting_export_date IS NULL
           OR v.last_extracted_at > sales_ledger.last_accounting_export_date)
      AND f.fields_hash = md5(
          COALESCE(v.name, '') || '|' || COALESCE(v.email_address, '') || '|' || COALESCE(v.default_currency, '')
          || '|' || COALESCE(v.contact_status, '') || '|'
          || COALESCE(v.accounts_receivable_tax_type, '') || '|' || COALESCE(v.tax_number, '') || '|'
          || COALESCE(v.phone, '') || '|' || COALESCE(v.mobile, '') || '|'
          || COALESCE(v.address_line1, '') || '|' || COALESCE(v.address_line2, '') || '|'
          || COALESCE(v.city, '') || '|' || COALESCE(v.region, '') || '|' || COALESCE(v.postal_code, '') || '|'
          || COALESCE(v.country, '') || '|'
          || CASE WHEN f.has_person THEN COALESCE(v.first_name, '') ELSE '' END || '|'
          || CASE WHEN f.has_person THEN COALESCE(v.last_name, '') ELSE '' END)
  );
