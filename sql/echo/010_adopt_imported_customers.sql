-- The echo rule, import -> push (P4 "no change, no call"): a customer whose pushed fields are exactly what Xero
-- already holds (as the last import read them into val_contacts) is not changed, so an import never triggers a
-- push back of the same values: its last_export_hash adopts the current hash. The mirror counts only when it was
-- read after our last push to that contact; before that it may still show the values we have since overwritten.
-- The hashes: sql/views/010_push_customer_fields.sql. Run by echo.py for the import (after its load, :run_id =
-- the run: the records it read) and for the push (before its diff, :run_id NULL: every record).
-- Params: :operating_company_id, :connection_id, :run_id.
-- Each candidate's two hashes (an md5 over every pushed field, each) are computed once, in `read_back`: inlined,
-- the view's hash was computed again for every place that names it, four md5s per record (issue 13).
WITH read_back AS MATERIALIZED (
    SELECT m.id, m.fields_hash, m.mirror_hash, m.last_extracted_at
    FROM push_customer_mirror m
    JOIN sales_ledger t ON t.id = m.id
    WHERE m.connection_id = :connection_id
      AND t.operating_company_id = :operating_company_id
      AND t.accounting_code IS NOT NULL
      AND (CAST(:run_id AS TEXT) IS NULL
           OR t.accounting_code IN (SELECT r.xero_id FROM val_contacts r
                                    WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
)
UPDATE sales_ledger
SET last_export_hash = b.fields_hash
FROM read_back b
WHERE b.id = sales_ledger.id
  AND b.fields_hash = b.mirror_hash
  -- The record's own columns, not a copy: PostgreSQL reads them again when a push updated the row meanwhile, so
  -- a push since the mirror was read wins (its export date is then after the mirror's read).
  AND sales_ledger.last_export_hash IS DISTINCT FROM b.fields_hash
  AND (sales_ledger.last_accounting_export_date IS NULL
       OR b.last_extracted_at > sales_ledger.last_accounting_export_date);
