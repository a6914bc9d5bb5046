-- Issue 13, fix 23: a line table's parent index was (run_id, connection_id, parent_id). The parents' Xero ids are
-- random, so every staged page of lines wrote leaves all over that index; lines now find their staged parent by
-- its (parent_page, parent_position) in the run, an index only ever appended to. Dropped here; migrate's registry
-- step creates the new one under the same name (it creates a declared index a table lacks). On a new database
-- there is nothing to drop yet (IF EXISTS).
DROP INDEX IF EXISTS ix_stg_contact_persons_parent;
DROP INDEX IF EXISTS ix_stg_invoice_lines_parent;
DROP INDEX IF EXISTS ix_stg_credit_note_lines_parent;
DROP INDEX IF EXISTS ix_stg_purchase_order_lines_parent;
