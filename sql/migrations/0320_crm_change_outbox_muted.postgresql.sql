-- Issue 13: the outbox triggers of 0261 queue nothing while the import's load transaction holds its row in
-- crm_change_outbox_muted (0320_crm_change_outbox_muted.sql says why). Same functions, one check first; the
-- triggers that call them are unchanged. A trigger's WHEN cannot hold a subquery on PostgreSQL, hence in the body.

CREATE OR REPLACE FUNCTION crm_change_sales_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM crm_change_outbox_muted) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' OR OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email OR OLD.currency_code IS DISTINCT FROM NEW.currency_code OR OLD.status IS DISTINCT FROM NEW.status OR OLD.on_stop_source IS DISTINCT FROM NEW.on_stop_source OR OLD.tax_type IS DISTINCT FROM NEW.tax_type OR OLD.tax_number IS DISTINCT FROM NEW.tax_number OR OLD.phone IS DISTINCT FROM NEW.phone OR OLD.mobile IS DISTINCT FROM NEW.mobile OR OLD.address_line1 IS DISTINCT FROM NEW.address_line1 OR OLD.address_line2 IS DISTINCT FROM NEW.address_line2 OR OLD.city IS DISTINCT FROM NEW.city OR OLD.region IS DISTINCT FROM NEW.region OR OLD.postal_code IS DISTINCT FROM NEW.postal_code OR OLD.country IS DISTINCT FROM NEW.country OR OLD.contact_id IS DISTINCT FROM NEW.contact_id OR OLD.do_not_export IS DISTINCT FROM NEW.do_not_export THEN
        INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at)
        VALUES (NEW.operating_company_id, 'sales_ledger', NEW.id, clock_timestamp() AT TIME ZONE 'utc');
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION crm_change_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM crm_change_outbox_muted) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' OR OLD.code IS DISTINCT FROM NEW.code OR OLD.name IS DISTINCT FROM NEW.name OR OLD.description IS DISTINCT FROM NEW.description OR OLD.sell_price IS DISTINCT FROM NEW.sell_price OR OLD.sales_account_code IS DISTINCT FROM NEW.sales_account_code OR OLD.sales_tax_type IS DISTINCT FROM NEW.sales_tax_type OR OLD.cost_price IS DISTINCT FROM NEW.cost_price OR OLD.purchase_account_code IS DISTINCT FROM NEW.purchase_account_code OR OLD.do_not_export IS DISTINCT FROM NEW.do_not_export THEN
        INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at)
        VALUES (NEW.operating_company_id, 'product', NEW.id, clock_timestamp() AT TIME ZONE 'utc');
    END IF;
    RETURN NEW;
END;
$$;
