-- I12: a Xero contact matching several unlinked CRM ledgers is neither linked nor created; it is listed as an
-- unresolved error so a user decides (link the right ledger by setting its accounting code, or dismiss the error
-- to import the contact as a new ledger). Reads the outcomes the matching step wrote for this run.
-- Params: :run_id, :connection_id, :now.
INSERT INTO sync_error (
    connection_id, direction, record_type, record_id, xero_id, error_code, dedupe_key, message, action, status,
    attempts, run_id, first_seen_at, last_seen_at)
SELECT m.connection_id, 'import', m.ledger_type || '_ledger', NULL, m.xero_id, 'ambiguous_match',
    'import:' || m.ledger_type || '_ledger:' || m.xero_id || ':' || 'ambiguous_match',
    'Xero contact ' || COALESCE(v.name, m.xero_id) || ' (' || m.xero_id || ') matches more than one unlinked CRM '
        || m.ledger_type || ' ledger by ' || m.match_key || ' (ledger ids ' || COALESCE(m.candidate_ids, '?')
        || '): not linked and not imported',
    'Set the accounting code of the right CRM ledger to ' || m.xero_id
        || ' (or remove the duplicate), or dismiss this error to import the contact as a new ledger',
    'open', 1, :run_id, :now, :now
FROM contact_match m
JOIN val_contacts v ON v.connection_id = m.connection_id AND v.xero_id = m.xero_id
WHERE m.connection_id = :connection_id AND m.run_id = :run_id AND m.outcome = 'ambiguous'
ON CONFLICT (connection_id, dedupe_key) DO UPDATE SET
    message = excluded.message,
    run_id = excluded.run_id,
    last_seen_at = excluded.last_seen_at,
    attempts = sync_error.attempts + 1
WHERE sync_error.status IN ('open', 'retrying') AND sync_error.run_id <> excluded.run_id;

-- A user linked the contact (or it was linked since): the error is resolved.
UPDATE sync_error SET status = 'resolved', resolved_at = :now
WHERE connection_id = :connection_id AND error_code = 'ambiguous_match' AND status IN ('open', 'retrying')
  AND (EXISTS (SELECT 1 FROM sales_ledger sl JOIN xero_connection x ON x.operating_company_id = sl.operating_company_id
               WHERE x.id = :connection_id AND sl.accounting_code = sync_error.xero_id
                 AND sync_error.record_type = 'sales_ledger')
    OR EXISTS (SELECT 1 FROM purchase_ledger pl JOIN xero_connection x ON x.operating_company_id = pl.operating_company_id
               WHERE x.id = :connection_id AND pl.accounting_code = sync_error.xero_id
                 AND sync_error.record_type = 'purchase_ledger'));
