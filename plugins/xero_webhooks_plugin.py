"""Xero's webhooks reach the CRM through Airflow's api-server: POST {api-server}/xero-webhooks/.

Why a plugin route and not a service of its own: the api-server already runs, has the CRM database URL and the
Fernet key, and is the one Airflow component meant to be reachable over HTTP; one more process would need the
same configuration, its own deployment and its own health checks for a route that does one insert. The route is
deliberately outside Airflow's login (Airflow does not authenticate plugin apps; unlike plugins/
xero_status_plugin.py nothing here adds `get_user`): Xero cannot log in, the `x-xero-signature` HMAC is the
authentication, checked before anything is read or stored. The app itself is plain FastAPI
(`xero_crm_sync.webhooks.receiver`), so it can also be served on its own (`uvicorn --factory`, see
docs/WEBHOOKS.md) where the api-server is not exposed to the internet.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from xero_crm_sync.webhooks.receiver import create_app
from xero_crm_sync_provider.hooks.xero import crm_engine

URL_PREFIX = "/xero-webhooks"


class XeroWebhooksPlugin(AirflowPlugin):
    name = "xero_webhooks"
    fastapi_apps = [{"app": create_app(crm_engine), "url_prefix": URL_PREFIX, "name": "Xero webhooks"}]
