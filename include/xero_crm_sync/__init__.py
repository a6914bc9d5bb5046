"""xero-crm-sync: the logic of the Xero <-> CRM pipeline, free of Airflow imports."""
