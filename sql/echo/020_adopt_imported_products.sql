-- The echo rule, import -> push (P4 "no change, no call") for products: a product whose pushed fields equal what
-- the last import read from Xero (val_items, read after our last push to it) adopts its current hash, so an
-- import never causes a push back. The hashes: sql/views/020_push_product_fields.sql. Run by echo.py.
-- Params: :operating_company_id, :connection_id, :run_id (NULL: every record).
-- Each candidate's two hashes (an md5 over every pushed field, each) are computed once, in `read_back`: inlined,
-- the view's hash was computed again for every place that names it, four md5s per record (issue 13).
WITH read_back AS MATERIALIZED (
    SELECT m.id, m.fields_hash, m.mirror_hash, m.last_extracted_at
    FROM push_product_mirror m
    JOIN product t ON t.id = m.id
    WHERE m.connection_id = :connection_id
      AND t.operating_company_id = :operating_company_id
      AND t.accounting_code IS NOT NULL
      AND (CAST(:run_id AS TEXT) IS NULL
           OR t.accounting_code IN (SELECT r.xero_id FROM val_items r
                                    WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
)
UPDATE product
SET last_export_hash = b.fields_hash
FROM read_back b
WHERE b.id = product.id
  AND b.fields_hash = b.mirror_hash
  -- The record's own columns, not a copy: PostgreSQL reads them again when a push updated the row meanwhile, so
  -- a push since the mirror was read wins (its export date is then after the mirror's read).
  AND product.last_export_hash IS DISTINCT FROM b.fields_hash
  AND (product.last_accounting_export_date IS NULL OR b.last_extracted_at > product.last_accounting_export_date);
