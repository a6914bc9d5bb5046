-- Who retried or dismissed an unresolved error on the status page (P8): the Airflow user, for the audit trail.
ALTER TABLE sync_error ADD COLUMN resolved_by TEXT;
