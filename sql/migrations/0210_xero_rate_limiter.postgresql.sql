-- Xero's rate limits, shared by every process and worker that calls an organisation (include/xero_crm_sync/
-- limiter.py): one row per call admitted. A call counts in the per-minute and per-day windows of its organisation
-- (tenant_id) and in the per-minute window of its app (app_id) from `started_at`; it holds one of the
-- organisation's concurrency slots while `lease_until` is in the future (NULL once it answered). A lease expires
-- by itself, so a process killed mid-call never holds a slot forever. Times are seconds since the epoch.
-- On SQLite the limiter keeps these tables in a side file next to the CRM database (the same DDL), so a long load
-- transaction never makes API calls wait for the database's write lock.
CREATE TABLE IF NOT EXISTS xero_rate_call (
    id {{identity}},
    tenant_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION
);

CREATE INDEX IF NOT EXISTS ix_xero_rate_call_tenant ON xero_rate_call (tenant_id, started_at);
CREATE INDEX IF NOT EXISTS ix_xero_rate_call_app ON xero_rate_call (app_id, started_at);
