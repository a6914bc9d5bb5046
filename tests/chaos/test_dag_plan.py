"""The campaigns run what the real DAGs define: their tasks, in their order, with their retries."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import dag, task

from tests.chaos.tasks import CAMPAIGN_DAGS, dag_plan, plan_from_dag


def test_each_campaign_dag_is_planned_from_its_definition_in_dags():
    plans = {dag_id: dag_plan(dag_id) for dag_id in CAMPAIGN_DAGS}
    assert plans["xero_import"].tasks == ("extract", "validate", "load")
    assert plans["xero_push"].tasks == ("push_customers", "push_products")
    assert plans["xero_order_invoices"].tasks == ("process_outbox",)
    # Retries as the DAGs' default_args set them (2 for import and push, 3 for the order outbox).
    assert set(plans["xero_import"].retries.values()) == {2}
    assert plans["xero_order_invoices"].retries == {"process_outbox": 3}


def _import_dag(*, extra_task: bool = False, retries: int = 2, calls_extract: bool = True):
    @dag(
        dag_id="xero_import",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        default_args={"retries": retries, "retry_delay": timedelta(seconds=1)},
    )
    def changed() -> None:
        @task
        def extract() -> dict:
            from xero_crm_sync import import_run

            return import_run.extract  # what the campaign checks: the name the task's code calls

        @task(task_id="extract")
        def extract_elsewhere() -> dict:
            from xero_crm_sync import prefetch

            return prefetch.ReadAhead

        @task
        def validate(extracted: dict) -> dict:
            from xero_crm_sync import import_run

            return import_run.validate

        @task
        def dedupe(validated: dict) -> dict:
            return validated

        @task
        def load(validated: dict) -> dict:
            from xero_crm_sync import import_run

            return import_run.load

        validated = validate(extract() if calls_extract else extract_elsewhere())
        load(dedupe(validated) if extra_task else validated)

    return changed()


def test_a_changed_dag_changes_the_plan():
    assert plan_from_dag(_import_dag(retries=5)).retries == {"extract": 5, "validate": 5, "load": 5}


def test_a_task_the_campaigns_cannot_run_stops_them_with_its_name():
    with pytest.raises(LookupError, match="xero_import.dedupe: the chaos campaigns do not know"):
        plan_from_dag(_import_dag(extra_task=True))


def test_a_task_that_no_longer_calls_the_campaigns_function_stops_them():
    with pytest.raises(LookupError, match=r"xero_import.extract no longer calls extract\(\)"):
        plan_from_dag(_import_dag(calls_extract=False))
