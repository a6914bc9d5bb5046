"""The status page behind Airflow's own authentication, on a real API server: anonymous requests are refused,
a viewer may read but not act, an admin's retry reaches the database, and the plugin is registered."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from tests.ui.conftest import ApiServer
from tests.ui.seed import COMPANY, PRIMARY, SECONDARY

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


def _status(server: ApiServer, error_id: int) -> str:
    with server.seeded.engine.connect() as conn:
        return conn.execute(text("SELECT status FROM sync_error WHERE id = :i"), {"i": error_id}).scalar_one()


def test_anonymous_requests_are_refused(api_server: ApiServer):
    with httpx.Client(base_url=api_server.url, timeout=30) as http:
        assert http.get("/xero-status/api/status").status_code == 401
        page = http.get("/xero-status/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"].startswith("/auth/login?next=")
        refused = http.post(
            f"/xero-status/api/errors/{api_server.seeded.import_error}/retry",
            headers={"X-Requested-With": "xero-status"},
        )
        assert refused.status_code == 401
        forged = http.get("/xero-status/api/status", headers={"Authorization": "Bearer not-a-jwt"})
        assert forged.status_code in (401, 403)
        assert "tenant" not in forged.text
    assert _status(api_server, api_server.seeded.import_error) == "open"


def test_a_viewer_reads_but_cannot_act(api_server: ApiServer):
    auth = {"Authorization": f"Bearer {api_server.token('viewer')}"}
    with httpx.Client(base_url=api_server.url, timeout=30, headers=auth) as http:
        data = http.get("/xero-status/api/status").json()
        seeded = {c["tenant_name"]: c["status"] for c in data["connections"] if c["company"] == COMPANY}
        assert seeded == {PRIMARY: "active", SECONDARY: "needs_reconnect"}
        assert "token_blob" not in http.get("/xero-status/api/status").text
        refused = http.post(
            f"/xero-status/api/errors/{api_server.seeded.import_error}/dismiss",
            headers={"X-Requested-With": "xero-status"},
        )
        assert refused.status_code == 403 and "edit access to runs of xero_import" in refused.json()["detail"]
    assert _status(api_server, api_server.seeded.import_error) == "open"


def test_an_admin_acts_only_from_the_page(api_server: ApiServer):
    auth = {"Authorization": f"Bearer {api_server.token('admin')}"}
    error_id = api_server.seeded.import_error
    with httpx.Client(base_url=api_server.url, timeout=30, headers=auth) as http:
        # Without the header a cross-site form could send, nothing happens.
        assert http.post(f"/xero-status/api/errors/{error_id}/dismiss").status_code == 403
        assert _status(api_server, error_id) == "open"
        done = http.post(
            f"/xero-status/api/errors/{error_id}/dismiss", headers={"X-Requested-With": "xero-status"}
        )
        assert done.json() == {"id": error_id, "status": "dismissed", "by": "admin"}
        again = http.post(
            f"/xero-status/api/errors/{error_id}/retry", headers={"X-Requested-With": "xero-status"}
        )
        assert again.status_code == 409
        plugins = http.get("/api/v2/plugins").json()["plugins"]
    assert _status(api_server, error_id) == "dismissed"
    ours = next(p for p in plugins if p["name"] == "xero_status")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/xero-status"
    assert ours["external_views"][0]["url_route"] == "xero-status"
