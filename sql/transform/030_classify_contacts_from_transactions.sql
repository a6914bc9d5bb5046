-- I2 under Xero's real semantics: IsCustomer/IsSupplier are set by Xero when a transaction names the contact, and
-- that does not move the contact's UpdatedDateUTC (https://developer.xero.com/documentation/api/accounting/contacts),
-- so an incremental import (If-Modified-Since) never re-reads a contact that has just become a customer.
-- The role is derived from the transactions this run loaded instead: a contact named by one of this run's
-- ACCREC invoices or ACCRECCREDIT credit notes is a customer, by an ACCPAY invoice, an ACCPAYCREDIT credit note
-- or a purchase order a supplier. Its mirror row says so and joins this run, so matching (030-035), the ledger
-- upserts (040, 045) and the missing records (060, 065) treat it as if Xero had sent it again: the sales ledger
-- exists from its first ACCREC invoice on.
-- Params: :run_id, :connection_id.
UPDATE val_contacts SET is_customer = TRUE, last_run_id = :run_id
WHERE connection_id = :connection_id AND COALESCE(is_customer, FALSE) = FALSE
  AND xero_id IN (
      SELECT i.contact_id FROM val_invoices i
      WHERE i.connection_id = :connection_id AND i.last_run_id = :run_id AND i.type = 'ACCREC'
      UNION
      SELECT c.contact_id FROM val_credit_notes c
      WHERE c.connection_id = :connection_id AND c.last_run_id = :run_id AND c.type = 'ACCRECCREDIT');

UPDATE val_contacts SET is_supplier = TRUE, last_run_id = :run_id
WHERE connection_id = :connection_id AND COALESCE(is_supplier, FALSE) = FALSE
  AND xero_id IN (
      SELECT i.contact_id FROM val_invoices i
      WHERE i.connection_id = :connection_id AND i.last_run_id = :run_id AND i.type = 'ACCPAY'
      UNION
      SELECT c.contact_id FROM val_credit_notes c
      WHERE c.connection_id = :connection_id AND c.last_run_id = :run_id AND c.type = 'ACCPAYCREDIT'
      UNION
      SELECT p.contact_id FROM val_purchase_orders p
      WHERE p.connection_id = :connection_id AND p.last_run_id = :run_id);
