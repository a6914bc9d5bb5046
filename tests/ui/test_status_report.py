"""The status page's data (O2, P8): what `status.report` returns is what the database holds, filters narrow it,
and retry/dismiss move `sync_error.status` as the import and the push expect."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from tests.ui.seed import PRIMARY, RECONNECT_REASON, SECONDARY, XERO_MESSAGE, Seeded, seed
from xero_crm_sync import status


@pytest.fixture
def seeded(crm_url: str) -> Seeded:
    return seed(crm_url)


def test_the_report_shows_what_the_database_holds(seeded: Seeded):
    r = status.report(seeded.engine)
    by_name = {c["tenant_name"]: c for c in r.connections}
    assert (by_name[PRIMARY]["status"], by_name[PRIMARY]["health"]) == ("active", "ok")
    assert by_name[PRIMARY]["what_to_do"] is None and by_name[PRIMARY]["last_refresh_at"] is not None
    assert by_name[SECONDARY]["status"] == "needs_reconnect"
    assert by_name[SECONDARY]["last_error"] == RECONNECT_REASON
    assert by_name[SECONDARY]["what_to_do"] == (
        "Reconnect: python -m xero_crm_sync connect --operating-company 'ACME Trading' --role secondary"
    )
    assert "token_blob" not in by_name[PRIMARY]
    stamps = [by_name[PRIMARY]["last_refresh_at"], *(s["last_success_at"] for s in r.last_syncs)]
    assert all(isinstance(t, datetime) for t in stamps)  # on SQLite too, where they are stored as text

    syncs = {(s["direction"], s["entity"]): s for s in r.last_syncs}
    assert set(syncs) == {("import", "contacts"), ("import", "invoices"), ("export", "product")}
    assert (
        syncs["import", "contacts"]["records_read"],
        syncs["import", "contacts"]["records_quarantined"],
    ) == (120, 2)
    assert syncs["export", "product"]["records_read"] == 2  # records exported by the latest push run

    assert {(q["state"], q["records"]) for q in r.queue_counts} == {("waiting", 2), ("failed", 1)}
    assert sorted(q["record_id"] for q in r.queue) == [7, 21, 22]
    assert [(run["kind"], run["status"]) for run in r.runs] == [("push", "partial"), ("import", "success")]
    assert len(r.history) == 5

    assert {e["id"] for e in r.errors} == {seeded.export_error, seeded.import_error}  # unresolved only
    export = next(e for e in r.errors if e["id"] == seeded.export_error)
    assert (export["xero_message"], export["record_type"], export["record_id"]) == (
        XERO_MESSAGE,
        "sales_ledger",
        7,
    )
    assert export["action"].startswith("Rename the customer")
    assert r.quarantined[0]["reasons"] == ["EmailAddress is not an email address"]
    assert {"contacts", "sales_ledger", "product"} <= set(r.record_types)


def test_filters_narrow_every_list(seeded: Seeded):
    exports = status.report(seeded.engine, status.Filters(direction="export"))
    assert {e["direction"] for e in exports.errors} == {"export"}
    assert {s["direction"] for s in exports.last_syncs} == {"export"}
    assert [r["kind"] for r in exports.runs] == ["push"] and exports.quarantined == []
    failed = status.report(seeded.engine, status.Filters(queue_state="failed", error_status="resolved"))
    assert [q["record_id"] for q in failed.queue] == [7]
    assert [e["id"] for e in failed.errors] == [seeded.resolved_error]
    other = status.report(seeded.engine, status.Filters(connection_id=seeded.secondary, error_status="all"))
    assert other.errors == [] and other.queue == [] and other.history == [] and other.last_syncs == []
    assert len(other.connections) == 2  # the connection list always shows every connection
    products = status.report(seeded.engine, status.Filters(record_type="product", error_status="all"))
    assert [e["id"] for e in products.errors] == [seeded.resolved_error]
    with pytest.raises(ValueError):
        status.Filters(direction="sideways")


def test_retry_and_dismiss_move_the_error_as_import_and_push_expect(seeded: Seeded):
    def row(error_id: int) -> tuple:
        with seeded.engine.connect() as conn:
            return tuple(
                conn.execute(
                    text("SELECT status, resolved_by, resolved_at IS NOT NULL FROM sync_error WHERE id = :i"),
                    {"i": error_id},
                ).one()
            )

    assert status.retry_error(seeded.engine, seeded.export_error, "alice")["status"] == "retrying"
    assert row(seeded.export_error) == ("retrying", "alice", False)
    assert (
        status.retry_error(seeded.engine, seeded.export_error, "alice")["status"] == "retrying"
    )  # idempotent
    status.dismiss_error(seeded.engine, seeded.import_error, "bob")
    assert row(seeded.import_error) == ("dismissed", "bob", True)
    for action in (status.retry_error, status.dismiss_error):
        with pytest.raises(status.ActionRefused, match="resolved"):
            action(seeded.engine, seeded.resolved_error, "alice")
    with pytest.raises(status.ActionRefused, match="no error"):
        status.retry_error(seeded.engine, 999_999, "alice")


def test_pictures_api_budget_records_per_run_and_backlog_over_time(seeded: Seeded):
    picture = next(p for p in status.report(seeded.engine).pictures if p["connection_id"] == seeded.primary)
    # Without the limiter's record (nothing called through it yet), from the runs' call counts: the import made 75
    # calls in its 2 minutes (38 a minute), the push 3: 78 of the day's 5,000.
    assert status.api_budget(picture["runs"], seeded.now) | {"source": None} == {
        "calls_today": 78,
        "day_limit": 5_000,
        "peak_minute": 38,
        "minute_limit": 60,
        "runs_today": 2,
        "source": None,
    }
    assert [(r["kind"], r["imported"], r["pushed"]) for r in picture["runs"]] == [
        ("import", 420, 0),
        ("push", 0, 3),
    ]
    # After the import (7 minutes ago): nothing open yet; now: the quarantined contact and two open errors.
    assert [(p["quarantined"], p["unresolved"]) for p in picture["backlog"]] == [(0, 2), (1, 2)]
    secondary = next(
        p for p in status.report(seeded.engine).pictures if p["connection_id"] == seeded.secondary
    )
    assert secondary["runs"] == [] and secondary["budget"]["calls_today"] == 0


def test_overdue_notifications_are_listed_with_what_became_of_their_email(seeded: Seeded):
    with seeded.engine.begin() as conn:
        company = conn.execute(text("SELECT id FROM operating_company")).scalar_one()
        users = [
            conn.execute(
                text(
                    "INSERT INTO crm_user (operating_company_id, name, email) VALUES (:c, :n, :e) RETURNING id"
                ),
                {"c": company, "n": name, "e": email},
            ).scalar_one()
            for name, email in (("Ann Ng", "ann@acme.example"), ("Bob Roe", None))
        ]
        for key, user, emailed in (("INV-1", users[0], seeded.now), ("INV-2", users[1], None)):
            conn.execute(
                text(
                    "INSERT INTO notification (operating_company_id, crm_user_id, kind, record_type, record_id, "
                    "natural_key, title, message, emailed_at) VALUES (:c, :u, 'invoice_overdue', 'sales_invoice', "
                    "1, :k, :t, 'Kiwi Tools Ltd: 120.00 NZD was due on 2026-11-01', :e)"
                ),
                {"c": company, "u": user, "k": key, "t": f"Invoice {key} is overdue", "e": emailed},
            )
    listed = {n["title"]: n for n in status.report(seeded.engine).notifications}
    assert (
        listed["Invoice INV-1 is overdue"]["account_manager"],
        listed["Invoice INV-1 is overdue"]["email"],
    ) == (
        "Ann Ng",
        "sent",
    )
    assert listed["Invoice INV-2 is overdue"]["email"] == "no email address"
    filtered = status.report(seeded.engine, status.Filters(connection_id=seeded.primary, direction="export"))
    assert filtered.notifications == []


def test_the_api_budget_comes_from_the_limiters_record_of_every_call(seeded: Seeded, monkeypatch):
    from xero_crm_sync import limiter

    monkeypatch.setenv("XERO_LIMIT_WINDOW_SECONDS", "60")
    shared = limiter.limiter_for(seeded.engine)
    for _ in range(3):
        with shared.call("tenant-p", "app"):
            pass
    with shared.call("tenant-other", "app"):
        pass
    picture = next(p for p in status.report(seeded.engine).pictures if p["connection_id"] == seeded.primary)
    assert picture["budget"] == {
        "calls_today": 3,
        "day_limit": 5_000,
        "peak_minute": 3,
        "minute_limit": 60,
        "runs_today": 2,
        "source": "the rate limiter's record of every call",
    }
