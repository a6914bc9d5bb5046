"""Xero's JSON that orjson refuses (a lone surrogate escape, a number beyond a double) must not stop the import:
the page is read anyway, the record that cannot be stored is quarantined with its reason, the others load.

It used to fail the extract on every retry (orjson.JSONDecodeError), so one odd record blocked every entity after
it; and a lone surrogate, once parsed, failed the staging insert (UTF-8 cannot encode it). A real HTTP server
sends the bytes; the real client reads them (SQLite and PostgreSQL).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import text

from tests.chaos.bad_input import ENTITY, new_run_id, prepare_crm, run_parsed, templates
from xero_crm_sync.xero_client import XeroClient


@pytest.fixture
def xero_page() -> Iterator[tuple[str, dict[str, str]]]:
    """A one-page Contacts endpoint whose body the test writes byte for byte."""
    body: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = body["page"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", body
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_orjson_refuses_is_read_and_the_odd_records_quarantined(crm_url, xero_page):
    url, body = xero_page
    good, surrogate, huge = (copy.deepcopy(templates()["contacts"][i]) for i in range(3))
    surrogate["ContactID"], huge["ContactID"] = (
        "00000000-0000-4000-8000-00000000d800",
        "00000000-0000-4000-8000-0000001e0999",
    )
    page = json.dumps({"Contacts": [good, surrogate, huge], "pagination": {"page": 1, "pageCount": 1}})
    # Xero's bytes: a name with a lone surrogate escape, a new field holding one, a discount beyond any double.
    page = page.replace(json.dumps(surrogate["Name"]), '"Broken \\ud800 Ltd"')
    page = page.replace(
        json.dumps(good["Name"]), json.dumps(good["Name"]) + ', "NewNote": "\\udc00"', 1
    ).replace('"HasValidationErrors": false}]', '"HasValidationErrors": false, "Discount": 1e999}]')
    body["page"] = page

    client = XeroClient(requests.Session(), url, "tenant")
    [read] = list(client.iter_pages(ENTITY["contacts"]))
    assert [r["ContactID"] for r in read.records] == [
        good["ContactID"],
        surrogate["ContactID"],
        huge["ContactID"],
    ]

    engine, connection_id = prepare_crm(crm_url)
    run_id = new_run_id()
    run_parsed(engine, connection_id, run_id, {"contacts": read.records})
    with engine.connect() as conn:
        quarantined = dict(
            conn.execute(
                text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
            ).all()
        )
        mirrored = conn.execute(
            text("SELECT xero_id FROM val_contacts WHERE last_run_id = :r"), {"r": run_id}
        )
        assert list(mirrored.scalars()) == [good["ContactID"]]
        raw = conn.execute(
            # The mirror points at the staged row that keeps the payload (written once, in staging).
            text(
                "SELECT CAST(s.raw AS TEXT) FROM val_contacts v JOIN stg_contacts s ON s.stg_id = v.stg_id "
                "WHERE v.last_run_id = :r"
            ),
            {"r": run_id},
        ).scalar_one()
    assert (
        json.loads(raw)["NewNote"] == "\\udc00"
    )  # kept as visible text: no database stores a lone surrogate
    assert "unpaired surrogate" in str(quarantined[surrogate["ContactID"]])
    assert "number out of range" in str(quarantined[huge["ContactID"]])
