-- The push, CRM -> Xero (P1-P9): what was last pushed per record, the batches sent to Xero (crash safety), the
-- order outbox that drives Draft invoices (P6, P7), and two views that define "the pushed fields" and their hash
-- once for every step and for analysts. Macros as in 0001_crm_core.sql.

-- last_export_hash: md5 of exactly the pushed fields at the last successful push (or as Xero already has them,
-- when an import brought them: see sql/push/adopt_*.sql). A record is "changed" while its hash differs.
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

-- The pushed fields of a customer (P1) as Xero will hold them, and their hash. Numbers are not involved; the
-- contact name is the ledger's CRM contact person. has_person: only then are FirstName/LastName sent.
CREATE VIEW push_customer_fields AS
SELECT
    sl.id,
    sl.operating_company_id,
    sl.accounting_code,
    sl.do_not_export,
    sl.last_export_hash,
    sl.export_rejected_hash,
    sl.name,
    sl.email,
    sl.currency_code,
    CASE WHEN sl.status = 'On Stop' THEN 'ARCHIVED' ELSE 'ACTIVE' END AS contact_status,
    sl.tax_type,
    sl.tax_number,
    sl.phone,
    sl.mobile,
    sl.address_line1,
    sl.address_line2,
    sl.city,
    sl.region,
    sl.postal_code,
    sl.country,
    CASE WHEN c.id IS NULL THEN FALSE ELSE TRUE END AS has_person,
    c.first_name,
    c.last_name,
    md5(COALESCE(sl.name, '') || '|' || COALESCE(sl.email, '') || '|' || COALESCE(sl.currency_code, '') || '|'
        || CASE WHEN sl.status = 'On Stop' THEN 'ARCHIVED' ELSE 'ACTIVE' END || '|'
        || COALESCE(sl.tax_type, '') || '|' || COALESCE(sl.tax_number, '') || '|'
        || COALESCE(sl.phone, '') || '|' || COALESCE(sl.mobile, '') || '|'
        || COALESCE(sl.address_line1, '') || '|' || COALESCE(sl.address_line2, '') || '|'
        || COALESCE(sl.city, '') || '|' || COALESCE(sl.region, '') || '|' || COALESCE(sl.postal_code, '') || '|'
        || COALESCE(sl.country, '') || '|' || COALESCE(c.first_name, '') || '|' || COALESCE(c.last_name, ''))
        AS fields_hash
FROM sales_ledger sl
LEFT JOIN contact c ON c.id = sl.contact_id;

-- The pushed fields of a product (P3) and their hash. Prices enter the hash as integers of 1/10,000 so that
-- SQLite (REAL) and PostgreSQL (NUMERIC(19,4)) hash the same value the same way.
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
