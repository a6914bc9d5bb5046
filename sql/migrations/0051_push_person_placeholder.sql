-- The contact name pushed with a customer (P1) is its CRM contact person's, except the placeholder person the
-- import's missing-record step (I4) creates for a Xero contact without FirstName/LastName: no first name and the
-- account's name as last name. That is not a person's name, Xero never had it, and pushing it would write the
-- company name into the contact's LastName (and make every such imported customer look changed).

DROP VIEW push_customer_fields;

CREATE VIEW push_customer_fields AS
SELECT
    sl.id,
    sl.operating_company_id,
    sl.accounting_code,
    sl.do_not_export,
    sl.last_export_hash,
    sl.export_rejected_hash,
    sl.name,
    sl.email,
    sl.currency_code,
    CASE WHEN sl.status = 'On Stop' THEN 'ARCHIVED' ELSE 'ACTIVE' END AS contact_status,
    sl.tax_type,
    sl.tax_number,
    sl.phone,
    sl.mobile,
    sl.address_line1,
    sl.address_line2,
    sl.city,
    sl.region,
    sl.postal_code,
    sl.country,
    CASE WHEN c.id IS NULL THEN FALSE ELSE TRUE END AS has_person,
    c.first_name,
    CASE WHEN COALESCE(c.first_name, '') = '' AND c.last_name = sl.name THEN NULL ELSE c.last_name END AS last_name,
    md5(COALESCE(sl.name, '') || '|' || COALESCE(sl.email, '') || '|' || COALESCE(sl.currency_code, '') || '|'
        || CASE WHEN sl.status = 'On Stop' THEN 'ARCHIVED' ELSE 'ACTIVE' END || '|'
        || COALESCE(sl.tax_type, '') || '|' || COALESCE(sl.tax_number, '') || '|'
        || COALESCE(sl.phone, '') || '|' || COALESCE(sl.mobile, '') || '|'
        || COALESCE(sl.address_line1, '') || '|' || COALESCE(sl.address_line2, '') || '|'
        || COALESCE(sl.city, '') || '|' || COALESCE(sl.region, '') || '|' || COALESCE(sl.postal_code, '') || '|'
        || COALESCE(sl.country, '') || '|' || COALESCE(c.first_name, '') || '|'
        || COALESCE(CASE WHEN COALESCE(c.first_name, '') = '' AND c.last_name = sl.name THEN NULL
                         ELSE c.last_name END, ''))
        AS fields_hash
FROM sales_ledger sl
LEFT JOIN contact c ON c.id = sl.contact_id;
