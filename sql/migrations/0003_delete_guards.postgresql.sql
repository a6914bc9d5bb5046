-- I14: a record synced with Xero (accounting_code set) cannot be deleted in the CRM (seed 003). Clear its
-- accounting code first if it truly must go (the Xero record stays in Xero).

CREATE OR REPLACE FUNCTION refuse_synced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.accounting_code IS NOT NULL THEN
        RAISE EXCEPTION 'cannot delete % %: it is synced with Xero (accounting code %)',
            TG_TABLE_NAME, OLD.id, OLD.accounting_code
            USING ERRCODE = 'restrict_violation',
                  HINT = 'clear accounting_code first if the record truly must go';
    END IF;
    RETURN OLD;
END;
$$;

CREATE OR REPLACE TRIGGER trg_tax_rate_refuse_synced_delete
BEFORE DELETE ON tax_rate
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_currency_refuse_synced_delete
BEFORE DELETE ON currency
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_sales_ledger_refuse_synced_delete
BEFORE DELETE ON sales_ledger
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_purchase_ledger_refuse_synced_delete
BEFORE DELETE ON purchase_ledger
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_product_refuse_synced_delete
BEFORE DELETE ON product
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_sales_invoice_refuse_synced_delete
BEFORE DELETE ON sales_invoice
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_credit_note_refuse_synced_delete
BEFORE DELETE ON credit_note
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_purchase_order_refuse_synced_delete
BEFORE DELETE ON purchase_order
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_payment_refuse_synced_delete
BEFORE DELETE ON payment
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();

CREATE OR REPLACE TRIGGER trg_sales_order_refuse_synced_delete
BEFORE DELETE ON sales_order
FOR EACH ROW EXECUTE FUNCTION refuse_synced_delete();
