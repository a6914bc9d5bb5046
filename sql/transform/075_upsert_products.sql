-- I5: Xero items -> products, keyed on the ItemID: code, name, descriptions, selling (sales unit price) and cost
-- (purchase unit price) prices, sales and purchase account codes (a tracked item's purchase account is its
-- COGS account), tax types, tracked. is_obsolete stays the CRM's.
-- Params: :run_id, :connection_id, :operating_company_id, :now.
-- Unchanged products keep their import date; do_not_import products and pending pushes are left alone, and so
-- is a product the CRM changed since its last push while Xero still holds exactly what that push sent (Xero's
-- record is only the echo of our own write; applying it would undo the CRM's change before the push sends it).
INSERT INTO product (
    operating_company_id, accounting_code, code, name, description, purchase_description, sell_price, cost_price,
    sales_account_code, purchase_account_code, sales_tax_type, purchase_tax_type, inventory_asset_account_code,
    is_tracked, is_sold, is_purchased, last_accounting_import_date, created_at, updated_at)
SELECT :operating_company_id, v.xero_id, v.code, v.name, v.description, v.purchase_description, v.sales_unit_price,
    v.purchase_unit_price, v.sales_account_code, COALESCE(v.purchase_account_code, v.purchase_cogs_account_code),
    v.sales_tax_type, v.purchase_tax_type, v.inventory_asset_account_code,
    COALESCE(v.is_tracked, FALSE), COALESCE(v.is_sold, TRUE), COALESCE(v.is_purchased, TRUE),
    :now, :now, :now
FROM val_items v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    code = excluded.code,
    name = excluded.name,
    description = excluded.description,
    purchase_description = excluded.purchase_description,
    sell_price = excluded.sell_price,
    cost_price = excluded.cost_price,
    sales_account_code = excluded.sales_account_code,
    purchase_account_code = excluded.purchase_account_code,
    sales_tax_type = excluded.sales_tax_type,
    purchase_tax_type = excluded.purchase_tax_type,
    inventory_asset_account_code = excluded.inventory_asset_account_code,
    is_tracked = excluded.is_tracked,
    is_sold = excluded.is_sold,
    is_purchased = excluded.is_purchased,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE product.do_not_import = FALSE
  AND NOT EXISTS (SELECT 1 FROM export_in_flight q WHERE q.record_type = 'product' AND q.record_id = product.id)
  -- The echo rule, push -> import (the hashes: sql/views/020_push_product_fields.sql).
  AND NOT EXISTS (
    SELECT 1
    FROM push_product_mirror m
    WHERE m.id = product.id AND m.connection_id = :connection_id
      AND m.last_export_hash IS NOT NULL
      AND m.fields_hash <> m.last_export_hash
      AND m.last_export_hash = m.mirror_hash)
  AND (product.code, product.name, product.description, product.purchase_description, product.sell_price,
       product.cost_price, product.sales_account_code, product.purchase_account_code, product.sales_tax_type,
       product.purchase_tax_type, product.inventory_asset_account_code, product.is_tracked, product.is_sold,
       product.is_purchased)
      IS DISTINCT FROM
      (excluded.code, excluded.name, excluded.description, excluded.purchase_description, excluded.sell_price,
       excluded.cost_price, excluded.sales_account_code, excluded.purchase_account_code, excluded.sales_tax_type,
       excluded.purchase_tax_type, excluded.inventory_asset_account_code, excluded.is_tracked, excluded.is_sold,
       excluded.is_purchased);
