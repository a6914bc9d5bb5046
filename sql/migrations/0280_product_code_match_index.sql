-- Issue 13 (push diff of 1% at 100,000 contacts): the product diff (sql/push/050_diff_products.sql) asks, for each
-- product it returns, whether a linked product of the company already has its code, compared case-insensitively.
-- ix_product_code holds the code as typed, so every one of those lookups scanned all of the company's products:
-- 0.81 s of the PostgreSQL push diff's 0.99 s (10,000 products, about 100 changed). Indexing the lowered code makes
-- each lookup one index probe. Expression indexes: the same syntax and meaning on SQLite and PostgreSQL.
CREATE INDEX IF NOT EXISTS ix_product_code_lower ON product (operating_company_id, LOWER(code));
