-- P9: before creating Xero contacts, the candidates in the import's mirror (val_contacts: what Xero said at the
-- last import) for every unlinked, exportable customer, by the four keys of include/xero_crm_sync/rules/matching.py
-- set-based: `wanted` and `candidates` compute the compared keys as record_keys / contact_keys do there (trimmed,
-- case-insensitive, empty = none; email and name of ACTIVE contacts only), and each key is one join. Contacts
-- already linked to a CRM customer are not candidates (the last condition). This is a pre-filter: every pair
-- that agrees on a key; rules/matching.decide_all then takes the first level with a candidate (one: a match;
-- several: ambiguous). Keep the two in step: a key added there is a column and a join here, and a term in
-- push/matching.where_clause.
-- Params: :operating_company_id, :connection_id.
WITH wanted AS (
    SELECT sl.id,
        NULLIF(LOWER(TRIM(sl.account_number)), '') AS account_key,
        CAST(sl.id AS TEXT) AS number_key,
        NULLIF(LOWER(TRIM(sl.email)), '') AS email_key,
        NULLIF(LOWER(TRIM(sl.name)), '') AS name_key
    FROM sales_ledger sl
    WHERE sl.operating_company_id = :operating_company_id AND sl.accounting_code IS NULL
      AND sl.do_not_export = FALSE
),
candidates AS (
    SELECT v.xero_id, v.account_number, v.contact_number, v.email_address, v.name, v.contact_status,
        NULLIF(LOWER(TRIM(v.account_number)), '') AS account_key,
        NULLIF(TRIM(v.contact_number), '') AS number_key,
        CASE WHEN v.contact_status = 'ACTIVE' THEN NULLIF(LOWER(TRIM(v.email_address)), '') END AS email_key,
        CASE WHEN v.contact_status = 'ACTIVE' THEN NULLIF(LOWER(TRIM(v.name)), '') END AS name_key
    FROM val_contacts v
    WHERE v.connection_id = :connection_id
)
SELECT p.*
FROM (
    SELECT w.id AS ledger_id, c.xero_id, c.account_number, c.contact_number, c.email_address, c.name,
        c.contact_status
    FROM wanted w JOIN candidates c ON c.account_key = w.account_key
    UNION
    SELECT w.id, c.xero_id, c.account_number, c.contact_number, c.email_address, c.name, c.contact_status
    FROM wanted w JOIN candidates c ON c.number_key = w.number_key
    UNION
    SELECT w.id, c.xero_id, c.account_number, c.contact_number, c.email_address, c.name, c.contact_status
    FROM wanted w JOIN candidates c ON c.email_key = w.email_key
    UNION
    SELECT w.id, c.xero_id, c.account_number, c.contact_number, c.email_address, c.name, c.contact_status
    FROM wanted w JOIN candidates c ON c.name_key = w.name_key
) p
-- Checked on the pairs found, not on every mirrored contact: the mirror can hold 100,000 of them.
WHERE NOT EXISTS (SELECT 1 FROM sales_ledger o
                  WHERE o.operating_company_id = :operating_company_id AND o.accounting_code = p.xero_id);
