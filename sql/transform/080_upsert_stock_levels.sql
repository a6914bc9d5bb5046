-- I6: stock levels of tracked items (QuantityOnHand, TotalCostPool) against the single default warehouse of the
-- operating company, created ('Main') when the first tracked item arrives and there is none.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
INSERT INTO warehouse (operating_company_id, name, is_default, created_at)
SELECT :operating_company_id, 'Main', TRUE, :now
WHERE NOT EXISTS (SELECT 1 FROM warehouse w WHERE w.operating_company_id = :operating_company_id AND w.is_default = TRUE)
  AND EXISTS (SELECT 1 FROM val_items v
              WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.is_tracked = TRUE)
ON CONFLICT (operating_company_id, name) DO UPDATE SET is_default = TRUE;

INSERT INTO stock_level (product_id, warehouse_id, quantity_on_hand, total_cost_pool, last_accounting_import_date)
SELECT p.id, w.id, COALESCE(v.quantity_on_hand, 0), v.total_cost_pool, :now
FROM val_items v
JOIN product p ON p.operating_company_id = :operating_company_id AND p.accounting_code = v.xero_id
JOIN warehouse w ON w.operating_company_id = :operating_company_id AND w.is_default = TRUE
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id AND v.is_tracked = TRUE
  AND p.do_not_import = FALSE
ON CONFLICT (product_id, warehouse_id) DO UPDATE SET
    quantity_on_hand = excluded.quantity_on_hand,
    total_cost_pool = excluded.total_cost_pool,
    last_accounting_import_date = excluded.last_accounting_import_date
WHERE (stock_level.quantity_on_hand, stock_level.total_cost_pool)
      IS DISTINCT FROM (excluded.quantity_on_hand, excluded.total_cost_pool);
