"""A CRM database holding one of everything the status page shows, written the way the pipeline writes it:
connections through the token store, the rest as the import and the push leave it (same tables, same values)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from xero_crm_sync import db, migrate
from xero_crm_sync.connections import ConnectionStore, utcnow
from xero_crm_sync.oauth import AppCredentials

COMPANY = "ACME Trading"
PRIMARY, SECONDARY = "ACME Trading NZ", "ACME Analysis Codes"
XERO_MESSAGE = (
    "The contact name Kiwi Tools Ltd is already assigned to another contact. The contact name must be unique."
)
EXPORT_ACTION = "Rename the customer in the CRM, or link it to the existing Xero contact, then retry."
# What the import's and the push's steps record in sync_run.counts (abridged to what the page reads).
IMPORT_COUNTS = {
    "extract": {"calls": 75, "entities": {"contacts": {"records": 120}, "invoices": {"records": 300}}},
    "validate": {"contacts": {"valid": 118, "quarantined": 2}, "invoices": {"valid": 300, "quarantined": 0}},
}
PUSH_COUNTS = {
    "customers": {"calls": 2, "created": 0, "updated": 1, "linked": 0, "rejected": 1},
    "products": {"calls": 1, "created": 1, "updated": 1, "linked": 0, "rejected": 0},
}
RECONNECT_REASON = "Xero refused the token refresh (invalid_grant): reconnect it"


@dataclass
class Seeded:
    url: str
    engine: Engine
    primary: int
    secondary: int
    export_error: int
    import_error: int
    resolved_error: int
    now: datetime


def seed(url: str) -> Seeded:
    migrate.migrate(url)
    engine = db.get_engine(url)
    store = ConnectionStore(engine)
    now = utcnow().replace(microsecond=0)
    with engine.begin() as conn:
        company = conn.execute(
            text("INSERT INTO operating_company (name) VALUES (:n) RETURNING id"), {"n": COMPANY}
        ).scalar_one()
    token = {"access_token": "a" * 40, "refresh_token": "r" * 40, "expires_at": time.time() + 1500}
    ids = {}
    for role, name, tenant in (("primary", PRIMARY, "tenant-p"), ("secondary", SECONDARY, "tenant-s")):
        ids[role] = store.save_new(
            operating_company_id=company,
            role=role,
            tenant_id=tenant,
            tenant_name=name,
            credentials=AppCredentials("client", "secret-value-for-seed"),
            token=token,
            scopes="offline_access accounting.contacts",
        )
    store.record_health(ids["primary"], "ok", refreshed=True, now=now)
    store.mark_needs_reconnect(ids["secondary"], RECONNECT_REASON)
    p = ids["primary"]
    earlier = now - timedelta(minutes=7)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sync_watermark (connection_id, entity, watermark_at, last_full_sync_at, "
                "last_successful_run_id, last_successful_run_at, records_read, records_valid, records_quarantined) "
                "VALUES (:c, 'contacts', :w, :w, 'scheduled__1', :at, 120, 118, 2), "
                "(:c, 'invoices', :w, :w, 'scheduled__1', :at, 300, 300, 0)"
            ),
            {"c": p, "w": earlier - timedelta(hours=1), "at": earlier},
        )
        conn.execute(
            text(
                "INSERT INTO sync_run (run_id, connection_id, kind, mode, status, started_at, finished_at, counts) "
                "VALUES ('scheduled__1', :c, 'import', 'full', 'success', :s, :at, :import_counts), "
                "('push__2', :c, 'push', 'incremental', 'partial', :at, :now, :push_counts)"
            ),
            {
                "c": p,
                "s": earlier - timedelta(minutes=2),
                "at": earlier,
                "now": now,
                "import_counts": json.dumps(IMPORT_COUNTS),
                "push_counts": json.dumps(PUSH_COUNTS),
            },
        )
        for record_id, op in ((1, "create"), (2, "update"), (3, "create")):
            conn.execute(
                text(
                    "INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, "
                    "run_id, at) VALUES (:c, 'import', 'sales_ledger', :r, :x, :op, 'scheduled__1', :at)"
                ),
                {"c": p, "r": record_id, "x": f"xero-contact-{record_id}", "op": op, "at": earlier},
            )
        conn.execute(
            text(
                "INSERT INTO sync_history (connection_id, direction, record_type, record_id, xero_id, operation, "
                "run_id, at) VALUES (:c, 'export', 'product', 11, 'xero-item-11', 'create', 'push__2', :at), "
                "(:c, 'export', 'product', 12, 'xero-item-12', 'update', 'push__2', :at)"
            ),
            {"c": p, "at": now},
        )
        for record_id, state, error in (
            (21, "waiting", None),
            (22, "waiting", None),
            (7, "failed", XERO_MESSAGE),
        ):
            conn.execute(
                text(
                    "INSERT INTO export_queue (connection_id, record_type, record_id, operation, idempotency_key, "
                    "state, attempts, last_error, enqueued_at) VALUES (:c, 'sales_ledger', :r, 'update', :k, :s, "
                    ":a, :e, :at)"
                ),
                {
                    "c": p,
                    "r": record_id,
                    "k": f"key-{record_id}",
                    "s": state,
                    "a": 1 if error else 0,
                    "e": error,
                    "at": now,
                },
            )
        errors = {}
        for key, direction, record_type, record_id, code, message, xero_message, action, status in (
            (
                "export",
                "export",
                "sales_ledger",
                7,
                "validation",
                "Xero rejected the update of customer Kiwi Tools Ltd",
                XERO_MESSAGE,
                EXPORT_ACTION,
                "open",
            ),
            (
                "import",
                "import",
                "sales_ledger",
                None,
                "ambiguous_match",
                "Xero contact Harbour Cafe matches more than one unlinked CRM sales ledger",
                None,
                "Set the accounting code of the right CRM ledger, or dismiss this error",
                "open",
            ),
            ("resolved", "export", "product", 12, "validation", "Fixed long ago", None, None, "resolved"),
        ):
            errors[key] = conn.execute(
                text(
                    "INSERT INTO sync_error (connection_id, direction, record_type, record_id, xero_id, error_code, "
                    "dedupe_key, message, xero_message, action, status, attempts, run_id, first_seen_at, "
                    "last_seen_at) VALUES (:c, :d, :t, :r, :x, :code, :k, :m, :xm, :a, :s, 2, 'push__2', :f, :at) "
                    "RETURNING id"
                ),
                {
                    "c": p,
                    "d": direction,
                    "t": record_type,
                    "r": record_id,
                    "x": "xero-contact-9" if key == "import" else None,
                    "code": code,
                    "k": f"{direction}:{record_type}:{record_id}:{code}",
                    "m": message,
                    "xm": xero_message,
                    "a": action,
                    "s": status,
                    "f": earlier,
                    "at": now,
                },
            ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO quarantined_record (run_id, connection_id, entity, xero_id, reasons, raw) "
                "VALUES ('scheduled__1', :c, 'contacts', 'xero-contact-bad', :reasons, '{}')"
            ),
            {"c": p, "reasons": json.dumps(["EmailAddress is not an email address"])},
        )
    return Seeded(
        url=url,
        engine=engine,
        primary=p,
        secondary=ids["secondary"],
        export_error=errors["export"],
        import_error=errors["import"],
        resolved_error=errors["resolved"],
        now=now,
    )
