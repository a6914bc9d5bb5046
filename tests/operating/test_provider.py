"""The project's Airflow provider (providers/xero), as Airflow itself sees it: ProvidersManager finds it by its
entry point and registers the `xero` connection type with XeroHook and the Connections form's fields."""

from __future__ import annotations

import importlib.metadata

from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

from xero_crm_sync_provider.get_provider_info import get_provider_info
from xero_crm_sync_provider.hooks.xero import XeroHook

HOOK = "xero_crm_sync_provider.hooks.xero.XeroHook"


def test_the_distribution_is_the_provider_airflow_discovers() -> None:
    dist = importlib.metadata.distribution("xero-crm-sync-provider")
    assert [ep.value for ep in dist.entry_points if ep.group == "apache_airflow_provider"] == [
        "xero_crm_sync_provider.get_provider_info:get_provider_info"
    ]
    assert get_provider_info()["package-name"] == dist.metadata["Name"]
    assert "xero-crm-sync-provider" in ProvidersManager().providers


def test_providers_manager_registers_the_xero_connection_type_with_its_form() -> None:
    # Tasks resolve hooks through the task SDK's registry; the api-server's Connections form through ProvidersManager.
    hook = ProvidersManagerTaskRuntime().hooks["xero"]
    manager = ProvidersManager()
    assert hook is not None
    assert (hook.hook_class_name, hook.connection_type, hook.hook_name) == (HOOK, "xero", "Xero")
    assert hook.connection_id_attribute_name == "xero_conn_id"

    widgets = {k: v for k, v in manager.connection_form_widgets.items() if k.startswith("extra__xero__")}
    assert {w.field_name: w.field["schema"]["title"] for w in widgets.values()} == {
        "login_url": "Login URL",
        "identity_url": "Identity URL",
        "api_url": "API URL",
    }
    assert {w.hook_class_name for w in widgets.values()} == {HOOK}
    behaviour = manager.field_behaviours["xero"]
    assert {"port", "schema"} <= set(behaviour["hidden_fields"])
    assert behaviour["relabeling"] == {"login": "Client id", "password": "Client secret"}


def test_the_hook_declares_its_connection_and_the_dags_get_the_same_class() -> None:
    from xero_hook import XeroHook as ForDags

    assert ForDags is XeroHook
    assert (XeroHook.conn_type, XeroHook.default_conn_name, XeroHook.conn_name_attr) == (
        "xero",
        "xero_default",
        "xero_conn_id",
    )


def test_the_api_servers_pages_read_the_crm_database_from_the_airflow_connection(
    tmp_path, monkeypatch
) -> None:
    """The status page and the webhook receiver run no task: they resolve the CRM database as tasks do (the
    `xero_crm_db` connection first, CRM_DATABASE_URL as the fallback), on every call."""
    from xero_crm_sync_provider.hooks.xero import crm_engine

    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert crm_engine().url.database == str(tmp_path / "from-env.db")
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_CRM_DB", f'{{"conn_type": "sqlite", "host": "{tmp_path / "crm.db"}"}}'
    )
    assert crm_engine().url.database == str(tmp_path / "crm.db")

    import xero_status_plugin
    import xero_webhooks_plugin

    assert xero_webhooks_plugin.XeroWebhooksPlugin.fastapi_apps[0]["app"].state.engine is crm_engine
    assert xero_status_plugin.status_app.state.engine is crm_engine
