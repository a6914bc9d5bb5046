-- The echo rule, import -> push (P4 "no change, no call") for products: a product whose pushed fields equal what
-- the last import read from Xero (val_items, read after our last push to it) adopts its current hash, so an
-- import never causes a push back. The hashes: sql/views/020_push_product_fields.sql. Run by echo.py.
-- Params: :operating_company_id, :connection_id, :run_id (NULL: every record).
UPDATE product
SET last_export_hash = (SELECT f.fields_hash FROM push_product_fields f WHERE f.id = product.id)
WHERE product.operating_company_id = :operating_company_id
  AND product.accounting_code IS NOT NULL
  AND (CAST(:run_id AS TEXT) IS NULL
       OR product.accounting_code IN (SELECT r.xero_id FROM val_items r
                                      WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
  AND EXISTS (
    SELECT 1
    FROM push_product_mirror m
    WHERE m.id = product.id AND m.connection_id = :connection_id
      AND m.last_export_hash IS DISTINCT FROM m.fields_hash
      AND (product.last_accounting_export_date IS NULL OR m.last_extracted_at > product.last_accounting_export_date)
      AND m.fields_hash = m.mirror_hash
  );
