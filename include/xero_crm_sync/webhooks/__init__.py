"""Real time both ways (issue 11): Xero webhooks into the CRM, CRM edits to Xero within seconds.

- `keys`: the app's webhook key, encrypted at rest; signature checks in constant time.
- `events`: the durable store of accepted events (`webhook_event`) and the receiver's health.
- `receiver`: the HTTP endpoint Xero posts to (a FastAPI app; mounted on Airflow's api-server by
  plugins/xero_webhooks_plugin.py at /xero-webhooks, no Airflow login: the signature is the authentication).
- `importer`: the event-driven import: re-read just the changed records (`IDs=`) and load them through the
  import's own staging, validation and SQL steps.
- `health`: whether webhooks are healthy, which stretches the routine import's interval.
- `outbox`: CRM edits to customers and products, queued by database triggers, pushed by push's own functions.
See docs/WEBHOOKS.md.
"""
