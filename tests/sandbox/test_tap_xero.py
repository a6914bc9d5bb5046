"""Singer's tap-xero (a widely used Xero extractor, unchanged, in its own virtualenv) against the sandbox.

It must extract every stream it supports and exactly what the sandbox holds: the record counts per stream are
the sandbox's own counts (``GET /sandbox/records``), the ids are the stored records' ids, nothing twice, and the
run ends normally (it once stopped after 9 streams, at ``GET /Organisations``, which Xero answers and the sandbox
did not). Its paged streams read 100 records a page, so the organisation is sized to need several pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xero_sandbox.peers import tap_xero

from .conftest import start_sandbox

# tap-xero 2.6.0's streams (tap_xero/streams.py): every one is read, none skipped.
TAP_STREAMS = {
    "accounts",
    "bank_transactions",
    "bank_transfers",
    "branding_themes",
    "contact_groups",
    "contacts",
    "credit_notes",
    "currencies",
    "invoices",
    "items",
    "journals",
    "linked_transactions",
    "manual_journals",
    "organisations",
    "overpayments",
    "payments",
    "prepayments",
    "purchase_orders",
    "quotes",
    "repeating_invoices",
    "tax_rates",
    "tracking_categories",
    "users",
}


def collection_of(stream: str) -> str:
    return stream.title().replace("_", "")  # how tap-xero names the endpoint it calls


@pytest.fixture(scope="module")
def extraction(tmp_path_factory: pytest.TempPathFactory):
    venv = tap_xero.ensure_venv()  # built once inside the clone (.cache/peers), reused afterwards
    server = start_sandbox(contacts=150, tenants=1)
    try:
        tenant_id = server.admin.tenants()[0]["tenantId"]
        run = tap_xero.extract(server.url, tenant_id, workdir=Path(tmp_path_factory.mktemp("tap")), venv=venv)
        yield server, tenant_id, run
    finally:
        server.stop()


@pytest.mark.timeout(300)
def test_tap_xero_reads_every_stream_to_the_end(extraction):
    _, _, run = extraction
    assert run.returncode == 0, run.log_tail
    assert set(run.streams) == TAP_STREAMS
    assert sorted(run.streams_started) == sorted(TAP_STREAMS), run.log_tail
    assert run.streams_completed, run.log_tail


def test_tap_xero_extracts_exactly_what_the_sandbox_holds(extraction):
    server, tenant_id, run = extraction
    held = server.admin.records(tenant_id)[tenant_id]
    expected = {stream: held[collection_of(stream)]["listed"] for stream in TAP_STREAMS}
    assert {stream: run.records[stream] for stream in TAP_STREAMS} == expected
    assert expected["contacts"] > 100 and expected["invoices"] > 100  # several of tap-xero's pages
    store = server.state.tenants[tenant_id].store
    for stream in ("contacts", "invoices", "credit_notes", "payments", "purchase_orders", "items", "users"):
        ids = run.ids.get(stream, [])
        assert len(ids) == len(set(ids)), f"{stream}: a record extracted twice"
        collection = store.collection(collection_of(stream))
        assert all(collection.get(record_id) is not None for record_id in ids), stream


def test_tap_xero_pages_as_xero_pages(extraction):
    """100 a page in UpdatedDateUTC order, stopping at the first short page: the sandbox counted those calls."""
    server, tenant_id, run = extraction
    counters = server.admin.counters(tenant_id)[tenant_id]["endpoints"]
    for stream in ("contacts", "invoices"):
        pages = run.records[stream] // 100 + 1
        assert counters[f"GET /{collection_of(stream)}"]["calls"] == pages, stream
    assert counters["GET /Organisations"]["calls"] == 1
