-- I8: one notification to the customer's account manager for each invoice that went overdue (130 sets
-- became_overdue_at) and is still overdue. The natural key makes it once per invoice, ever: reruns, and an
-- invoice going overdue again after a part payment, notify nobody twice. An invoice whose customer has no account
-- manager notifies once one is assigned, if still overdue then.
-- Params: :operating_company_id, :now.
INSERT INTO notification (
    operating_company_id, crm_user_id, kind, record_type, record_id, natural_key, title, message, created_at)
SELECT si.operating_company_id, sl.account_manager_id, 'invoice_overdue', 'sales_invoice', si.id,
    'invoice_overdue:' || si.accounting_code,
    'Invoice ' || COALESCE(si.invoice_number, si.accounting_code) || ' is overdue',
    sl.name || ': ' || COALESCE(CAST(si.amount_due AS TEXT), '?') || ' ' || COALESCE(si.currency_code, '')
        || ' was due on ' || COALESCE(CAST(si.due_date AS TEXT), '?')
        || COALESCE(' (order ' || so.order_number || ')', ''),
    :now
FROM sales_invoice si
JOIN sales_ledger sl ON sl.id = si.sales_ledger_id
LEFT JOIN sales_order so ON so.id = si.sales_order_id
WHERE si.operating_company_id = :operating_company_id AND si.became_overdue_at IS NOT NULL
  AND si.payment_status = 'overdue' AND sl.account_manager_id IS NOT NULL
ON CONFLICT (operating_company_id, natural_key) DO NOTHING;
