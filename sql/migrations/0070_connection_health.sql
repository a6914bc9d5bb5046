-- Connection health (C4, C5, O2): what the xero_connection_health DAG saw at each check, and on the connection
-- the latest of it, who disconnected it, and when its access token runs out (a time, not a secret).

-- health: ok | refresh_failed | reconnect_required | tenant_missing | unreachable | disconnected
ALTER TABLE xero_connection ADD COLUMN health TEXT;
-- disconnected_by: crm (the `disconnect` command) | xero (the organisation was disconnected in Xero)
ALTER TABLE xero_connection ADD COLUMN disconnected_by TEXT;
ALTER TABLE xero_connection ADD COLUMN token_expires_at TIMESTAMP;

-- One row per connection and check; old rows are pruned by the health step (a few weeks are kept).
CREATE TABLE connection_health_check (
    id {{identity}},
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    checked_at TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL CHECK (
        outcome IN ('ok', 'refresh_failed', 'reconnect_required', 'tenant_missing', 'unreachable', 'skipped')
    ),
    refreshed BOOLEAN NOT NULL DEFAULT FALSE,
    detail TEXT,
    run_id TEXT
);

CREATE INDEX ix_connection_health_check ON connection_health_check (connection_id, checked_at);
