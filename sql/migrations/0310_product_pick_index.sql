-- Issue 13, fix 26: each CRM document line takes the product with its item code, a synced one first
-- (sql/transform/templates/upsert_document_lines.sql: ORDER BY "no accounting code", id). ix_product_code finds
-- the candidates, then every one of a first sync's million lines sorted them on its own (SQLite: a temporary
-- B-tree per line). This index holds them in that order, so each line reads its product off the index: a million
-- lookups against 10,000 products 0.98 -> 0.45 s on SQLite. Expression indexes: the same syntax and meaning on
-- SQLite and PostgreSQL (the ORDER BY must name the same expression).
CREATE INDEX IF NOT EXISTS ix_product_code_pick ON product
    (operating_company_id, code, (CASE WHEN accounting_code IS NULL THEN 1 ELSE 0 END), id);
