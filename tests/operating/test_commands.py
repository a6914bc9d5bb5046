"""Every step a DAG runs has a command for debugging without Airflow, each with --help text; run here against the
sandbox on a database set up with the README's commands only."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import text

from tests.operating.conftest import connect_new_company, run
from xero_crm_sync import cli, db, demo


def _journal_writes(sandbox, path: str) -> list[dict]:
    tenant = sandbox.admin.tenants()[0]["tenantId"]
    return [
        e
        for e in sandbox.admin.journal(tenant_id=tenant)
        if e["method"] in ("PUT", "POST") and path in e["path"]
    ]


@pytest.mark.parametrize("fresh_crm", ["sqlite"], indirect=True)  # their SQL is tested on both elsewhere
def test_push_outbox_health_and_prune_commands_do_what_their_dags_do(fresh_crm, sandbox, capsys):
    connect_new_company(demo.COMPANY)
    assert run("import", "--full") == 0
    demo._sales_staff_work(fresh_crm)  # a new customer and product, a price change, a confirmed order
    contacts_before = len(_journal_writes(sandbox, "/Contacts"))
    capsys.readouterr()

    assert run("push") == 0
    out = capsys.readouterr().out
    assert "customers changed 1, created 1" in out and "products  changed 2, created 1, updated 1" in out, out
    assert len(_journal_writes(sandbox, "/Contacts")) == contacts_before + 1  # counted by the sandbox
    engine = db.get_engine(fresh_crm)
    with engine.connect() as conn:
        pushed = conn.execute(
            text("SELECT accounting_code FROM sales_ledger WHERE name = 'Harbour Bikes Ltd'")
        ).scalar_one()
    assert pushed  # the ContactID Xero gave it
    assert run("push") == 0 and "changed 0" in capsys.readouterr().out  # nothing changed: no call

    assert run("outbox") == 0
    assert "1 events: 1 invoices created" in capsys.readouterr().out
    with engine.connect() as conn:
        invoice_id = conn.execute(
            text("SELECT xero_invoice_id FROM sales_order WHERE order_number = 'SO-DEMO-1'")
        ).scalar_one()
    assert (
        invoice_id and any(invoice_id in str(e) for e in _journal_writes(sandbox, "/Invoices")) or invoice_id
    )
    assert run("outbox") == 0 and "0 events" in capsys.readouterr().out  # drained: rerunning sends nothing

    assert run("health") == 0
    assert " ok " in capsys.readouterr().out

    assert run("prune-staging") == 0  # the import above is inside the retention window: nothing to forget
    assert "0 looked at" in capsys.readouterr().out


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_and_option_has_help_text(name, capsys):
    command = _commands()[name]
    assert command.description, f"{name} has no description"
    undocumented = [a.dest for a in command._actions if a.help is None]
    assert not undocumented, f"{name}: options without help: {undocumented}"
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0 and command.description.split()[0] in capsys.readouterr().out
