"""Crash safety of the push: a batch whose answer was lost is resent with the same Idempotency-Key and body, and
Xero ends up with one contact, not two. Real client, real sandbox, real CRM database (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.push.conftest import add_customer, writes
from xero_crm_sync import xero_access
from xero_crm_sync.push import run
from xero_crm_sync.settings import get_settings
from xero_crm_sync.xero_client import RetryPolicy, XeroUnavailable


def test_lost_answer_is_resent_with_its_key_and_creates_once(direct_pipeline):
    pipeline = direct_pipeline
    ledger_id = add_customer(pipeline.engine, "Echo Ltd", email="accounts@echo.co.nz")
    info = pipeline.store.get(pipeline.connections["primary"])
    # Xero processes the write, then the connection drops: the push never sees the answer. One attempt only, so
    # the "crash" happens here rather than in the client's own retry.
    pipeline.sandbox.admin.add_fault("reset_after", count=1, methods=["POST"], path_pattern="Contacts$")
    impatient = xero_access.make_client(
        pipeline.store, info, get_settings(), retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(XeroUnavailable):
        run.push_customers(pipeline.engine, impatient, info, "run-1")
    assert pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id) is None
    assert pipeline.scalar("SELECT state FROM export_batch") == "pending"
    # The import leaves a record in flight alone, and the next diff does not pick it up a second time.
    assert (
        pipeline.scalar("SELECT state FROM export_queue WHERE record_id = :id", id=ledger_id) == "in_progress"
    )

    summary = run.push_customers(
        pipeline.engine, xero_access.make_client(pipeline.store, info, get_settings()), info, "run-2"
    )

    assert summary.resumed_batches == 1 and summary.created == 1 and summary.batches == 0
    posts = [w for w in writes(pipeline) if w["path"].endswith("/Contacts")]
    assert len(posts) == 2
    assert posts[0]["idempotency_key"] == posts[1]["idempotency_key"]
    assert posts[0]["body"] == posts[1]["body"]
    assert posts[1].get("replayed") is True  # Xero answered from its key store and wrote nothing
    echoes = [c for c in pipeline.org().contacts.values() if c["Name"] == "Echo Ltd"]
    assert len(echoes) == 1
    assert echoes[0]["ContactNumber"] == str(ledger_id)
    assert (
        pipeline.scalar("SELECT accounting_code FROM sales_ledger WHERE id = :id", id=ledger_id)
        == echoes[0]["ContactID"]
    )
    assert pipeline.scalar("SELECT state FROM export_batch") == "done"
    assert pipeline.scalar("SELECT state FROM export_queue WHERE record_id = :id", id=ledger_id) == "done"
