-- Issue 13: a line table's (run_id, connection_id) index repeated the leading columns of its parent index
-- (run_id, connection_id, parent_id), which serves the same lookups; on a million line rows it only cost writes.
-- The staging tables are created by migrate's registry step after the migrations: on a new database there is
-- nothing to drop yet (IF EXISTS).
DROP INDEX IF EXISTS ix_stg_contact_persons_run;
DROP INDEX IF EXISTS ix_stg_invoice_lines_run;
DROP INDEX IF EXISTS ix_stg_credit_note_lines_run;
DROP INDEX IF EXISTS ix_stg_purchase_order_lines_run;
