-- I1: Xero tax rates -> tax_rate, keyed on the TaxType (accounting_code).
-- Params: :run_id, :connection_id, :operating_company_id, :now.
-- I14: a rate whose values did not change keeps its last import date; S10: do_not_import rates are left alone.
INSERT INTO tax_rate (
    operating_company_id, accounting_code, name, effective_rate, display_rate, report_tax_type, xero_status,
    last_accounting_import_date, created_at)
SELECT :operating_company_id, v.xero_id, v.name, v.effective_rate, v.display_tax_rate, v.report_tax_type, v.status,
    :now, :now
FROM val_tax_rates v
WHERE v.connection_id = :connection_id AND v.last_run_id = :run_id
ON CONFLICT (operating_company_id, accounting_code) DO UPDATE SET
    name = excluded.name,
    effective_rate = excluded.effective_rate,
    display_rate = excluded.display_rate,
    report_tax_type = excluded.report_tax_type,
    xero_status = excluded.xero_status,
    last_accounting_import_date = excluded.last_accounting_import_date
WHERE tax_rate.do_not_import = FALSE
  AND (tax_rate.name, tax_rate.effective_rate, tax_rate.display_rate, tax_rate.report_tax_type, tax_rate.xero_status)
      IS DISTINCT FROM
      (excluded.name, excluded.effective_rate, excluded.display_rate, excluded.report_tax_type, excluded.xero_status);
