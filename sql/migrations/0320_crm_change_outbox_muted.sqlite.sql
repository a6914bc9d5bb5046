-- The import's own writes queue no CRM-change outbox rows (issue 13; why: 0320_crm_change_outbox_muted.postgresql.sql).
-- SQLite has no session settings a trigger can read, so the load's transaction inserts a row in
-- crm_change_outbox_muted first and deletes it before it commits (webhooks/outbox.py, `muted`), and each trigger's
-- WHEN skips while it can see a row. No other connection ever sees it: SQLite has one writer at a time, and a
-- reader sees committed rows only. The same triggers as 0261, one condition more; SQLite cannot alter a trigger,
-- so each is dropped and created again.
CREATE TABLE crm_change_outbox_muted (
    token TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

DROP TRIGGER trg_sales_ledger_crm_change_insert;
CREATE TRIGGER trg_sales_ledger_crm_change_insert AFTER INSERT ON sales_ledger
WHEN NOT EXISTS (SELECT 1 FROM crm_change_outbox_muted)
BEGIN
    INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at) VALUES (NEW.operating_company_id, 'sales_ledger', NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;

DROP TRIGGER trg_sales_ledger_crm_change_update;
CREATE TRIGGER trg_sales_ledger_crm_change_update AFTER UPDATE OF name, email, currency_code, status, on_stop_source, tax_type, tax_number, phone, mobile, address_line1, address_line2, city, region, postal_code, country, contact_id, do_not_export ON sales_ledger
WHEN NOT EXISTS (SELECT 1 FROM crm_change_outbox_muted) AND (OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email OR OLD.currency_code IS NOT NEW.currency_code OR OLD.status IS NOT NEW.status OR OLD.on_stop_source IS NOT NEW.on_stop_source OR OLD.tax_type IS NOT NEW.tax_type OR OLD.tax_number IS NOT NEW.tax_number OR OLD.phone IS NOT NEW.phone OR OLD.mobile IS NOT NEW.mobile OR OLD.address_line1 IS NOT NEW.address_line1 OR OLD.address_line2 IS NOT NEW.address_line2 OR OLD.city IS NOT NEW.city OR OLD.region IS NOT NEW.region OR OLD.postal_code IS NOT NEW.postal_code OR OLD.country IS NOT NEW.country OR OLD.contact_id IS NOT NEW.contact_id OR OLD.do_not_export IS NOT NEW.do_not_export)
BEGIN
    INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at) VALUES (NEW.operating_company_id, 'sales_ledger', NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;

DROP TRIGGER trg_product_crm_change_insert;
CREATE TRIGGER trg_product_crm_change_insert AFTER INSERT ON product
WHEN NOT EXISTS (SELECT 1 FROM crm_change_outbox_muted)
BEGIN
    INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at) VALUES (NEW.operating_company_id, 'product', NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;

DROP TRIGGER trg_product_crm_change_update;
CREATE TRIGGER trg_product_crm_change_update AFTER UPDATE OF code, name, description, sell_price, sales_account_code, sales_tax_type, cost_price, purchase_account_code, do_not_export ON product
WHEN NOT EXISTS (SELECT 1 FROM crm_change_outbox_muted) AND (OLD.code IS NOT NEW.code OR OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description OR OLD.sell_price IS NOT NEW.sell_price OR OLD.sales_account_code IS NOT NEW.sales_account_code OR OLD.sales_tax_type IS NOT NEW.sales_tax_type OR OLD.cost_price IS NOT NEW.cost_price OR OLD.purchase_account_code IS NOT NEW.purchase_account_code OR OLD.do_not_export IS NOT NEW.do_not_export)
BEGIN
    INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at) VALUES (NEW.operating_company_id, 'product', NEW.id, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END;
