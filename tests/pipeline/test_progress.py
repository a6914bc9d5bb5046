"""Progress of long reads (issue 14 item 6): pages done of pages expected per entity, from Xero's `pagination`
block, with the time left; on the console of `python -m xero_crm_sync import` without library INFO lines, and
picked out of the Airflow log by `make run`."""

from __future__ import annotations

import logging
import re
import threading

import httpx
import pytest

from tests.e2e.conftest import NO_LIMITS, airflow_db, build_pipeline  # noqa: F401 (airflow_db: a fixture)
from xero_crm_sync import cli, demo, progress, xero_client
from xero_sandbox.oauth_client import authorize_headless
from xero_sandbox.server import SandboxServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pages_done_of_pages_expected_with_the_time_left(caplog):
    clock = Clock()
    p = progress.Progress("contacts", every=5, clock=clock)
    caplog.set_level(logging.INFO, logger="xero_crm_sync.progress")
    said = []
    for _ in range(10):
        clock.now += 2  # a page every 2 s
        said.append(p.page(1000, 10, 9_500))
    spoken = [line for line in said if line]
    # The first page, then at most one line every 5 s, and always the last.
    assert spoken[0] == "progress: contacts page 1 of 10 (1,000 of 9,500 records, 10%), about 18 s left"
    assert [line.split(" (")[0] for line in spoken] == [
        "progress: contacts page 1 of 10",
        "progress: contacts page 4 of 10",
        "progress: contacts page 7 of 10",
        "progress: contacts page 10 of 10",
    ]
    assert spoken[1].endswith("about 12 s left") and spoken[-1].endswith("100%), done")
    assert [r.getMessage() for r in caplog.records] == spoken
    # One-page reads say nothing here (the extract's summary line covers them).
    assert progress.Progress("currencies", clock=clock).page(3, 1, 3) is None
    assert progress.duration(200) == "3 min 20 s" and progress.duration(3_700) == "1 h 01 min"


@pytest.fixture
def sandbox():
    with SandboxServer(seed=5, contacts=20, tenants=1, limits=NO_LIMITS) as server:
        yield server


def test_the_sandbox_answers_paged_gets_with_xeros_pagination_block(sandbox):
    tenant = next(iter(sandbox.state.tenants))
    token = authorize_headless(sandbox.url)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}
    with httpx.Client(base_url=f"{sandbox.url}/api.xro/2.0", headers=headers, timeout=30) as http:
        body = http.get("Contacts", params={"page": 2, "pageSize": 15}).json()
        whole = http.get("Contacts").json()
    contacts = len(whole["Contacts"])
    assert body["pagination"] == {
        "page": 2,
        "pageSize": 15,
        "pageCount": -(-contacts // 15),
        "itemCount": contacts,
    }
    assert "pagination" not in whole  # an unpaged GET has none, as at Xero


def test_the_import_command_shows_progress_and_no_library_lines(sandbox, tmp_path, monkeypatch, capfd):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    build_pipeline(url, sandbox)
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setattr(xero_client, "PAGE_SIZE", 10)  # 20 contacts: two pages
    # Pages of 10 make a few hundred calls: not paced at Xero's 60 a minute here (the sandbox has no limits).
    monkeypatch.setenv("XERO_LIMIT_PER_MINUTE", "1000000")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert cli.main(["import", "--full"]) == 0
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "progress: contacts" in line]
    assert "progress: contacts page 1 of 2 (10 of 20 records, 50%), about " in lines[0]
    assert lines[0].endswith(" left") and lines[-1].endswith("page 2 of 2 (20 of 20 records, 100%), done")
    assert "extracted contacts" in err
    assert "HTTP Request" not in err and "httpx" not in err and " INFO " not in err


def test_make_run_shows_the_progress_lines_of_the_airflow_log(tmp_path, capsys):
    log = tmp_path / "airflow.log"
    done = threading.Event()
    follower = threading.Thread(target=demo._follow_progress, args=(log, done))
    follower.start()
    log.write_text(
        "[2026-12-05 09:00:01] INFO - Task started\n"
        "[2026-12-05 09:00:02] {import_run.py:187} INFO - progress: contacts page 1 of 3 (1,000 of 2,500 records,"
        " 33%), about 2 s left [xero_crm_sync.progress]\n"
        "[2026-12-05 09:00:03] INFO - progress: contacts page 3 of 3 (2,500 of 2,500 records, 100%), done\n"
        '[2026-12-05 09:00:03] INFO - HTTP Request: GET http://127.0.0.1/ "HTTP/1.1 200 OK"\n'
    )
    done.set()
    follower.join(timeout=10)
    assert capsys.readouterr().out.splitlines() == [
        "    contacts page 1 of 3 (1,000 of 2,500 records, 33%), about 2 s left",
        "    contacts page 3 of 3 (2,500 of 2,500 records, 100%), done",
    ]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_real_airflow_import_logs_the_progress_lines_in_its_task(airflow_db, tmp_path):  # noqa: F811
    """A `dag.test()` run of xero_import over 2,100 contacts (three of Xero's 1,000-record pages, nothing patched):
    its extract task logs pages done of pages expected with the time left, on the `xero_crm_sync.progress` logger
    whose records reach Airflow's task log handler (in a deployment: the task log in the UI). Collected on that
    logger itself: where dag.test prints, and whether pytest's own handlers survive Airflow configuring logging,
    depends on which test ran a DAG first."""
    assert airflow_db
    logger, collect = logging.getLogger("xero_crm_sync.progress"), _Collect()
    logger.addHandler(
        collect
    )  # the logger's level is what Airflow's logging set-up makes it: not forced here
    try:
        with SandboxServer(seed=5, contacts=2_100, tenants=1, limits=NO_LIMITS) as server:
            pipeline = build_pipeline(f"sqlite:///{tmp_path / 'crm.db'}", server)
            pipeline.run_import(mode="full", connection_id=pipeline.connections["primary"])
    finally:
        logger.removeHandler(collect)
    lines = collect.lines
    assert any(
        re.fullmatch(
            r"progress: contacts page 1 of 3 \(1,000 of 2,\d{3} records, \d+%\), about .+ left", line
        )
        for line in lines
    ), lines
    assert any(re.fullmatch(r"progress: contacts page 3 of 3 \(2,\d{3} of 2,\d{3} records, 100%\), done", line)
               for line in lines), lines  # fmt: skip
