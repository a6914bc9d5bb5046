-- P4 "no change, no call" for products: a product whose pushed fields equal what the last import read from Xero
-- (val_items, read after our last push to it) adopts its current hash, so an import never causes a push back.
-- A tracked item's purchase account is its cost-of-goods-sold account (as the import maps it, 075).
-- Params: :operating_company_id, :connection_id, :run_id (NULL: every record).
UPDATE product
SET last_export_hash = (SELECT f.fields_hash FROM push_product_fields f WHERE f.id = product.id)
WHERE product.operating_company_id = :operating_company_id
  AND product.accounting_code IS NOT NULL
  -- The import runs this after its load with its :run_id, for the records it read (a push passes NULL: all).
  AND (CAST(:run_id AS TEXT) IS NULL
       OR product.accounting_code IN (SELECT r.xero_id FROM val_items r
                                      WHERE r.connection_id = :connection_id AND r.last_run_id = :run_id))
  AND EXISTS (
    SELECT 1
    FROM push_product_fields f
    JOIN val_items v ON v.connection_id = :connection_id AND v.xero_id = f.accounting_code
    WHERE f.id = product.id
      AND f.last_export_hash IS DISTINCT FROM f.fields_hash
      AND (product.last_accounting_export_date IS NULL OR v.last_extracted_at > product.last_accounting_export_date)
      AND f.fields_hash = md5(
          COALESCE(v.code, '') || '|' || COALESCE(v.name, '') || '|' || COALESCE(v.description, '') || '|'
          || COALESCE(CAST(CAST(ROUND(v.sales_unit_price * 10000) AS BIGINT) AS TEXT), '') || '|'
          || COALESCE(v.sales_account_code, '') || '|' || COALESCE(v.sales_tax_type, '') || '|'
          || COALESCE(CAST(CAST(ROUND(v.purchase_unit_price * 10000) AS BIGINT) AS TEXT), '') || '|'
          || COALESCE(v.purchase_account_code, v.purchase_cogs_account_code, ''))
  );
