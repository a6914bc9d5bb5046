"""Notifications that reach people (issue 14 item 4): account managers get their notifications by email through
the Airflow notifier, over a real SMTP server (aiosmtpd on a free port), each notification once, however often
the sender runs. The real xero_import runs of the UI session are checked too (tests/ui/test_status_browser.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.ui.smtp import SmtpServer, free_port
from xero_crm_sync import db, mail, migrate
from xero_crm_sync.connections import utcnow

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def crm(crm_url: str):
    """A CRM with three account managers (Bob has no email address) and their notifications."""
    migrate.migrate(crm_url)
    engine = db.get_engine(crm_url)
    with engine.begin() as conn:
        company = conn.execute(
            text("INSERT INTO operating_company (name) VALUES ('ACME Trading') RETURNING id")
        ).scalar_one()
        users = {}
        for name, email in (
            ("Ann Ng", "ann@acme.example"),
            ("Bob Roe", None),
            ("Cid Lee", "cid@acme.example"),
        ):
            users[name] = conn.execute(
                text(
                    "INSERT INTO crm_user (operating_company_id, name, email) VALUES (:c, :n, :e) RETURNING id"
                ),
                {"c": company, "n": name, "e": email},
            ).scalar_one()
    engine.company, engine.users = company, users  # type: ignore[attr-defined]
    for user, number in (
        ("Ann Ng", "INV-1"),
        ("Ann Ng", "INV-2"),
        ("Bob Roe", "INV-3"),
        ("Cid Lee", "INV-4"),
    ):
        _notify(engine, user, number)
    return engine


def _notify(engine, user: str, number: str) -> None:
    """A notification as sql/transform/140_notify_overdue_invoices.sql writes it."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO notification (operating_company_id, crm_user_id, kind, record_type, record_id, "
                "natural_key, title, message) VALUES (:c, :u, 'invoice_overdue', 'sales_invoice', 1, :k, :t, :m)"
            ),
            {
                "c": engine.company,
                "u": engine.users[user],
                "k": f"invoice_overdue:{number}",
                "t": f"Invoice {number} is overdue",
                "m": "Kiwi Tools Ltd: 120.00 NZD was due on 2026-11-01",
            },
        )


def _unsent(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(text("SELECT natural_key FROM notification WHERE emailed_at IS NULL")).scalars()
        )


def _settings(server: SmtpServer) -> mail.SmtpSettings:
    return mail.SmtpSettings(host="127.0.0.1", port=server.port, sender="crm@acme.example")


def test_each_account_manager_gets_one_message_and_no_notification_twice(crm, smtp):
    result = mail.send_notifications(crm, _settings(smtp))
    assert (result.sent, result.notifications, result.failed) == (2, 3, [])
    by_to = {m["X-Envelope-To"]: m for m in smtp.messages}
    assert set(by_to) == {"ann@acme.example", "cid@acme.example"}
    ann = by_to["ann@acme.example"]
    assert ann["Subject"] == "2 notifications from Xero" and ann["From"] == "crm@acme.example"
    body = ann.get_content()
    assert "Invoice INV-1 is overdue: Kiwi Tools Ltd: 120.00 NZD was due on 2026-11-01 (ACME Trading)" in body
    assert "INV-2" in body and "INV-4" not in body
    assert by_to["cid@acme.example"]["Subject"] == "Invoice INV-4 is overdue"
    assert _unsent(crm) == ["invoice_overdue:INV-3"]  # Bob has no email address: the page shows it

    # A rerun mails nothing; a new notification is mailed alone.
    assert mail.send_notifications(crm, _settings(smtp)).sent == 0
    _notify(crm, "Ann Ng", "INV-5")
    assert mail.send_notifications(crm, _settings(smtp)).notifications == 1
    assert len(smtp.messages) == 3 and smtp.messages[-1]["Subject"] == "Invoice INV-5 is overdue"


def test_an_unreachable_server_loses_nothing_and_the_next_run_sends(crm, smtp):
    down = mail.SmtpSettings(host="127.0.0.1", port=free_port(), timeout=5)
    result = mail.send_notifications(crm, down)
    assert result.sent == 0 and "ConnectionRefusedError" in result.failed[0]
    with crm.connect() as conn:
        errors = (
            conn.execute(text("SELECT email_error FROM notification WHERE emailed_at IS NULL"))
            .scalars()
            .all()
        )
    assert len(errors) == 4 and all("ConnectionRefusedError" in e for e in errors[:1])
    assert mail.send_notifications(crm, _settings(smtp)).notifications == 3
    assert _unsent(crm) == ["invoice_overdue:INV-3"]


def test_a_claim_held_by_another_sender_is_left_alone_until_it_is_stale(crm, smtp):
    now = utcnow()
    with crm.begin() as conn:
        conn.execute(
            text(
                "UPDATE notification SET email_claim = 'other', email_claimed_at = :t WHERE crm_user_id = :u"
            ),
            {"t": now - timedelta(minutes=5), "u": crm.users["Cid Lee"]},
        )
    assert mail.send_notifications(crm, _settings(smtp), now=now).notifications == 2  # Ann's only
    # The other sender died without sending: an hour later its claim is taken over.
    later = now + mail.STALE_CLAIM
    assert mail.send_notifications(crm, _settings(smtp), now=later).notifications == 1
    assert [m["X-Envelope-To"] for m in smtp.messages] == ["ann@acme.example", "cid@acme.example"]


def test_the_airflow_notifier_is_off_until_its_smtp_connection_exists(crm, smtp, crm_url, monkeypatch):
    from xero_notifier import AccountManagerNotifier

    monkeypatch.setenv("CRM_DATABASE_URL", crm_url)
    monkeypatch.delenv("AIRFLOW_CONN_XERO_CRM_SMTP", raising=False)
    AccountManagerNotifier().notify({})
    assert smtp.messages == [] and len(_unsent(crm)) == 4

    monkeypatch.setenv("AIRFLOW_CONN_XERO_CRM_SMTP", smtp.airflow_conn("crm@acme.example"))
    AccountManagerNotifier().notify({})
    AccountManagerNotifier().notify({})  # a rerun of the task: nothing twice
    assert sorted(m["X-Envelope-To"] for m in smtp.messages) == ["ann@acme.example", "cid@acme.example"]
    assert smtp.messages[0]["From"] == "crm@acme.example"
