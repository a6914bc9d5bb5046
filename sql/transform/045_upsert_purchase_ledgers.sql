-- I2 (with S10, I14): Xero contacts that are suppliers -> purchase ledgers (supplier accounts), keyed on the
-- ContactID. A contact that is both customer and supplier has both ledgers (same accounting code).
-- Params: :run_id, :connection_id, :operating_company_id, :now.
-- Same rules as 040_upsert_sales_ledgers.sql: linked contacts always update; only ACTIVE suppliers not held back
-- by the matching step become new ledgers; archived -> On Stop (remembered) and back; unchanged rows keep
-- their import date; do_not_import and pending pushes are left alone.
INSERT INTO purchase_ledger (
    operating_company_id, accounting_code, account_number, name, status, on_stop_source,
    currency_code, tax_type, tax_number, email, phone, mobile, address_line1, address_line2, city, region,
    postal_code, country, xero_contact_number, xero_contact_status,
    last_accounting_import_date, created_at, updated_at)
SELECT
    :operating_company_id, v.xero_id, v.account_number, v.name,
    CASE WHEN v.contact_status = 'ACTIVE' THEN 'Active' ELSE 'On Stop' END,
    CASE WHEN v.contact_status = 'ACTIVE' THEN NULL ELSE 'xero_archived' END,
    v.default_currency, v.accounts_payable_tax_type, v.tax_number, v.email_address, v.phone, v.mobile,
    v.address_line1, v.address_line2, v.city, v.region, v.postal_code, v.country,
    v.contact_number, v.contact_status,
    :now, :now, :now
FROM val_contacts v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
  AND (
    EXISTS (SELECT 1 FROM purchase_ledger pl
            WHERE pl.operating_company_id = :operating_company_id AND pl.accounting_code = v.xero_id)
    OR (v.contact_status = 'ACTIVE' AND v.is_supplier = TRUE
        AND NOT EXISTS (SELECT 1 FROM contact_match m
                        WHERE m.connection_id = :connection_id AND m.xero_id = v.xero_id
                          AND m.ledger_type = 'purchase' AND m.run_id = :run_id AND m.outcome <> 'linked'))
  )
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    account_number = excluded.account_number,
    name = excluded.name,
    status = CASE
        WHEN excluded.xero_contact_status <> 'ACTIVE' AND purchase_ledger.status = 'Active' THEN 'On Stop'
        WHEN excluded.xero_contact_status = 'ACTIVE' AND purchase_ledger.on_stop_source = 'xero_archived' THEN 'Active'
        ELSE purchase_ledger.status END,
    on_stop_source = CASE
        WHEN excluded.xero_contact_status <> 'ACTIVE' AND purchase_ledger.status = 'Active' THEN 'xero_archived'
        WHEN excluded.xero_contact_status = 'ACTIVE' AND purchase_ledger.on_stop_source = 'xero_archived' THEN NULL
        ELSE purchase_ledger.on_stop_source END,
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
WHERE purchase_ledger.do_not_import = FALSE
  AND NOT EXISTS (SELECT 1 FROM export_in_flight q
                  WHERE q.record_type = 'purchase_ledger' AND q.record_id = purchase_ledger.id)
  AND (purchase_ledger.account_number, purchase_ledger.name, purchase_ledger.currency_code, purchase_ledger.tax_type,
       purchase_ledger.tax_number, purchase_ledger.email, purchase_ledger.phone, purchase_ledger.mobile,
       purchase_ledger.address_line1, purchase_ledger.address_line2, purchase_ledger.city, purchase_ledger.region,
       purchase_ledger.postal_code, purchase_ledger.country, purchase_ledger.xero_contact_number,
       purchase_ledger.xero_contact_status)
      IS DISTINCT FROM
      (excluded.account_number, excluded.name, excluded.currency_code, excluded.tax_type,
       excluded.tax_number, excluded.email, excluded.phone, excluded.mobile,
       excluded.address_line1, excluded.address_line2, excluded.city, excluded.region,
       excluded.postal_code, excluded.country, excluded.xero_contact_number, excluded.xero_contact_status);
