-- S4's documented default is the "Unassigned" CRM user, but only the demo created it: operating companies made by
-- `connect --create-operating-company` had no such user and S4 empty, so imported ledgers got no account manager
-- and overdue invoices notified nobody (140_notify_overdue_invoices.sql needs one). Once, for those companies:
-- create the user and point an empty S4 at it. From now on `migrate` and `connect` create both for every company
-- (company_settings.ensure_defaults), and an S4 someone later sets to none stays none.
INSERT INTO crm_user (operating_company_id, name)
SELECT id, 'Unassigned' FROM operating_company WHERE TRUE
ON CONFLICT (operating_company_id, name) DO NOTHING;

UPDATE integration_settings
SET default_account_manager_id = (
    SELECT u.id FROM crm_user u
    WHERE u.operating_company_id = integration_settings.operating_company_id AND u.name = 'Unassigned')
WHERE default_account_manager_id IS NULL;
