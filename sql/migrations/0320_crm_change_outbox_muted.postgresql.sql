-- The import's own writes queue no CRM-change outbox rows (issue 13). The outbox (0261) exists to push CRM edits
-- to Xero within seconds; what the import's load writes is what Xero already holds (the echo rule), so the rows
-- it queued were never pushed. They cost a first sync of 100,000 contacts ~210,000 trigger inserts (every new
-- customer and product, then each customer again when 060 links its new company, division and contact), and every
-- poll of CrmChangeTrigger re-checked them all until the next drain (3.6 s a poll after a 10,000-contact first
-- sync).
--
-- The load's transaction sets `xero_crm_sync.outbox_muted` for itself only (set_config(..., is_local => true):
-- gone at its commit or rollback; webhooks/outbox.py, `muted`), and each trigger's WHEN skips it, so no trigger
-- event is even queued for the load's rows (checking a table in the function body still cost ~45 us a row: 3.2 s
-- for 70,000 ledgers linked). Every other session, a CRM edit committed beside an import included, queues as before.
-- The functions of 0261 are unchanged.

CREATE OR REPLACE TRIGGER trg_sales_ledger_crm_change
AFTER INSERT OR UPDATE ON sales_ledger
FOR EACH ROW
WHEN (current_setting('xero_crm_sync.outbox_muted', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION crm_change_sales_ledger();

CREATE OR REPLACE TRIGGER trg_product_crm_change
AFTER INSERT OR UPDATE ON product
FOR EACH ROW
WHEN (current_setting('xero_crm_sync.outbox_muted', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION crm_change_product();
