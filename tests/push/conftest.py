"""Helpers for the push tests: CRM rows written the way CRM code writes them (plain SQL), Xero changed the way the
accounts team changes it (the sandbox's organisation store, which costs no API call), and what Xero received read
back from the sandbox's journal and counters."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

# The end-to-end fixtures (Airflow's metadata database, sandboxes, CRM databases) are shared with tests/e2e.
from tests.e2e.conftest import Pipeline, airflow_db, build_pipeline, crm_db, load_dag, make_sandbox  # noqa: F401

WRITE_METHODS = ("PUT", "POST", "DELETE")


def company_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM operating_company ORDER BY id LIMIT 1")).scalar_one()


def add_customer(engine: Engine, name: str, *, person: tuple[str, str] | None = None, **fields: Any) -> int:
    """A customer account (sales ledger) as a CRM user creates it; `person` adds its main contact."""
    oc = company_id(engine)
    with engine.begin() as conn:
        contact_id = None
        if person:
            contact_id = conn.execute(
                text(
                    "INSERT INTO contact (operating_company_id, first_name, last_name) VALUES (:oc, :f, :l) "
                    "RETURNING id"
                ),
                {"oc": oc, "f": person[0], "l": person[1]},
            ).scalar_one()
        values = {"operating_company_id": oc, "name": name, "contact_id": contact_id, **fields}
        columns = ", ".join(values)
        params = ", ".join(f":{k}" for k in values)
        return conn.execute(
            text(f"INSERT INTO sales_ledger ({columns}) VALUES ({params}) RETURNING id"), values
        ).scalar_one()


def add_product(engine: Engine, code: str, **fields: Any) -> int:
    values = {"operating_company_id": company_id(engine), "code": code, **fields}
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    with engine.begin() as conn:
        return conn.execute(
            text(f"INSERT INTO product ({columns}) VALUES ({params}) RETURNING id"), values
        ).scalar_one()


def add_order(engine: Engine, ledger_id: int, lines: list[dict[str, Any]], **fields: Any) -> int:
    values = {"operating_company_id": company_id(engine), "sales_ledger_id": ledger_id, **fields}
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    with engine.begin() as conn:
        order_id = conn.execute(
            text(f"INSERT INTO sales_order ({columns}) VALUES ({params}) RETURNING id"), values
        ).scalar_one()
        for number, line in enumerate(lines, start=1):
            line_values = {"sales_order_id": order_id, "line_no": number, **line}
            conn.execute(
                text(
                    f"INSERT INTO sales_order_line ({', '.join(line_values)}) "
                    f"VALUES ({', '.join(':' + k for k in line_values)})"
                ),
                line_values,
            )
    return order_id


def update(engine: Engine, table: str, record_id: int, **fields: Any) -> None:
    assignments = ", ".join(f"{k} = :{k}" for k in fields)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {**fields, "id": record_id})


def xero_write(
    pipeline: Pipeline, entity: str, element: dict[str, Any], method: str = "POST"
) -> dict[str, Any]:
    """Change Xero as the accounts team would (in the sandbox's store: no API call is counted)."""
    [result] = pipeline.org().write(entity, [element], method=method)
    assert result.ok, result.errors
    return result.record


def writes(pipeline: Pipeline, since_seq: int = 0) -> list[dict[str, Any]]:
    """The write requests the primary organisation received (method, path, body, key), oldest first."""
    entries = pipeline.sandbox.admin.journal(tenant_id=pipeline.tenants["primary"], since_seq=since_seq)
    return sorted((e for e in entries if e["method"] in WRITE_METHODS), key=lambda e: e["seq"])


def calls(pipeline: Pipeline) -> Counter[str]:
    """Calls by endpoint ("POST /Contacts": 1) since the counters were last reset."""
    snapshot = pipeline.sandbox.admin.counters(pipeline.tenants["primary"])
    endpoints = snapshot.get(pipeline.tenants["primary"], {}).get("endpoints", {})
    return Counter({name: count["calls"] for name, count in endpoints.items() if count["calls"]})


def last_seq(pipeline: Pipeline) -> int:
    entries = pipeline.sandbox.admin.journal(tenant_id=pipeline.tenants["primary"])
    return max((e["seq"] for e in entries), default=0)


def run_dag(pipeline: Pipeline, dag_id: str, *, expect: str = "success", **conf: Any) -> Any:
    """Run a DAG through Airflow (dag.test) against the pipeline's CRM and sandbox."""
    os.environ["CRM_DATABASE_URL"] = pipeline.url
    os.environ.update(pipeline.sandbox.env())
    dag = load_dag(dag_id)
    dag_run = dag.test(run_conf=conf or None)
    assert str(dag_run.state).rsplit(".", 1)[-1].lower() == expect, f"{dag_id} ended {dag_run.state}"
    return dag_run


def p5_writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Writes P5 forbids: payments, archiving items (a DELETE of an item), ACCPAY bills."""
    bad = []
    for entry in entries:
        path = entry["path"]
        if "Payments" in path or (path.startswith("/api.xro/2.0/Items") and entry["method"] == "DELETE"):
            bad.append(entry)
        body = entry.get("body") or {}
        for invoice in body.get("Invoices", []) if isinstance(body, dict) else []:
            if invoice.get("Type") == "ACCPAY":
                bad.append(entry)
    return bad


@pytest.fixture
def push_pipeline(airflow_db: str, make_sandbox: Any, crm_db: str) -> Iterator[Pipeline]:  # noqa: F811
    """A connected CRM (SQLite and PostgreSQL) and a small sandbox organisation, counters reset."""
    sandbox = make_sandbox(seed=7, contacts=12, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    sandbox.admin.reset_counters()
    yield pipeline


@pytest.fixture
def direct_pipeline(make_sandbox: Any, crm_db: str) -> Iterator[Pipeline]:  # noqa: F811
    """Like push_pipeline, without Airflow: for tests that call the push's functions directly."""
    sandbox = make_sandbox(seed=7, contacts=12, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    sandbox.admin.reset_counters()
    yield pipeline
