"""Echo guard, one rule each way: our own writes do not come back as work.

- Xero -> CRM (here): a webhook event about a contact or invoice that *our push* wrote is our own write coming
  back. It is recognised when the CRM record linked to that Xero id was exported at or after the event's time and
  no more than `ECHO_WINDOW` after it (we stamp the export once Xero answered, so Xero's stamp is not later than
  ours). Such events are marked done without re-reading. A change someone makes in Xero after our push carries a
  later time than our export stamp and is imported as usual; were Xero's clock ahead of ours, an echo would merely
  be re-read, which changes nothing (the import is idempotent): the rule can only err on the cheap side.
- CRM -> Xero (webhooks/outbox.py): a CRM change the import wrote equals what Xero holds, so push's own diff
  ("no change, no call", sql/push/010 adopting the hash) finds nothing to send and the outbox trigger does not
  fire for it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, text

ECHO_WINDOW = timedelta(seconds=30)

# The CRM records our push writes to Xero, by event category: (Xero id column, export stamp) per table.
_EXPORTED = {
    "CONTACT": "SELECT LOWER(accounting_code), last_accounting_export_date FROM sales_ledger "
    "WHERE operating_company_id = :oc AND LOWER(accounting_code) IN :ids",
    "INVOICE": "SELECT LOWER(xero_invoice_id), last_accounting_export_date FROM sales_order "
    "WHERE operating_company_id = :oc AND LOWER(xero_invoice_id) IN :ids",
}


def _dt(value: Any) -> Any:
    from datetime import datetime

    return value if value is None or isinstance(value, datetime) else datetime.fromisoformat(str(value))


def own_writes(conn: Connection, operating_company_id: int, batch: list[Any]) -> set[int]:
    """The ids of events in `batch` (webhook_event rows) that are our own push coming back."""
    own: set[int] = set()
    for category, sql in _EXPORTED.items():
        wanted = [e for e in batch if e.event_category == category]
        if not wanted:
            continue
        rows = conn.execute(
            text(sql).bindparams(bindparam("ids", expanding=True)),
            {"oc": operating_company_id, "ids": sorted({e.resource_id for e in wanted})},
        ).all()
        exported = {xero_id: _dt(at) for xero_id, at in rows if at is not None}
        for event in wanted:
            at = exported.get(event.resource_id)
            if at is not None and event.event_date_utc <= at <= event.event_date_utc + ECHO_WINDOW:
                own.add(event.id)
    return own
