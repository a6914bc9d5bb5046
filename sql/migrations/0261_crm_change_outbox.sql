-- CRM edits to Xero within seconds (issue 11): a customer or product created, or changed in a pushed field, queues
-- a row in crm_change_outbox in the same transaction as the change (these triggers), which CrmChangeTrigger
-- (plugins/xero_triggers.py) watches and the xero_crm_changes DAG drains through the push's own diff.
-- The pushed fields: sql/views/010_push_customer_fields.sql and 020_push_product_fields.sql.

-- state: pending (waits for xero_crm_changes) | done (the push's diff ran for it, run_id says which run).
CREATE TABLE crm_change_outbox (
    id {{identity}},
    operating_company_id BIGINT NOT NULL,
    record_type TEXT NOT NULL CHECK (record_type IN ('sales_ledger', 'product')),
    record_id BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    processed_at TIMESTAMP,
    run_id TEXT
);

CREATE INDEX ix_crm_change_outbox_state ON crm_change_outbox (state, id);
