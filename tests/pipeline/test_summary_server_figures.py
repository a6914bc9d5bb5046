"""`make run`'s summary takes its call counts and its "fewest possible" from the server (issue 10, pipeline 4)."""

from __future__ import annotations

from xero_crm_sync import summary


def test_server_figures_come_from_the_counters_and_the_records_held():
    endpoints = {
        "GET /Contacts": {"calls": 3},
        "GET /Contacts/{ContactID}": {"calls": 7},  # single reads are not the import's list reads
        "POST /Contacts": {"calls": 1},
        "GET /Invoices": {"calls": 2},
    }
    held = {
        "Contacts": {"held": 2500, "listed": 2400, "paged": True},
        "Invoices": {"held": 10, "paged": True},
    }
    figures = summary.server_import_figures(endpoints, held)["entities"]
    assert figures["contacts"] == {"calls": 3, "held": 2500}
    assert figures["invoices"] == {"calls": 2, "held": 10}
    assert figures["items"] == {"calls": 0, "held": 0}
    fewest = summary.fewest_calls(
        {name: {"records": figures[name]["held"]} for name in ("contacts", "items")}
    )
    assert fewest == 3 + 1  # ceil(2500 / 1000) pages of contacts, one unpaged items call
