-- Notifications that reach people (issue 14 item 4): account managers get their new notifications by email.
-- email_claim/email_claimed_at: the sender that is mailing the row (a rerun or a second sender leaves it alone);
-- emailed_at: sent, never again; email_error: the last failure (the row is sent on a later run).
ALTER TABLE notification ADD COLUMN email_claim TEXT;
ALTER TABLE notification ADD COLUMN email_claimed_at TIMESTAMP;
ALTER TABLE notification ADD COLUMN emailed_at TIMESTAMP;
ALTER TABLE notification ADD COLUMN email_error TEXT;
CREATE INDEX ix_notification_unsent ON notification (emailed_at, crm_user_id);
