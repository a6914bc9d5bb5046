-- The echo rule, import -> push (P4 "no change, no call"): a customer whose pushed fields are exactly what Xero
-- already holds (as the last import read them into val_contacts) is not changed, so an import never triggers a
-- push back of the same values: its last_export_hash adopts the current hash. The mirror counts only when it was
-- read after our last push to that contact; before that it may still show the values we have since overwritten.
-- The hashes: sql/views/010_push_customer_fields.sql. Run by echo.py for the import (after its load, :run_id =
-- the run: the records it read) and for the push (before its diff, :run_id NULL: every record).
-- Params: :operating_company_id, :connection_id, :run_id.
UPDATE sales_ledger
SET last_export_hash = (SELECT f.fields_hash FROM push_customer_fields f WHERE f.id = sales_ledger.id)
WHERE sales_ledger.operating_company_id = :operating_company_id
  AND sales_ledger.accounting_code IS NOT NULL
  AND (CAST(:run_id AS TEXT) IS NULL
       OR sales_ledger.accounting_code IN (SELECT r.xero_id FROM val_contacts r
                                      WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
  AND EXISTS (
    SELECT 1
    FROM push_customer_mirror m
    WHERE m.id = sales_ledger.id AND m.connection_id = :connection_id
      AND m.last_export_hash IS DISTINCT FROM m.fields_hash
      AND (sales_ledger.last_accounting_export_date IS NULL
           OR m.last_extracted_at > sales_ledger.last_accounting_export_date)
      AND m.fields_hash = m.mirror_hash
  );
