-- The import's own writes queue no CRM-change outbox rows (issue 13). The outbox (0261) exists to push CRM edits
-- to Xero within seconds; what the import writes is what Xero already holds (the echo rule), so the rows its
-- writes queued were never pushed. They cost a first sync of 100,000 contacts ~210,000 trigger inserts (every new
-- customer and product, then each customer again when 060 links its new company, division and contact), and
-- every poll of CrmChangeTrigger re-checked them all against the pushed fields until the next drain (3.6 s a poll
-- on PostgreSQL after a 10,000-contact first sync: 15,056 pending rows).
--
-- The import's load transaction inserts a row here first and deletes it before it commits
-- (webhooks/outbox.py, `muted`), and the triggers queue nothing while they can see a row. No other transaction
-- ever sees it: on PostgreSQL an uncommitted row is invisible to every other transaction, so a CRM edit
-- committed beside an import still queues its row; SQLite has one writer at a time.
CREATE TABLE crm_change_outbox_muted (
    token TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
