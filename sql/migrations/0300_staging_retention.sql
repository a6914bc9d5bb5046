-- Staging retention: staged rows (with each record's raw payload) were kept for ever. A 100,000-contact
-- organisation's full reconcile stages about 800 MiB a day, so a month of them filled tens of GiB. `retention`
-- now forgets what an import run staged once the run is older than the retention window, except the staged rows
-- the mirror still points at; it stamps the run when nothing of it is left, so that it is never looked at again.
ALTER TABLE sync_run ADD COLUMN staging_pruned_at TIMESTAMP;
-- The runs still to look at, oldest first: a partial index (the same syntax and meaning on SQLite and PostgreSQL).
CREATE INDEX IF NOT EXISTS ix_sync_run_staging_unpruned ON sync_run (started_at)
    WHERE staging_pruned_at IS NULL AND kind = 'import';
