"""AccountManagerNotifier: emails account managers their new notifications (overdue invoices) over SMTP.

An Airflow notifier (`airflow.sdk.BaseNotifier`), attached as `on_success_callback` to xero_import's load task:
after each load it mails each account manager the notifications not mailed yet (`xero_crm_sync.mail`: one
message per person, each notification once, however often the task reruns).

Off by default: it sends only when the Airflow connection `xero_crm_smtp` exists (conn type `smtp`; another id
through `XERO_CRM_SMTP_CONN_ID`). Set it in Airflow's Connections UI, or as an environment variable:

    AIRFLOW_CONN_XERO_CRM_SMTP='smtp://user:password@smtp.example.com:587?from_email=crm%40example.com&starttls=true'

Host and port are the SMTP server's; login and password are used when set; extras: `from_email` (the sender),
`starttls` (true/false), `ssl` (true/false, SMTPS). Account managers without an email address are skipped: their
notifications stay on the status page.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseNotifier, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from xero_crm_sync import mail

DEFAULT_CONN_ID = "xero_crm_smtp"


def smtp_settings(conn_id: str) -> mail.SmtpSettings | None:
    """The SMTP server of the Airflow connection, or None when there is none (email is off)."""
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    extra = conn.extra_dejson or {}
    use_ssl = _flag(extra.get("ssl"))
    return mail.SmtpSettings(
        host=conn.host or "localhost",
        port=int(conn.port or (465 if use_ssl else 25)),
        sender=extra.get("from_email") or mail.SmtpSettings.sender,
        login=conn.login or None,
        password=conn.password or None,
        starttls=_flag(extra.get("starttls")),
        use_ssl=use_ssl,
        timeout=float(extra.get("timeout", 30)),
    )


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class AccountManagerNotifier(BaseNotifier):
    """Mail account managers their notifications not mailed yet (off until the SMTP connection exists)."""

    template_fields = ("smtp_conn_id",)

    def __init__(self, smtp_conn_id: str | None = None) -> None:
        super().__init__()
        self.smtp_conn_id = smtp_conn_id or os.environ.get("XERO_CRM_SMTP_CONN_ID", DEFAULT_CONN_ID)

    def notify(self, context: Any) -> None:
        from xero_hook import XeroHook

        smtp = smtp_settings(self.smtp_conn_id)
        if smtp is None:
            self.log.info("email notifications are off (no Airflow connection %r)", self.smtp_conn_id)
            return
        result = mail.send_notifications(XeroHook().engine, smtp)
        self.log.info(
            "emailed %d account managers %d notifications via %s:%d",
            result.sent,
            result.notifications,
            smtp.host,
            smtp.port,
        )
        for failure in result.failed:
            self.log.warning("notification email not sent, retried on the next run: %s", failure)
