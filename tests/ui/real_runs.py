"""A CRM database written by real runs against the sandbox over HTTP (`dag.test()`), so the status page is tested
on what the pipeline writes, not only on hand-seeded rows:

1. xero_import, full: the organisation's records (invoices already overdue notify nobody: I8);
2. the accounts team approves two draft invoices past their due date in Xero; xero_import (incremental) sees
   them turn overdue and notifies their account manager, whom the Airflow notifier emails through a real SMTP
   server (aiosmtpd): one message for both;
3. sales staff add a customer and a product in the CRM, and xero_push sends them;
4. xero_import again: nothing is emailed twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage

from sqlalchemy import Engine, text

from tests.e2e.conftest import NO_LIMITS, AccountsTeam, Pipeline, build_pipeline
from tests.push.conftest import add_customer, add_product, run_dag
from tests.ui.smtp import SmtpServer
from xero_sandbox.server import SandboxServer

CONTACTS = 40
MANAGER, MANAGER_EMAIL = "Mia Manager", "mia@test-trading.example"
NEW_CUSTOMER, NEW_PRODUCT = "Harbour Bikes Ltd", "UI-BIKE"


@dataclass
class RealRuns:
    url: str
    engine: Engine
    connection_id: int
    tenant_name: str
    run_ids: list[str]  # import, import, push, import
    overdue: list[str]
    mails: list[list[EmailMessage]]  # what each run emailed


def run_real_syncs(url: str) -> RealRuns:
    with (
        SandboxServer(seed=3, contacts=CONTACTS, tenants=1, limits=NO_LIMITS) as sandbox,
        SmtpServer() as smtp,
    ):
        pipeline = build_pipeline(url, sandbox)
        connection_id = pipeline.connections["primary"]
        _account_manager(pipeline.engine)
        os.environ["AIRFLOW_CONN_XERO_CRM_SMTP"] = smtp.airflow_conn("crm@test-trading.example")
        try:
            run_ids, mails, seen = [], [], 0
            for step in ("import", "overdue", "push", "import"):
                if step == "import":
                    dag_run = pipeline.run_import(
                        mode="full" if not run_ids else "incremental", connection_id=connection_id
                    )
                elif step == "overdue":
                    _two_invoices_fall_due(pipeline)
                    dag_run = pipeline.run_import(connection_id=connection_id)
                else:
                    add_customer(pipeline.engine, NEW_CUSTOMER, email="accounts@harbourbikes.example")
                    add_product(pipeline.engine, NEW_PRODUCT, name="UI bike", sell_price=899)
                    dag_run = run_dag(pipeline, "xero_push", connection_id=connection_id)
                run_ids.append(dag_run.run_id)
                mails.append(smtp.messages[seen:])
                seen = len(smtp.messages)
        finally:
            del os.environ["AIRFLOW_CONN_XERO_CRM_SMTP"]
        tenant_name = pipeline.scalar(
            "SELECT tenant_name FROM xero_connection WHERE id = :c", c=connection_id
        )
    overdue = pipeline.rows(
        "SELECT invoice_number FROM sales_invoice WHERE became_overdue_at IS NOT NULL ORDER BY invoice_number"
    )
    return RealRuns(
        url, pipeline.engine, connection_id, tenant_name, run_ids, [r.invoice_number for r in overdue], mails
    )


def _two_invoices_fall_due(pipeline: Pipeline) -> None:
    """The accounts team approves two draft invoices whose due date has passed, in Xero: they are overdue now."""
    invoices = pipeline.rows(
        "SELECT accounting_code FROM sales_invoice WHERE payment_status = 'unpaid' AND xero_status = 'DRAFT' "
        "AND due_date < :today AND total > 0 ORDER BY invoice_number LIMIT 2",
        today=date.today(),
    )
    assert len(invoices) == 2, "the sandbox organisation has no draft invoice past its due date"
    team = AccountsTeam(pipeline.sandbox, pipeline.tenants["primary"])
    try:
        for invoice in invoices:
            team.write(
                "POST", f"Invoices/{invoice.accounting_code}", {"Invoices": [{"Status": "AUTHORISED"}]}
            )
    finally:
        team.close()


def _account_manager(engine: Engine) -> None:
    """An account manager with an email address, the company's default (S4) for imported ledgers."""
    with engine.begin() as conn:
        company = conn.execute(text("SELECT id FROM operating_company ORDER BY id LIMIT 1")).scalar_one()
        user = conn.execute(
            text("INSERT INTO crm_user (operating_company_id, name, email) VALUES (:c, :n, :e) RETURNING id"),
            {"c": company, "n": MANAGER, "e": MANAGER_EMAIL},
        ).scalar_one()
        conn.execute(
            text(
                "UPDATE integration_settings SET default_account_manager_id = :u WHERE operating_company_id = :c"
            ),
            {"u": user, "c": company},
        )
