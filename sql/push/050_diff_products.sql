-- P3/P4/S10: the products to push: new ones and those whose pushed fields changed since their last successful
-- push, never do_not_export ones, not those in an unfinished batch, not those Xero rejected with exactly these
-- values (unless their unresolved error is set to 'retrying').
-- Params: :operating_company_id, :connection_id, :order_id (only the products on that order's lines, or NULL).
SELECT f.*,
    -- A new product whose code a linked CRM product already has would update (and steal) that Xero item.
    (SELECT MIN(o.id) FROM product o
     WHERE o.operating_company_id = f.operating_company_id AND o.accounting_code IS NOT NULL AND o.id <> f.id
       AND LOWER(o.code) = LOWER(f.code)) AS code_taken_by
FROM push_product_fields f
WHERE f.operating_company_id = :operating_company_id
  AND f.do_not_export = FALSE
  AND (f.accounting_code IS NULL OR f.last_export_hash IS NULL OR f.last_export_hash <> f.fields_hash)
  AND (f.export_rejected_hash IS NULL OR f.export_rejected_hash <> f.fields_hash
       OR EXISTS (SELECT 1 FROM sync_error e
                  WHERE e.connection_id = :connection_id AND e.direction = 'export'
                    AND e.record_type = 'product' AND e.record_id = f.id AND e.status = 'retrying'))
  AND NOT EXISTS (SELECT 1 FROM export_in_flight q WHERE q.record_type = 'product' AND q.record_id = f.id)
  AND (CAST(:order_id AS BIGINT) IS NULL
       OR f.id IN (SELECT l.product_id FROM sales_order_line l WHERE l.sales_order_id = CAST(:order_id AS BIGINT)))
ORDER BY f.id;
