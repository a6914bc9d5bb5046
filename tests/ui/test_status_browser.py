"""The status page in a real headless Chromium (Debian's, driven by Playwright): log in through Airflow, open the
page, check it shows what the database holds, click Retry, see the result; also inside Airflow's own UI.
Screenshots go to test-artifacts/ui/."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.ui.conftest import UI_ARTIFACTS, USERS, ApiServer
from tests.ui.real_runs import MANAGER, MANAGER_EMAIL
from tests.ui.seed import EXPORT_ACTION, PRIMARY, RECONNECT_REASON, SECONDARY, XERO_MESSAGE
from xero_crm_sync import status

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(api_server: ApiServer):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (`make browser`, or apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            yield context.new_page()
        finally:
            browser.close()


def _shot(page, name: str) -> None:
    UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(UI_ARTIFACTS / name), full_page=True)


def _log_in(page, server: ApiServer, user: str) -> None:
    """Open the status page: Airflow sends the browser to its login page; sign in there."""
    page.goto(f"{server.url}/xero-status/")
    page.wait_for_url(re.compile(r"/auth/login"), timeout=30_000)
    password = page.locator('input[type="password"]')
    password.wait_for(timeout=30_000)
    _shot(page, "01-airflow-login.png")
    page.locator('input:not([type="password"]):not([type="hidden"])').first.fill(USERS[user][0])
    password.fill(USERS[user][1])
    password.press("Enter")
    page.wait_for_url(re.compile(r"/xero-status/"), timeout=30_000)


def _error_status(server: ApiServer, error_id: int) -> str:
    with server.seeded.engine.connect() as conn:
        return conn.execute(text("SELECT status FROM sync_error WHERE id = :i"), {"i": error_id}).scalar_one()


def test_log_in_see_the_status_and_retry_an_error(page, api_server: ApiServer):
    seeded = api_server.seeded
    _log_in(page, api_server, "admin")
    page.locator("#connections").wait_for()
    _shot(page, "02-status-page.png")

    # Per connection: health and last refresh, and what to do when it is broken.
    primary = page.locator(f'#connections tr[data-connection-id="{seeded.primary}"]')
    assert PRIMARY in primary.inner_text() and "active" in primary.locator(".status").inner_text()
    assert primary.locator(".last-refresh").inner_text().endswith("UTC")
    secondary = page.locator(f'#connections tr[data-connection-id="{seeded.secondary}"]')
    assert (
        SECONDARY in secondary.inner_text() and "needs reconnect" in secondary.locator(".status").inner_text()
    )
    assert RECONNECT_REASON in secondary.inner_text()
    assert "python -m xero_crm_sync connect --operating-company 'ACME Trading' --role secondary" in (
        secondary.locator(".todo").inner_text()
    )
    # Last sync per entity with counts, the queue, the history, errors with Xero's message and what to do, for
    # the seeded organisation (the real runs' organisation is on the page too).
    page.goto(f"{api_server.url}/xero-status/?connection_id={seeded.primary}")
    contacts = page.locator(f'#last-syncs tr[data-entity="contacts"][data-connection-id="{seeded.primary}"]')
    assert contacts.locator(".records").inner_text() == "120"
    assert "2 waiting" in page.locator("#queue .counts").inner_text()
    assert "1 failed" in page.locator("#queue .counts").inner_text()
    assert page.locator("#history tbody tr").count() == 5
    error = page.locator(f'#errors tr[data-error-id="{seeded.export_error}"]')
    assert error.locator(".xero-message").inner_text() == XERO_MESSAGE
    assert error.locator(".action").inner_text() == EXPORT_ACTION
    assert "sales_ledger #7" in error.locator(".record").inner_text()
    assert "EmailAddress is not an email address" in page.locator("#quarantined").inner_text()

    # Retry: the next push resends the record; the page reloads and shows it.
    error.locator("button.retry").click()
    page.locator("#flash.flash-ok").wait_for(timeout=30_000)
    assert (
        f"Error {seeded.export_error} will be retried on the next run." in page.locator("#flash").inner_text()
    )
    assert _error_status(api_server, seeded.export_error) == "retrying"
    error = page.locator(f'#errors tr[data-error-id="{seeded.export_error}"]')
    assert "retrying" in error.locator(".error-status").inner_text()
    assert "by admin" in error.locator(".error-status").inner_text()
    assert error.locator("button.retry").count() == 0 and error.locator("button.dismiss").count() == 1
    _shot(page, "03-after-retry.png")

    # Filters: export errors only.
    page.select_option('select[name="direction"]', "export")
    page.click('#filters button[type="submit"]')
    page.wait_for_url(re.compile(r"direction=export"))
    assert page.locator("#errors tbody tr[data-error-id]").count() == 1
    _shot(page, "04-filtered-exports.png")

    # Inside Airflow's UI: the navigation entry shows the same page.
    page.goto(f"{api_server.url}/plugin/xero-status")
    frame = page.frame_locator("iframe")
    frame.locator("#connections").wait_for(timeout=60_000)
    assert PRIMARY in frame.locator("#connections").inner_text()
    _shot(page, "05-inside-airflow-ui.png")


def test_the_page_shows_what_real_runs_wrote(page, api_server: ApiServer):
    """Real runs (tests/ui/real_runs.py: imports and a push through dag.test against the sandbox): the counts, the
    notifications and the pictures on the page are the ones those runs wrote, Valid included."""
    real = api_server.real
    _log_in(page, api_server, "viewer")
    page.goto(f"{api_server.url}/xero-status/?connection_id={real.connection_id}")
    with real.engine.connect() as conn:
        marks = conn.execute(
            text(
                "SELECT entity, records_read, records_valid, records_quarantined, last_successful_run_id "
                "FROM sync_watermark WHERE connection_id = :c"
            ),
            {"c": real.connection_id},
        ).all()
        runs = conn.execute(
            text("SELECT run_id, kind, counts FROM sync_run WHERE connection_id = :c ORDER BY started_at"),
            {"c": real.connection_id},
        ).all()
        open_quarantined = conn.execute(
            text("SELECT COUNT(*) FROM quarantined_record WHERE connection_id = :c AND resolved_at IS NULL"),
            {"c": real.connection_id},
        ).scalar_one()
    assert len(marks) >= 10
    shown = 0
    for entity, read, valid, quarantined, run_id in marks:
        row = page.locator(
            f'#last-syncs tr[data-entity="{entity}"][data-connection-id="{real.connection_id}"]'
        )
        assert run_id == real.run_ids[-1]
        assert row.locator(".records").inner_text() == str(read)
        assert row.locator(".valid").inner_text() == str(valid)
        assert row.locator(".quarantined").inner_text() == str(quarantined)
        assert valid + quarantined == read, entity
        shown += valid
    assert shown > 0, "the last run read nothing valid: Valid would be 0 for every entity"
    assert [r.run_id for r in runs] == real.run_ids
    page_runs = page.locator("#runs tbody tr", has_text=real.tenant_name)
    assert page_runs.count() == 4 and "success" in page_runs.first.inner_text()

    # Overdue invoices: listed, their account manager emailed once (run 2), never again (run 4).
    assert [len(mails) for mails in real.mails] == [0, 1, 0, 0]
    mail = real.mails[1][0]
    assert mail["X-Envelope-To"] == MANAGER_EMAIL and mail["Subject"] == "2 notifications from Xero"
    assert all(f"Invoice {number} is overdue" in mail.get_content() for number in real.overdue)
    assert page.locator("#overdue-count").inner_text() == "2"
    for number in real.overdue:
        row = page.locator("#notifications tr", has_text=f"Invoice {number} is overdue")
        assert MANAGER in row.inner_text() and "sent" in row.locator(".email").inner_text()

    # Pictures: the API budget, records per run, the backlog, each with its figures in words.
    figures = [status.run_figures(kind, counts) for _run, kind, counts in runs]
    pictures = page.locator(f'#pictures article[data-connection-id="{real.connection_id}"]')
    # The limiter recorded every call the runs made (tenant calls only: the runs' counts include none other).
    with real.engine.connect() as conn:
        tenant = conn.execute(
            text("SELECT tenant_id FROM xero_connection WHERE id = :c"), {"c": real.connection_id}
        ).scalar_one()
    with sqlite3.connect(f"{real.engine.url.database}-limits") as limits:
        calls = limits.execute(
            "SELECT COUNT(*) FROM xero_rate_call WHERE tenant_id = ?", (tenant,)
        ).fetchone()[0]
    assert calls >= sum(f["calls"] for f in figures) > 0
    budget = pictures.get_by_role(
        "img", name=re.compile(rf"API calls in the last 24 hours: {calls:,} of 5,000")
    )
    assert budget.count() == 1
    assert pictures.get_by_role("img", name=re.compile(r"Busiest minute: \d+ of 60")).count() == 1
    records = pictures.get_by_role("img", name=re.compile("Records imported and pushed per run"))
    bars = records.locator("rect > title")
    assert f"({real.run_ids[0]}): {figures[0]['imported']:,} imported" in bars.all_text_contents()[0]
    assert any(
        f"({real.run_ids[2]}): 2 pushed" in t for t in bars.all_text_contents()
    )  # a customer, a product
    backlog = pictures.get_by_role(
        "img", name=re.compile("Quarantined records and unresolved errors over time")
    )
    assert backlog.count() == 1 and backlog.locator("circle").count() == 2 * 4  # after each import, and now
    assert f"Now: {open_quarantined} quarantined; 0 unresolved" in backlog.locator("desc").text_content()
    pictures.screenshot(path=str(UI_ARTIFACTS / "06-pictures.png"))
    page.locator("#notifications").screenshot(path=str(UI_ARTIFACTS / "07-notifications.png"))
    _shot(page, "08-real-runs.png")
