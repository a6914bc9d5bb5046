"""The pipeline's incremental-read strategy, checked against the sandbox while the data changes underneath it.

Strategy: page through ``GET /Contacts`` with a fixed ``If-Modified-Since`` watermark and
``order=UpdatedDateUTC DESC`` while other writers update and create records between page requests; then make one
follow-up read with ``If-Modified-Since`` = the largest UpdatedDateUTC seen on the first page.

Why it holds: an update stamps the record with the current time, which is at least the largest timestamp on
page 1, so a record the update moves from the unread tail to the already-read head is caught by the follow-up;
creates and updates only push unread records further back (duplicates, never gaps). It needs the clock never to
go back and writers never to *remove* a record from the filtered set: archiving a contact while paging without
``includeArchived=true`` shifts every later record one place forward and one of them is never read (see
``test_archiving_while_paging_loses_a_record``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xero_sandbox.accounting import OrgStore
from xero_sandbox.accounting.wire import parse_datetime_input

from .conftest import TENANT_ID, ManualClock

ORDER = "UpdatedDateUTC DESC"
# Clock steps in milliseconds: zero (several writes in the same millisecond) up to a few seconds.
steps = st.integers(min_value=0, max_value=2500)
write = st.tuples(st.sampled_from(["update", "create"]), st.integers(min_value=0, max_value=10_000), steps)


def _header(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _read_all_pages(
    api: httpx.Client, since: str, page_size: int, between_pages, include_archived: bool = False
):
    seen: list[dict] = []
    first_page_max: str | None = None
    page = 1
    while True:
        params = {"page": page, "pageSize": page_size, "order": ORDER}
        if include_archived:
            params["includeArchived"] = "true"
        body = api.get("/Contacts", params=params, headers={"If-Modified-Since": since}).json()
        records = body["Contacts"]
        if page == 1 and records:
            first_page_max = max(records, key=lambda r: parse_datetime_input(r["UpdatedDateUTC"]))[
                "UpdatedDateUTC"
            ]
        seen += records
        if len(records) < page_size:
            return seen, first_page_max
        between_pages(page)
        page += 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial_steps=st.lists(steps, min_size=1, max_size=40),
    watermark_index=st.integers(min_value=0, max_value=39),
    page_size=st.integers(min_value=1, max_value=7),
    writes=st.lists(st.lists(write, max_size=6), max_size=12),
)
def test_paging_with_a_watermark_under_concurrent_writes_loses_nothing(
    accounting_server, api, initial_steps, watermark_index, page_size, writes
):
    _, holder = accounting_server
    clock = ManualClock()
    org = OrgStore(TENANT_ID, "Incremental Ltd", clock=clock.now)
    holder.org = org
    ids: list[str] = []
    for number, step in enumerate(initial_steps):
        clock.advance(step / 1000)
        ids.append(org.create_contacts([{"Name": f"Initial {number}"}])[0].record["ContactID"])
    watermark_record = org.contacts.get(ids[watermark_index % len(ids)])
    since = _header(watermark_record["UpdatedDateUTC"])
    cutoff = watermark_record["UpdatedDateUTC"].replace(microsecond=0)
    expected = {r["ContactID"] for r in org.contacts.values() if r["UpdatedDateUTC"] >= cutoff}
    created = [0]

    def between_pages(page: int) -> None:
        for kind, pick, step in writes[page - 1] if page - 1 < len(writes) else []:
            clock.advance(step / 1000)
            if kind == "update":
                target = list(org.contacts.values())[pick % len(org.contacts)]
                result = org.upsert_contacts(
                    [{"ContactID": target["ContactID"], "EmailAddress": f"u{pick}-{step}@example.com"}]
                )
            else:
                created[0] += 1
                result = org.create_contacts([{"Name": f"Created {created[0]}"}])
            assert result[0].ok, result[0].errors

    seen, first_page_max = _read_all_pages(api, since, page_size, between_pages)
    seen_ids = {r["ContactID"] for r in seen}
    if first_page_max is not None:
        follow_up = api.get(
            "/Contacts", headers={"If-Modified-Since": _header(parse_datetime_input(first_page_max))}
        )
        seen_ids |= {r["ContactID"] for r in follow_up.json()["Contacts"]}
    assert expected <= seen_ids, f"lost {sorted(expected - seen_ids)}"
    holder.org = None


def _five_contacts(org: OrgStore, clock: ManualClock) -> list[str]:
    ids = []
    for name in "abcde":
        clock.advance(1)
        ids.append(org.create_contacts([{"Name": name}])[0].record["ContactID"])
    return ids


def test_archiving_while_paging_loses_a_record(org, clock, api):
    """The counter-example: removing a record from the filtered set mid-paging shifts the unread tail forward."""
    _five_contacts(org, clock)
    since = "2024-05-01T09:30:00"
    archived = []

    def archive_first_read(page: int) -> None:
        if page == 1:
            e = org.contacts.by("active_name", "e")
            clock.advance(1)
            org.upsert_contacts([{"ContactID": e["ContactID"], "ContactStatus": "ARCHIVED"}])
            archived.append(e["ContactID"])

    seen, first_page_max = _read_all_pages(api, since, 2, archive_first_read)
    follow_up = api.get(
        "/Contacts", headers={"If-Modified-Since": _header(parse_datetime_input(first_page_max))}
    )
    names = {r["Name"] for r in seen} | {r["Name"] for r in follow_up.json()["Contacts"]}
    assert "c" not in names  # read order e,d | (e archived) b,a: c slid into the page already read
    assert names == {"a", "b", "d", "e"}


def test_archiving_while_paging_with_include_archived_loses_nothing(org, clock, api):
    _five_contacts(org, clock)

    def archive_first_read(page: int) -> None:
        if page == 1:
            clock.advance(1)
            org.upsert_contacts(
                [{"ContactID": org.contacts.by("active_name", "e")["ContactID"], "ContactStatus": "ARCHIVED"}]
            )

    seen, _ = _read_all_pages(api, "2024-05-01T09:30:00", 2, archive_first_read, include_archived=True)
    assert {r["Name"] for r in seen} == set("abcde")
