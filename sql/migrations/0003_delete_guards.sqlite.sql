-- I14: a record synced with Xero (accounting_code set) cannot be deleted in the CRM (seed 003). Clear its
-- accounting code first if it truly must go (the Xero record stays in Xero).
-- SQLite's RAISE takes a literal message (before 3.48), so it names the table but not the code.

CREATE TRIGGER IF NOT EXISTS trg_tax_rate_refuse_synced_delete
BEFORE DELETE ON tax_rate
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete tax_rate: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_currency_refuse_synced_delete
BEFORE DELETE ON currency
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete currency: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_sales_ledger_refuse_synced_delete
BEFORE DELETE ON sales_ledger
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete sales_ledger: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_purchase_ledger_refuse_synced_delete
BEFORE DELETE ON purchase_ledger
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete purchase_ledger: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_product_refuse_synced_delete
BEFORE DELETE ON product
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete product: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_sales_invoice_refuse_synced_delete
BEFORE DELETE ON sales_invoice
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete sales_invoice: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_credit_note_refuse_synced_delete
BEFORE DELETE ON credit_note
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete credit_note: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_purchase_order_refuse_synced_delete
BEFORE DELETE ON purchase_order
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete purchase_order: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_payment_refuse_synced_delete
BEFORE DELETE ON payment
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete payment: it is synced with Xero (accounting code set); clear accounting_code first');
END;

CREATE TRIGGER IF NOT EXISTS trg_sales_order_refuse_synced_delete
BEFORE DELETE ON sales_order
FOR EACH ROW WHEN OLD.accounting_code IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'cannot delete sales_order: it is synced with Xero (accounting code set); clear accounting_code first');
END;
