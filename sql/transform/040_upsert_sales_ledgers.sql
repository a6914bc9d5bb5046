-- I2 (with S1, S4, S10, I14): Xero contacts -> sales ledgers (customer accounts), keyed on the ContactID.
-- Params: :run_id, :connection_id, :operating_company_id, :now, :display_description, :default_account_manager_id.
--
-- Which contacts of this run:
--   * a contact already linked to a sales ledger is always updated, whatever IsCustomer says now;
--   * otherwise only ACTIVE customers (IsCustomer; "both" included) become new ledgers, unless the matching step
--     held them back in this run (ambiguous match, or the matching CRM ledger is flagged do not import).
--     So an archived contact never imported stays out.
-- Status: a linked contact archived in Xero puts an Active ledger On Stop and remembers why
-- (on_stop_source = 'xero_archived'); restored in Xero, that ledger goes back to Active. An On Stop set by a CRM
-- user (on_stop_source NULL or 'user') is never cleared by the import.
-- An update happens only when a Xero value changed (an unchanged ledger keeps its last import date), never on a
-- ledger flagged do_not_import, and not while a CRM change to it waits in the export queue (the push wins).
-- Nor when the CRM changed the ledger since its last push while Xero still holds exactly what that push sent:
-- Xero's record is then only the echo of our own write (the push stamped it after the watermark), and applying
-- it would silently undo the CRM's change before the next push could send it.
-- New ledgers get the default account manager (S4); the account manager of existing ones is the CRM's.
INSERT INTO sales_ledger (
    operating_company_id, accounting_code, account_number, name, display_description, status, on_stop_source,
    currency_code, tax_type, tax_number, email, phone, mobile, address_line1, address_line2, city, region,
    postal_code, country, account_manager_id, xero_contact_number, xero_contact_status,
    last_accounting_import_date, created_at, updated_at)
SELECT
    :operating_company_id, v.xero_id, v.account_number, v.name,
    CASE WHEN :display_description = 'account_number' AND COALESCE(v.account_number, '') <> ''
         THEN v.account_number ELSE v.name END,
    -- New rows are ACTIVE contacts, except an archived contact whose ledger exists (then this row only feeds
    -- the update below through excluded.*).
    CASE WHEN v.contact_status = 'ACTIVE' THEN 'Active' ELSE 'On Stop' END,
    CASE WHEN v.contact_status = 'ACTIVE' THEN NULL ELSE 'xero_archived' END,
    v.default_currency, v.accounts_receivable_tax_type, v.tax_number, v.email_address, v.phone, v.mobile,
    v.address_line1, v.address_line2, v.city, v.region, v.postal_code, v.country,
    CAST(:default_account_manager_id AS BIGINT), v.contact_number, v.contact_status,
    :now, :now, :now
FROM val_contacts v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
  AND (
    EXISTS (SELECT 1 FROM sales_ledger sl
            WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code = v.xero_id)
    OR (v.contact_status = 'ACTIVE' AND v.is_customer = TRUE
        AND NOT EXISTS (SELECT 1 FROM contact_match m
                        WHERE m.connection_id = :connection_id AND m.xero_id = v.xero_id AND m.ledger_type = 'sales'
                          AND m.run_id = :run_id AND m.outcome <> 'linked'))
  )
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    account_number = excluded.account_number,
    name = excluded.name,
    display_description = excluded.display_description,
    status = CASE
        WHEN excluded.xero_contact_status <> 'ACTIVE' AND sales_ledger.status = 'Active' THEN 'On Stop'
        WHEN excluded.xero_contact_status = 'ACTIVE' AND sales_ledger.on_stop_source = 'xero_archived' THEN 'Active'
        ELSE sales_ledger.status END,
    on_stop_source = CASE
        WHEN excluded.xero_contact_status <> 'ACTIVE' AND sales_ledger.status = 'Active' THEN 'xero_archived'
        WHEN excluded.xero_contact_status = 'ACTIVE' AND sales_ledger.on_stop_source = 'xero_archived' THEN NULL
        ELSE sales_ledger.on_stop_source END,
    currency_code = excluded.currency_code,
    tax_type = excluded.tax_type,
    tax_number = excluded.tax_number,
    email = excluded.email,
    phone = excluded.phone,
    mobile = excluded.mobile,
    address_line1 = excluded.address_line1,
    address_line2 = excluded.address_line2,
    city = excluded.city,
    region = excluded.region,
    postal_code = excluded.postal_code,
    country = excluded.country,
    xero_contact_number = excluded.xero_contact_number,
    xero_contact_status = excluded.xero_contact_status,
    last_accounting_import_date = excluded.last_accounting_import_date,
    updated_at = excluded.updated_at
WHERE sales_ledger.do_not_import = FALSE
  AND NOT EXISTS (SELECT 1 FROM export_in_flight q
                  WHERE q.record_type = 'sales_ledger' AND q.record_id = sales_ledger.id)
  -- The echo rule above, push -> import (the hashes: sql/views/010_push_customer_fields.sql).
  AND NOT EXISTS (
    SELECT 1
    FROM push_customer_mirror m
    WHERE m.id = sales_ledger.id AND m.connection_id = :connection_id
      AND m.last_export_hash IS NOT NULL
      AND m.fields_hash <> m.last_export_hash
      AND m.last_export_hash = m.mirror_hash)
  AND (sales_ledger.account_number, sales_ledger.name, sales_ledger.display_description, sales_ledger.currency_code,
       sales_ledger.tax_type, sales_ledger.tax_number, sales_ledger.email, sales_ledger.phone, sales_ledger.mobile,
       sales_ledger.address_line1, sales_ledger.address_line2, sales_ledger.city, sales_ledger.region,
       sales_ledger.postal_code, sales_ledger.country, sales_ledger.xero_contact_number,
       sales_ledger.xero_contact_status)
      IS DISTINCT FROM
      (excluded.account_number, excluded.name, excluded.display_description, excluded.currency_code,
       excluded.tax_type, excluded.tax_number, excluded.email, excluded.phone, excluded.mobile,
       excluded.address_line1, excluded.address_line2, excluded.city, excluded.region,
       excluded.postal_code, excluded.country, excluded.xero_contact_number, excluded.xero_contact_status);

-- S1 applies to every synced ledger, so a change of the setting relabels them at the next run (not only those
-- Xero changed). Not an import of Xero data: the import date stays.
UPDATE sales_ledger
SET display_description = CASE WHEN :display_description = 'account_number' AND COALESCE(account_number, '') <> ''
                               THEN account_number ELSE name END
WHERE operating_company_id = :operating_company_id AND accounting_code IS NOT NULL AND do_not_import = FALSE
  AND display_description IS DISTINCT FROM
      CASE WHEN :display_description = 'account_number' AND COALESCE(account_number, '') <> ''
           THEN account_number ELSE name END;
