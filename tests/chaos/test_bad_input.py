"""Bad input from Xero never crashes a run (hypothesis, `tests/chaos/bad_input.py`): bad records are quarantined
with their reason, good ones load, strings are stored verbatim, on SQLite and PostgreSQL. The examples are the
same every run (derandomized); `make chaos` draws more from a printed seed."""

from __future__ import annotations

from tests.chaos import bad_input

# Each example is a page of 3-12 records for each of three entities; its cost is mostly Great Expectations' fixed
# cost per entity, so pages are dense and examples few (about 1,000 records in all).
EXAMPLES = {"sqlite": 30, "postgresql": 20}


def test_bad_pages_never_crash_a_run(crm_url):
    engine, connection_id = bad_input.prepare_crm(crm_url)
    report = bad_input.campaign(engine, connection_id, EXAMPLES[engine.dialect.name])
    assert report.crashes == []
    assert report.problems == []
    assert report.examples == EXAMPLES[engine.dialect.name]
    assert report.bad > report.examples  # the campaign did try bad input, and the rules did quarantine some
    assert 0 < report.quarantined < report.records and report.valid > 0
