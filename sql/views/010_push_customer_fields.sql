-- The customer contract of the push (P1, P4), declared once: the fields pushed to a Xero contact as Xero will
-- hold them, their hash, and the same hash over what the import's mirror (val_contacts) says Xero holds.
-- migrate.py re-creates these views from this file (sql/views/ is not a migration: edit it in place).
--
-- push_customer_fields: one row per sales ledger.
--   contact_status: On Stop in the CRM is a credit hold. It is pushed as ARCHIVED only when it came from Xero (the
--     contact was archived there: on_stop_source = 'xero_archived', so nothing changes). An On Stop a CRM user set
--     stays ACTIVE in Xero: archiving would hide the contact from the accounts team, who still chase its invoices.
--     A CRM user making a customer Active again is pushed as ACTIVE, which restores a contact archived in Xero.
--   has_person / first_name / last_name: the contact name is the ledger's CRM contact person; only with one are
--     FirstName/LastName sent. The placeholder person the import's missing-record step (I4) creates for a Xero
--     contact without a name (no first name, the account's name as last name) is not a person's name: Xero never
--     had it, so its last name is not pushed.
--   fields_hash: md5 of exactly the pushed fields, '|'-separated, in the order below. last_export_hash holds it
--     as of the last successful push (or as adopted from an import, sql/echo/); a record is "changed" while the
--     two differ. export_rejected_hash: the hash Xero (or matching) last rejected, so the same values are not
--     resent every run.
CREATE VIEW push_customer_fields AS
SELECT
    p.id, p.operating_company_id, p.accounting_code, p.do_not_export, p.last_export_hash, p.export_rejected_hash,
    p.name, p.email, p.currency_code, p.contact_status, p.tax_type, p.tax_number, p.phone, p.mobile,
    p.address_line1, p.address_line2, p.city, p.region, p.postal_code, p.country,
    p.has_person, p.first_name, p.last_name,
    md5(COALESCE(p.name, '') || '|' || COALESCE(p.email, '') || '|' || COALESCE(p.currency_code, '') || '|'
        || p.contact_status || '|'
        || COALESCE(p.tax_type, '') || '|' || COALESCE(p.tax_number, '') || '|'
        || COALESCE(p.phone, '') || '|' || COALESCE(p.mobile, '') || '|'
        || COALESCE(p.address_line1, '') || '|' || COALESCE(p.address_line2, '') || '|'
        || COALESCE(p.city, '') || '|' || COALESCE(p.region, '') || '|' || COALESCE(p.postal_code, '') || '|'
        || COALESCE(p.country, '') || '|' || COALESCE(p.first_name, '') || '|' || COALESCE(p.last_name, ''))
        AS fields_hash
FROM (
    SELECT
        sl.id, sl.operating_company_id, sl.accounting_code, sl.do_not_export, sl.last_export_hash,
        sl.export_rejected_hash, sl.name, sl.email, sl.currency_code,
        CASE WHEN sl.status = 'On Stop' AND sl.on_stop_source = 'xero_archived' THEN 'ARCHIVED' ELSE 'ACTIVE' END
            AS contact_status,
        sl.tax_type, sl.tax_number, sl.phone, sl.mobile, sl.address_line1, sl.address_line2, sl.city, sl.region,
        sl.postal_code, sl.country,
        CASE WHEN c.id IS NULL THEN FALSE ELSE TRUE END AS has_person,
        c.first_name,
        CASE WHEN COALESCE(c.first_name, '') = '' AND c.last_name = sl.name THEN NULL ELSE c.last_name END
            AS last_name
    FROM sales_ledger sl
    LEFT JOIN contact c ON c.id = sl.contact_id
) p;

-- push_customer_mirror: a linked customer beside its contact in the import's mirror (one row per connection that
-- read it). mirror_hash is fields_hash's expression over what Xero holds: the same fields in the same order, each
-- mapped the way the import maps it (040_upsert_sales_ledgers.sql); the person's names count only when the CRM
-- sends them. The echo rule (sql/echo/, docs/ARCHITECTURE.md) compares these hashes.
CREATE VIEW push_customer_mirror AS
SELECT
    f.id, v.connection_id, v.xero_id, v.last_extracted_at, f.fields_hash, f.last_export_hash,
    md5(COALESCE(v.name, '') || '|' || COALESCE(v.email_address, '') || '|' || COALESCE(v.default_currency, '')
        || '|' || COALESCE(v.contact_status, '') || '|'
        || COALESCE(v.accounts_receivable_tax_type, '') || '|' || COALESCE(v.tax_number, '') || '|'
        || COALESCE(v.phone, '') || '|' || COALESCE(v.mobile, '') || '|'
        || COALESCE(v.address_line1, '') || '|' || COALESCE(v.address_line2, '') || '|'
        || COALESCE(v.city, '') || '|' || COALESCE(v.region, '') || '|' || COALESCE(v.postal_code, '') || '|'
        || COALESCE(v.country, '') || '|'
        || CASE WHEN f.has_person THEN COALESCE(v.first_name, '') ELSE '' END || '|'
        || CASE WHEN f.has_person THEN COALESCE(v.last_name, '') ELSE '' END) AS mirror_hash
FROM push_customer_fields f
JOIN val_contacts v ON v.xero_id = f.accounting_code;
