"""Xero's limits kept by every process at once (O3): import, push, the order outbox and the health check run against
one organisation at the same time, each in its own process, as LocalExecutor (or Celery workers) would run them.
The sandbox enforces Xero's limits over a short window (a two-second "minute"); the pipeline's shared limiter is
set to the same. The sandbox counts: no call was refused (a 429 would mean more calls in a window, or more at
once, than Xero allows), and pacing really was needed (more calls than one window holds).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

import pytest

from tests.e2e.conftest import build_pipeline, make_sandbox  # noqa: F401  (the fixture)
from tests.push.conftest import add_customer, add_order, add_product
from xero_crm_sync import db
from xero_crm_sync import limiter as limiter_module
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.settings import get_settings
from xero_sandbox.limits import LimitConfig

WINDOW = 2.0
PER_WINDOW = 12
SANDBOX_LIMITS = LimitConfig(
    minute=PER_WINDOW, window_seconds=WINDOW, concurrent=5, day=100_000, app_minute=100_000
)
CLIENT_LIMITS = {"XERO_LIMIT_PER_MINUTE": str(PER_WINDOW), "XERO_LIMIT_WINDOW_SECONDS": str(WINDOW)}


def _worker(role: str, url: str, connection_id: int, env: dict[str, str], out: mp.Queue) -> None:
    os.environ.update(env)
    # A forked child builds its own engines: pooled connections are never shared across processes.
    db._engine_for.cache_clear()
    limiter_module._sidecar_engine.cache_clear()
    limiter_module._pg_engine.cache_clear()
    engine = db.get_engine(url)
    store = ConnectionStore(engine)
    settings = get_settings()
    info = store.get(connection_id)
    try:
        if role == "import":
            from xero_crm_sync import import_run

            for n in range(2):
                import_run.extract(engine, store, info, f"import-{n}", full=True, settings=settings)
        elif role == "push":
            from xero_crm_sync.push.run import push_customers, push_products
            from xero_crm_sync.xero_access import make_client

            client = make_client(store, info, settings)
            push_customers(engine, client, info, "push-1")
            push_products(engine, client, info, "push-1")
        elif role == "outbox":
            from xero_crm_sync.push.orders import process_outbox

            process_outbox(engine, store, settings, "orders-1")
        else:
            from xero_crm_sync.health import check_connection

            for _ in range(3):
                check_connection(store, info, settings, refresh_ahead=10**9)  # refresh every time
        out.put((role, "ok"))
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put((role, f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_process_together_stays_within_xero_limits(
    kind: str,
    make_sandbox: Any,  # noqa: F811
    tmp_path: Any,
) -> None:
    from tests.conftest import _make_db

    databases = _make_db(kind, tmp_path)
    url = next(databases)
    try:
        sandbox = make_sandbox(seed=5, contacts=40, tenants=1, limits=SANDBOX_LIMITS)
        pipeline = build_pipeline(url, sandbox)
        engine = pipeline.engine
        customers = [add_customer(engine, f"Shared Limits {n} Ltd") for n in range(4)]
        widget = add_product(engine, "SHARED-1", name="Shared widget", sell_price=5)
        order = add_order(engine, customers[0], [dict(product_id=widget, quantity=1, unit_price=5)])
        from xero_crm_sync.push.orders import confirm_order

        with engine.begin() as conn:
            confirm_order(conn, order)
        sandbox.admin.reset_counters()
        sandbox.admin.clear_journal()
        env = {**sandbox.env(), "CRM_DATABASE_URL": url, **CLIENT_LIMITS}
        ctx = mp.get_context("fork")
        out: mp.Queue = ctx.Queue()
        started = time.monotonic()
        workers = [
            ctx.Process(target=_worker, args=(role, url, pipeline.connections["primary"], env, out))
            for role in ("import", "push", "outbox", "health")
        ]
        for w in workers:
            w.start()
        outcomes = dict(out.get(timeout=240) for _ in workers)
        for w in workers:
            w.join(timeout=30)
        elapsed = time.monotonic() - started
        assert outcomes == dict.fromkeys(("import", "push", "outbox", "health"), "ok")

        tenant = pipeline.tenants["primary"]
        journal = sandbox.admin.journal(tenant_id=tenant)
        accounting = [e for e in journal if "/api.xro/2.0/" in e["path"]]
        refused = [e for e in accounting if e["status"] == 429]
        assert refused == [], f"Xero would have refused {len(refused)} calls: {refused[:3]}"
        assert sandbox.admin.counters(tenant)[tenant]["totals"]["rate_limited"] == 0
        # The limits were binding: more calls than one window admits, so they had to be spread over windows.
        assert len(accounting) > PER_WINDOW
        assert elapsed >= (len(accounting) // PER_WINDOW - 1) * WINDOW
        # And every process did its job.
        assert (
            pipeline.scalar("SELECT xero_invoice_id FROM sales_order WHERE id = :id", id=order) is not None
        ), (
            pipeline.rows("SELECT * FROM order_outbox"),
            pipeline.rows("SELECT record_type, code, message, xero_message FROM sync_error"),
        )
        assert pipeline.scalar("SELECT COUNT(*) FROM sales_ledger WHERE accounting_code IS NULL") == 0
    finally:
        databases.close()
