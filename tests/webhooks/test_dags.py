"""The two event-driven DAGs parse, and their triggers survive the triggerer's serialise/re-create round trip."""

from __future__ import annotations

import asyncio
import importlib

import pytest
from sqlalchemy import Engine

from tests.e2e.conftest import airflow_db, load_dag  # noqa: F401  (the session's Airflow metadata database)


@pytest.mark.parametrize(
    ("dag_id", "uri"),
    [("xero_webhook_import", "xero://crm/webhook-events"), ("xero_crm_changes", "xero://crm/changes")],
)
def test_dag_is_event_driven(airflow_db: str, dag_id: str, uri: str) -> None:  # noqa: F811
    dag = load_dag(dag_id)
    asset = dag.timetable.asset_condition
    assert asset.uri == uri and dag.max_active_runs == 1
    [watcher] = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs) and kwargs["debounce"] > 0


def test_webhook_trigger_fires_once_events_are_stored(crm: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from xero_crm_sync.connections import utcnow
    from xero_crm_sync.webhooks import events
    from xero_triggers import WebhookEventTrigger

    monkeypatch.setenv("CRM_DATABASE_URL", str(crm.url.render_as_string(hide_password=False)))
    with crm.begin() as conn:
        events.store_delivery(
            conn, "SANDBOX-DEMO-CLIENT",
            [{"tenant_id": "t", "event_category": "CONTACT", "event_type": "UPDATE", "resource_id": "r",
              "event_date_utc": utcnow()}],
            utcnow(),
        )  # fmt: skip

    async def first() -> object:
        return await asyncio.wait_for(anext(WebhookEventTrigger(poll_interval=0.05).run()), 10)

    fired = asyncio.run(first())
    assert fired.payload["pending"] == 1


def test_work_a_running_run_took_during_the_debounce_starts_no_run(
    crm: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lingering xero_webhook_import run loads events as they arrive: the trigger, seeing them pending and then
    gone after its debounce, announces nothing; the next event that stays pending is announced."""
    from xero_crm_sync.connections import utcnow
    from xero_crm_sync.webhooks import events
    from xero_triggers import WebhookEventTrigger

    monkeypatch.setenv("CRM_DATABASE_URL", str(crm.url.render_as_string(hide_password=False)))

    def store(resource_id: str) -> None:
        with crm.begin() as conn:
            events.store_delivery(
                conn, "SANDBOX-DEMO-CLIENT",
                [{"tenant_id": "t", "event_category": "CONTACT", "event_type": "UPDATE",
                  "resource_id": resource_id, "event_date_utc": utcnow()}],
                utcnow(),
            )  # fmt: skip

    def take_all() -> None:
        with crm.begin() as conn:
            ids = [e.id for e in events.pending(conn)]
            events.mark(conn, ids, "done", utcnow(), "lingering-run")

    async def scenario() -> list[object]:
        fired: list[object] = []
        trigger = WebhookEventTrigger(poll_interval=0.05, debounce=0.5)

        async def listen() -> None:
            async for event in trigger.run():
                fired.append(event)

        listener = asyncio.create_task(listen())
        store("taken")
        await asyncio.sleep(0.2)  # the trigger saw it pending and is waiting out its debounce...
        await asyncio.to_thread(take_all)  # ...while the running run loads it
        await asyncio.sleep(1.0)
        taken_fired = list(fired)
        store("left")  # nobody takes this one
        for _ in range(100):  # announced within about a second; up to 10 s on a busy machine
            if fired:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # and nothing more after it
        listener.cancel()
        return [taken_fired, fired]

    taken_fired, fired = asyncio.run(scenario())
    assert taken_fired == []
    assert [e.payload["pending"] for e in fired] == [1]


def test_triggers_poll_the_crm_database_of_the_airflow_connection(
    crm: Engine, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configured only in Airflow (`xero_crm_db`), the triggerer polls that database, not CRM_DATABASE_URL."""
    from xero_crm_sync.connections import utcnow
    from xero_crm_sync.webhooks import events
    from xero_triggers import WebhookEventTrigger

    url = crm.url
    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'not-the-crm.db'}")
    monkeypatch.setenv(
        "AIRFLOW_CONN_XERO_CRM_DB",
        f'{{"conn_type": "generic", "extra": {{"sqlalchemy_url": "{url.render_as_string(hide_password=False)}"}}}}',
    )
    with crm.begin() as conn:
        events.store_delivery(
            conn, "SANDBOX-DEMO-CLIENT",
            [{"tenant_id": "t", "event_category": "INVOICE", "event_type": "UPDATE", "resource_id": "r2",
              "event_date_utc": utcnow()}],
            utcnow(),
        )  # fmt: skip

    async def first() -> object:
        return await asyncio.wait_for(anext(WebhookEventTrigger(poll_interval=0.05).run()), 10)

    assert asyncio.run(first()).payload["pending"] == 1
    assert not (tmp_path / "not-the-crm.db").exists()
