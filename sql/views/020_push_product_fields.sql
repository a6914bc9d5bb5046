-- The product contract of the push (P3, P4), declared once: the fields pushed to a Xero item, their hash, and the
-- same hash over what the import's mirror (val_items) says Xero holds. Re-created by migrate.py from this file.
--
-- push_product_fields: one row per product. Prices enter the hash as integers of 1/10,000, so that SQLite (REAL)
-- and PostgreSQL (NUMERIC(19,4)) hash the same value the same way.
CREATE VIEW push_product_fields AS
SELECT
    p.id,
    p.operating_company_id,
    p.accounting_code,
    p.do_not_export,
    p.last_export_hash,
    p.export_rejected_hash,
    p.is_tracked,
    p.code,
    p.name,
    p.description,
    p.sell_price,
    p.sales_account_code,
    p.sales_tax_type,
    p.cost_price,
    p.purchase_account_code,
    md5(COALESCE(p.code, '') || '|' || COALESCE(p.name, '') || '|' || COALESCE(p.description, '') || '|'
        || COALESCE(CAST(CAST(ROUND(p.sell_price * 10000) AS BIGINT) AS TEXT), '') || '|'
        || COALESCE(p.sales_account_code, '') || '|' || COALESCE(p.sales_tax_type, '') || '|'
        || COALESCE(CAST(CAST(ROUND(p.cost_price * 10000) AS BIGINT) AS TEXT), '') || '|'
        || COALESCE(p.purchase_account_code, '')) AS fields_hash
FROM product p;

-- push_product_mirror: a linked product beside its item in the import's mirror. mirror_hash is fields_hash's
-- expression over what Xero holds, mapped as the import maps it (075_upsert_products.sql: a tracked item's
-- purchase account is its cost-of-goods-sold account).
CREATE VIEW push_product_mirror AS
SELECT
    f.id, v.connection_id, v.xero_id, v.last_extracted_at, f.fields_hash, f.last_export_hash,
    md5(COALESCE(v.code, '') || '|' || COALESCE(v.name, '') || '|' || COALESCE(v.description, '') || '|'
        || COALESCE(CAST(CAST(ROUND(v.sales_unit_price * 10000) AS BIGINT) AS TEXT), '') || '|'
        || COALESCE(v.sales_account_code, '') || '|' || COALESCE(v.sales_tax_type, '') || '|'
        || COALESCE(CAST(CAST(ROUND(v.purchase_unit_price * 10000) AS BIGINT) AS TEXT), '') || '|'
        || COALESCE(v.purchase_account_code, v.purchase_cogs_account_code, '')) AS mirror_hash
FROM push_product_fields f
JOIN val_items v ON v.xero_id = f.accounting_code;
