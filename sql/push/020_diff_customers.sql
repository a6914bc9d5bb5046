-- P1/P4/S10: the customers to push to this organisation: new ones (no accounting code yet) and those whose pushed
-- fields changed since their last successful push (hash differs), never one flagged do_not_export.
-- Left out: records already in an unfinished batch (the resume step owns them) and records Xero rejected with
-- exactly these values (no change, no call), unless a user set their unresolved error to 'retrying'.
-- Params: :operating_company_id, :connection_id, :only_id (one sales_ledger id, or NULL for all).
SELECT f.*
FROM push_customer_fields f
WHERE f.operating_company_id = :operating_company_id
  AND f.do_not_export = FALSE
  AND (f.accounting_code IS NULL OR f.last_export_hash IS NULL OR f.last_export_hash <> f.fields_hash)
  AND (f.export_rejected_hash IS NULL OR f.export_rejected_hash <> f.fields_hash
       OR EXISTS (SELECT 1 FROM sync_error e
                  WHERE e.connection_id = :connection_id AND e.direction = 'export'
                    AND e.record_type = 'sales_ledger' AND e.record_id = f.id AND e.status = 'retrying'))
  AND NOT EXISTS (SELECT 1 FROM export_in_flight q WHERE q.record_type = 'sales_ledger' AND q.record_id = f.id)
  AND (CAST(:only_id AS BIGINT) IS NULL OR f.id = CAST(:only_id AS BIGINT))
ORDER BY f.id;
