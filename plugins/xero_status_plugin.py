"""The Xero integration status page in the Airflow UI (O2, P8), behind Airflow's own authentication.

- `fastapi_apps`: the page's FastAPI app (`include/xero_crm_sync/status_app`) mounted at `/xero-status` in the
  API server.
- `external_views`: a "Xero status" entry in the UI's navigation that shows the page inside Airflow.

Airflow does not authenticate plugin apps by itself (a mounted app inherits none of the core API's
dependencies), so every route here depends on Airflow's `get_user` (the JWT in the session cookie, or a bearer
token), and then asks the configured auth manager:

- reading: whoever may read the `xero_import` DAG may read the page;
- retry / dismiss: whoever may edit runs of the DAG that acts on the error (`xero_push` for export errors,
  `xero_import` for import errors), i.e. may trigger or clear them.

An anonymous request gets 401 (a browser is sent to Airflow's login page), a signed-in user without the
permission 403.
"""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, HTTPException, Request
from sqlalchemy import text

from xero_crm_sync.status_app import create_app
from xero_crm_sync_provider.hooks.xero import crm_engine

URL_PREFIX = "/xero-status"
READ_DAG = "xero_import"
DAG_FOR_DIRECTION = {"import": "xero_import", "export": "xero_push"}


def _name(user: BaseUser) -> str:
    return user.get_name() or user.get_id()


def can_read(user: Annotated[BaseUser, Depends(get_user)]) -> str:
    if not get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=READ_DAG), user=user):
        raise HTTPException(403, f"reading the status page needs read access to the {READ_DAG} DAG")
    return _name(user)


def can_act(request: Request, user: Annotated[BaseUser, Depends(get_user)]) -> str:
    error_id = request.path_params.get("error_id")
    with crm_engine().connect() as conn:
        direction = conn.execute(
            text("SELECT direction FROM sync_error WHERE id = :id"), {"id": int(error_id or 0)}
        ).scalar()
    dag_id = DAG_FOR_DIRECTION.get(direction or "", READ_DAG)
    allowed = get_auth_manager().is_authorized_dag(
        method="PUT", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )
    if not allowed:
        raise HTTPException(403, f"retrying or dismissing this error needs edit access to runs of {dag_id}")
    return _name(user)


def login_url(request: Request) -> str:
    return get_auth_manager().get_url_login(next_url=str(request.url))


status_app = create_app(crm_engine, reader=can_read, writer=can_act, login_url=login_url)


class XeroStatusPlugin(AirflowPlugin):
    name = "xero_status"
    fastapi_apps = [{"app": status_app, "url_prefix": URL_PREFIX, "name": "Xero integration status"}]
    external_views = [
        {
            "name": "Xero status",
            "href": f"{URL_PREFIX}/",
            "url_route": "xero-status",
            "destination": "nav",
            "category": "browse",
        }
    ]
