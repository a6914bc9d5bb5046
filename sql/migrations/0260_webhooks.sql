-- Xero webhooks (issue 11): the app's webhook key, every event the receiver accepted, and what became of it.
-- Macros as in 0001_crm_core.sql.

-- One row per Xero app (webhooks are per app). key_blob is the webhook key encrypted with XERO_CRM_FERNET_KEY
-- (secrets.py): never logged, never shown. The receiver's health is kept on the same row: when it last saw a
-- correctly signed request, and one carrying events.
CREATE TABLE webhook_key (
    client_id TEXT PRIMARY KEY,
    key_blob TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    updated_at TIMESTAMP,
    last_delivery_at TIMESTAMP,
    last_event_at TIMESTAMP,
    deliveries BIGINT NOT NULL DEFAULT 0
);

-- Each event is stored before the receiver answers 200. The unique key makes a duplicate or replayed delivery
-- insert nothing. state: pending (waits for the xero_webhook_import DAG) | done (its record was re-read from
-- Xero and loaded by run_id) | ignored (no active connection for the tenant, or a category not imported).
CREATE TABLE webhook_event (
    id {{identity}},
    tenant_id TEXT NOT NULL,
    event_category TEXT NOT NULL,
    event_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    event_date_utc TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'ignored')),
    processed_at TIMESTAMP,
    run_id TEXT,
    detail TEXT
);

CREATE UNIQUE INDEX ux_webhook_event ON webhook_event (
    tenant_id, event_category, resource_id, event_type, event_date_utc
);
CREATE INDEX ix_webhook_event_state ON webhook_event (state, id);
