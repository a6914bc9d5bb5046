-- The push, CRM -> Xero (P1-P9): what was last pushed per record, the batches sent to Xero (crash safety), the
-- order outbox that drives Draft invoices (P6, P7). Macros as in 0001_crm_core.sql. The pushed fields and their hash
-- are views, re-created on every migrate from sql/views/ (this migration created them until that existed).

-- last_export_hash: md5 of exactly the pushed fields at the last successful push (or as Xero already has them,
-- when an import brought them: see sql/echo/). A record is "changed" while its hash differs.
-- export_rejected_hash: the hash Xero (or matching) last rejected: the same values are not resent every run
-- (no change, no call); any edit, or setting its sync_error to 'retrying', sends it again.
ALTER TABLE sales_ledger ADD COLUMN last_export_hash TEXT;
ALTER TABLE sales_ledger ADD COLUMN export_rejected_hash TEXT;
ALTER TABLE product ADD COLUMN last_export_hash TEXT;
ALTER TABLE product ADD COLUMN export_rejected_hash TEXT;

-- One write request to Xero, persisted (members in export_queue.batch_id, request body, Idempotency-Key) before
-- it is sent. state 'pending' = not yet known to be applied: a rerun resends it first with the same key and body
-- (Xero answers a repeated key with the first response and writes nothing), then applies the answer.
CREATE TABLE export_batch (
    id {{identity}},
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    record_type TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('PUT', 'POST')),
    path TEXT NOT NULL,
    collection TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    body {{json}} NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    error TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    sent_at TIMESTAMP,
    finished_at TIMESTAMP
);

CREATE INDEX ix_export_batch_state ON export_batch (connection_id, state);

-- The order outbox (P6, P7): confirm_order()/void_order() write a row in the same transaction as the status
-- change; the OrderOutboxTrigger watches for pending rows and the xero_order_invoices DAG processes them in id
-- order. idempotency_key is chosen and stored before the request is sent, so a retried or repeated run resends
-- the same key and Xero creates at most one invoice per order.
CREATE TABLE order_outbox (
    id {{identity}},
    operating_company_id BIGINT NOT NULL REFERENCES operating_company (id),
    sales_order_id BIGINT NOT NULL REFERENCES sales_order (id),
    event TEXT NOT NULL CHECK (event IN ('confirmed', 'voided')),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    result TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    processed_at TIMESTAMP
);

CREATE INDEX ix_order_outbox_pending ON order_outbox (state, id);
CREATE INDEX ix_order_outbox_order ON order_outbox (sales_order_id);
