"""Account managers' notifications by email (issue 14 item 4): one message per account manager per run, listing
the notifications (overdue invoices, I8) not mailed yet; each row is mailed once.

Exactly once, as far as SMTP allows: a sender first claims the user's unsent rows with a token of its own (an
UPDATE that only takes rows nobody else holds), sends one message for the rows it holds, then marks them
`emailed_at`. A rerun, or a second sender at the same time, finds nothing to claim, so nobody gets the same mail
twice. A failed send releases the claim and keeps the reason in `email_error`: the next run tries again. A claim
left by a process that died between claiming and marking is taken again after `STALE_CLAIM` (if it died after
the SMTP server accepted the message, that one message goes out twice: the only window left).

Users without an email address (or inactive) are not mailed; their notifications stay on the status page. No
Airflow import here: `plugins/xero_notifier.py` turns an Airflow connection into `SmtpSettings`.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine, text

from xero_crm_sync.connections import utcnow

STALE_CLAIM = timedelta(hours=1)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "xero-crm-sync@localhost"
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0


@dataclass
class SendResult:
    sent: int = 0  # messages
    notifications: int = 0  # rows those messages carried
    failed: list[str] = field(default_factory=list)  # "user: reason"


_RECIPIENTS_SQL = """
SELECT DISTINCT u.id, u.name, u.email
FROM notification n JOIN crm_user u ON u.id = n.crm_user_id
WHERE n.emailed_at IS NULL AND u.email IS NOT NULL AND u.email <> '' AND u.is_active
  AND (n.email_claim IS NULL OR n.email_claimed_at < :stale)
ORDER BY u.id
"""

_CLAIM_SQL = """
UPDATE notification SET email_claim = :token, email_claimed_at = :now
WHERE crm_user_id = :user AND emailed_at IS NULL AND (email_claim IS NULL OR email_claimed_at < :stale)
"""

_CLAIMED_SQL = """
SELECT n.id, n.title, n.message, n.created_at, oc.name AS company
FROM notification n JOIN operating_company oc ON oc.id = n.operating_company_id
WHERE n.email_claim = :token AND n.emailed_at IS NULL
ORDER BY n.created_at, n.id
"""

_SENT_SQL = """
UPDATE notification SET emailed_at = :now, email_error = NULL WHERE email_claim = :token AND emailed_at IS NULL
"""

_FAILED_SQL = """
UPDATE notification SET email_claim = NULL, email_claimed_at = NULL, email_error = :error
WHERE email_claim = :token AND emailed_at IS NULL
"""


def send_notifications(engine: Engine, smtp: SmtpSettings, *, now: datetime | None = None) -> SendResult:
    """Mail every account manager the notifications not mailed yet; one SMTP session for the whole run."""
    now = now or utcnow()
    stale = now - STALE_CLAIM
    result = SendResult()
    with engine.connect() as conn:
        recipients = conn.execute(text(_RECIPIENTS_SQL), {"stale": stale}).mappings().all()
    if not recipients:
        return result
    try:
        with _session(smtp) as server:
            for user in recipients:
                _send_to(engine, server, smtp.sender, user, now, stale, result)
    except (smtplib.SMTPException, OSError) as exc:
        # Connecting or logging in failed (a message's own failure is handled in _send_to): all stay unsent.
        reason = f"SMTP server {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"[:500]
        with engine.begin() as conn:
            conn.execute(text(_UNREACHABLE_SQL), {"error": reason, "stale": stale})
        result.failed.append(reason)
    return result


def _send_to(
    engine: Engine,
    server: smtplib.SMTP,
    sender: str,
    user: Any,
    now: datetime,
    stale: datetime,
    result: SendResult,
) -> None:
    token = uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(text(_CLAIM_SQL), {"token": token, "now": now, "user": user["id"], "stale": stale})
        rows = conn.execute(text(_CLAIMED_SQL), {"token": token}).mappings().all()
    if not rows:
        return  # another sender holds them
    try:
        server.send_message(message(sender, user, rows))
    except (smtplib.SMTPException, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        with engine.begin() as conn:
            conn.execute(text(_FAILED_SQL), {"token": token, "error": reason})
        result.failed.append(f"{user['name']}: {reason}")
        return
    with engine.begin() as conn:
        conn.execute(text(_SENT_SQL), {"token": token, "now": utcnow()})
    result.sent += 1
    result.notifications += len(rows)


_UNREACHABLE_SQL = """
UPDATE notification SET email_error = :error
WHERE emailed_at IS NULL AND (email_claim IS NULL OR email_claimed_at < :stale)
"""


def message(sender: str, user: dict[str, Any], rows: list[dict[str, Any]]) -> EmailMessage:
    """One plain-text message for one account manager."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = f"{user['name']} <{user['email']}>"
    mail["Subject"] = rows[0]["title"] if len(rows) == 1 else f"{len(rows)} notifications from Xero"
    lines = [f"Hello {user['name']},", "", "New since the last sync with Xero:", ""]
    lines += [f"- {row['title']}: {row['message'] or ''} ({row['company']})" for row in rows]
    lines += ["", "The Xero status page in Airflow lists them all (Browse -> Xero status)."]
    mail.set_content("\n".join(lines))
    return mail


@contextmanager
def _session(smtp: SmtpSettings) -> Iterator[smtplib.SMTP]:
    """An SMTP session (SSL, STARTTLS or plain, logged in when a login is set), closed at the end."""
    if smtp.use_ssl:
        context = ssl.create_default_context()
        server: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        if smtp.starttls and not smtp.use_ssl:
            server.starttls(context=ssl.create_default_context())
        if smtp.login:
            server.login(smtp.login, smtp.password or "")
        yield server
    finally:
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            server.close()
