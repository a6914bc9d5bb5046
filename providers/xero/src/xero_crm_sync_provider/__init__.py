"""Airflow provider of xero-crm-sync: the `xero` connection type and XeroHook (see get_provider_info)."""
