-- The integration's own tables: connections (C2-C5), settings (S1-S9), watermarks and runs (I9), quarantine (I11),
-- unresolved errors, the export queue and the import/export history (P8, O2), and the I12 matching outcomes.
-- Macros as in 0001_crm_core.sql.

-- A CRM operating company connects to at most one primary and one secondary Xero organisation (C2), and one Xero
-- organisation belongs to one operating company. Both rules ignore disconnected rows, which stay as history
-- (runs and errors point at them). token_blob is the encrypted token set (the token store writes it; never
-- logged, never shown).
CREATE TABLE xero_connection (
    id {{identity}},
    operating_company_id BIGINT NOT NULL REFERENCES operating_company (id),
    role TEXT NOT NULL CHECK (role IN ('primary', 'secondary')),
    tenant_id TEXT NOT NULL,
    tenant_name TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reconnect', 'disconnected')),
    token_blob TEXT,
    scopes TEXT,
    authorised_by TEXT,
    connected_at TIMESTAMP,
    disconnected_at TIMESTAMP,
    last_refresh_at TIMESTAMP,
    last_health_check_at TIMESTAMP,
    last_error TEXT,
    last_error_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    updated_at TIMESTAMP
);

CREATE UNIQUE INDEX ux_xero_connection_role ON xero_connection (operating_company_id, role)
    WHERE status <> 'disconnected';
CREATE UNIQUE INDEX ux_xero_connection_tenant ON xero_connection (tenant_id) WHERE status <> 'disconnected';

-- S1-S9 per operating company (S10 is per record). Validated when set by company_settings.py; the CHECKs are
-- the last line of defence for writes that bypass it.
CREATE TABLE integration_settings (
    operating_company_id BIGINT PRIMARY KEY REFERENCES operating_company (id),
    display_description TEXT NOT NULL DEFAULT 'name' CHECK (display_description IN ('account_number', 'name')),
    b2c_mode TEXT NOT NULL DEFAULT 'manual' CHECK (b2c_mode IN ('regex', 'manual')),
    b2c_regex TEXT,
    missing_records_mode TEXT NOT NULL DEFAULT 'active' CHECK (missing_records_mode IN ('none', 'active', 'all')),
    missing_records_include_suppliers BOOLEAN NOT NULL DEFAULT FALSE,
    missing_records_include_b2c BOOLEAN NOT NULL DEFAULT FALSE,
    default_account_manager_id BIGINT REFERENCES crm_user (id),
    default_role_code TEXT REFERENCES role_code (code),
    default_company_type_id INTEGER REFERENCES company_type (id),
    import_currencies BOOLEAN NOT NULL DEFAULT TRUE,
    template_ledger TEXT,
    sync_interval_minutes INTEGER NOT NULL DEFAULT 5 CHECK (sync_interval_minutes BETWEEN 1 AND 1440),
    updated_at TIMESTAMP
);

-- Incremental reads (I9): per connection and entity, the UpdatedDateUTC watermark and the last runs.
CREATE TABLE sync_watermark (
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    entity TEXT NOT NULL,
    watermark_at TIMESTAMP,
    last_full_sync_at TIMESTAMP,
    last_successful_run_id TEXT,
    last_successful_run_at TIMESTAMP,
    records_read INTEGER NOT NULL DEFAULT 0,
    records_valid INTEGER NOT NULL DEFAULT 0,
    records_quarantined INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMP,
    PRIMARY KEY (connection_id, entity)
);

-- One row per import or push run and connection.
CREATE TABLE sync_run (
    id {{identity}},
    run_id TEXT NOT NULL,
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    kind TEXT NOT NULL CHECK (kind IN ('import', 'push')),
    mode TEXT NOT NULL DEFAULT 'incremental',
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'partial', 'failed')),
    started_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    finished_at TIMESTAMP,
    counts {{json}},
    error TEXT,
    UNIQUE (run_id, connection_id, kind)
);

