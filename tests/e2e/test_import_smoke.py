"""xero_import through Airflow against the sandbox: the first full sync and a no-change incremental run."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import build_pipeline

pytestmark = pytest.mark.airflow


def test_full_then_incremental(airflow_db, make_sandbox, crm_db):
    sandbox = make_sandbox(seed=3, contacts=40, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    pipeline.run_import()
    ledgers = pipeline.scalar("SELECT COUNT(*) FROM sales_ledger")
    assert ledgers > 0
    assert pipeline.scalar("SELECT COUNT(*) FROM sync_watermark WHERE watermark_at IS NOT NULL") >= 6
    sandbox.admin.reset_counters()
    pipeline.run_import()
    counters = sandbox.admin.counters(pipeline.tenants["primary"])
    print(counters)
    assert pipeline.scalar("SELECT COUNT(*) FROM sales_ledger") == ledgers