-- Records that failed validation (I11): kept with their reasons, not loaded.
CREATE TABLE quarantined_record (
    id {{identity}},
    run_id TEXT NOT NULL,
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    entity TEXT NOT NULL,
    xero_id TEXT,
    reasons {{json}} NOT NULL,
    raw {{json}},
    created_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    resolved_at TIMESTAMP,
    resolution TEXT
);

CREATE INDEX ix_quarantined_record_run ON quarantined_record (connection_id, run_id);
CREATE INDEX ix_quarantined_record_xero_id ON quarantined_record (connection_id, entity, xero_id);

-- Unresolved errors, import and export (P8). dedupe_key identifies "the same problem" so a rerun updates the
-- row (last_seen_at, attempts) instead of adding another; e.g. 'import:contact:<ContactID>:ambiguous_match'.
CREATE TABLE sync_error (
    id {{identity}},
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    direction TEXT NOT NULL CHECK (direction IN ('import', 'export')),
    record_type TEXT NOT NULL,
    record_id BIGINT,
    xero_id TEXT,
    error_code TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    message TEXT NOT NULL,
    xero_message TEXT,
    action TEXT,
    payload {{json}},
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'retrying', 'resolved', 'dismissed')),
    attempts INTEGER NOT NULL DEFAULT 1,
    run_id TEXT,
    first_seen_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    last_seen_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    resolved_at TIMESTAMP,
    UNIQUE (connection_id, dedupe_key)
);

CREATE INDEX ix_sync_error_status ON sync_error (status, direction);

-- Pushes waiting to be sent (P8). fields_hash is a hash of the pushed fields (skip a push that changes
-- nothing); idempotency_key is sent to Xero so a retried request never creates twice.
CREATE TABLE export_queue (
    id {{identity}},
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    record_type TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    operation TEXT NOT NULL,
    fields_hash TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    batch_id TEXT,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'in_progress', 'done', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    payload {{json}},
    last_error TEXT,
    enqueued_at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);

CREATE INDEX ix_export_queue_state ON export_queue (state, connection_id);
CREATE INDEX ix_export_queue_record ON export_queue (record_type, record_id);

-- What was synced, both directions (P8). Imports add one row per record created or changed in a run.
CREATE TABLE sync_history (
    id {{identity}},
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    direction TEXT NOT NULL CHECK (direction IN ('import', 'export')),
    record_type TEXT NOT NULL,
    record_id BIGINT,
    xero_id TEXT,
    operation TEXT NOT NULL,
    run_id TEXT,
    at TIMESTAMP NOT NULL DEFAULT {{utc_now}},
    details TEXT
);

CREATE UNIQUE INDEX ux_sync_history_run_record ON sync_history (run_id, direction, record_type, record_id);
CREATE INDEX ix_sync_history_record ON sync_history (record_type, record_id);
CREATE INDEX ix_sync_history_at ON sync_history (connection_id, at);

-- How each unlinked Xero contact was matched to an existing CRM ledger (I12), per ledger kind:
-- outcome 'linked' (match_key says by what), 'ambiguous' (several candidates: neither linked nor created until
-- a user decides) or 'do_not_import' (the matching CRM record is flagged do not import: left alone, not created).
CREATE TABLE contact_match (
    connection_id BIGINT NOT NULL REFERENCES xero_connection (id),
    xero_id TEXT NOT NULL,
    ledger_type TEXT NOT NULL CHECK (ledger_type IN ('sales', 'purchase')),
    outcome TEXT NOT NULL CHECK (outcome IN ('linked', 'ambiguous', 'do_not_import')),
    match_key TEXT NOT NULL CHECK (match_key IN ('account_number', 'contact_number', 'email', 'name')),
    ledger_id BIGINT,
    candidate_ids TEXT,
    run_id TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    PRIMARY KEY (connection_id, xero_id, ledger_type)
);
