"""Staging retention: what old import runs staged is forgotten, never the staged rows the mirror points at."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.pipeline.helpers import connected_company
from tests.pipeline.test_staging import invoice
from xero_crm_sync import db, migrate, retention, runs, staging, validated
from xero_crm_sync.cli import main as cli_main
from xero_crm_sync.entities import entity

NOW = datetime(2026, 12, 7, 12, 0, 0)
WINDOW = NOW - timedelta(days=14)
A = "9B7C5F1E-0000-4000-8000-00000000000A"
B = "9B7C5F1E-0000-4000-8000-00000000000B"


def _connection(url: str) -> int:
    return connected_company(url, "Retention Ltd")[1]


def _import(
    url: str, connection_id: int, run_id: str, days_ago: float, records: list[dict[str, Any]]
) -> None:
    """A run that staged `records` (one page) `days_ago` days before NOW, validated and mirrored."""
    when = NOW - timedelta(days=days_ago)
    with db.begin(url) as conn:
        conn.execute(
            text(
                "INSERT INTO sync_run (run_id, connection_id, kind, started_at) VALUES (:r, :c, 'import', :t)"
            ),
            {"r": run_id, "c": connection_id, "t": db.bind_time(when, conn.dialect.name)},
        )
        spec = entity("invoices")
        ctx = staging.RunContext(run_id=run_id, connection_id=connection_id, extracted_at=when)
        staging.write_page(conn, spec, staging.stage_page(spec, records, ctx))
        conn.execute(
            text("UPDATE stg_invoices SET validation_status = 'valid' WHERE run_id = :r"), {"r": run_id}
        )
        validated.promote(conn, spec, run_id, connection_id)
    _quarantine(url, connection_id, run_id, days_ago, "held back by every run")


def _quarantine(
    url: str, connection_id: int, run_id: str, days_ago: float, xero_id: str, *, resolved=False
) -> None:
    when = NOW - timedelta(days=days_ago)
    with db.begin(url) as conn:
        conn.execute(
            text(
                "INSERT INTO quarantined_record (run_id, connection_id, entity, xero_id, reasons, created_at, "
                "resolved_at) VALUES (:r, :c, 'invoices', :x, '[\"held\"]', :t, :resolved)"
            ),
            {
                "r": run_id,
                "c": connection_id,
                "x": xero_id,
                "t": db.bind_time(when, conn.dialect.name),
                "resolved": db.bind_time(when, conn.dialect.name) if resolved else None,
            },
        )


def _staged(url: str) -> list[tuple[str, str, int]]:
    """(run, invoice id, its staged lines) for every staged invoice."""
    with db.begin(url) as conn:
        rows = conn.execute(
            text(
                "SELECT s.run_id, s.xero_id, (SELECT COUNT(*) FROM stg_invoice_lines l WHERE l.run_id = s.run_id "
                "AND l.parent_page = s.page AND l.parent_position = s.position) FROM stg_invoices s "
                "ORDER BY s.run_id, s.xero_id"
            )
        ).all()
    return [tuple(r) for r in rows]


def _mirrored_payloads(url: str) -> dict[str, str]:
    """What analysts read (docs/CRM_SCHEMA.md): each mirrored invoice's staged payload."""
    with db.begin(url) as conn:
        rows = conn.execute(
            text(
                "SELECT v.xero_id, CAST(s.raw AS TEXT) FROM val_invoices v JOIN stg_invoices s "
                "ON s.stg_id = v.stg_id AND s.xero_id = v.xero_id"
            )
        ).all()
    return {xero_id: json.loads(raw)["Reference"] for xero_id, raw in rows}


def _quarantined(url: str) -> list[tuple[str, str]]:
    with db.begin(url) as conn:
        rows = conn.execute(
            text("SELECT run_id, xero_id FROM quarantined_record ORDER BY run_id, xero_id")
        ).all()
    return [tuple(r) for r in rows]


def _prune(url: str) -> dict[str, int]:
    return retention.prune_staging(db.get_engine(url), older_than=WINDOW).as_dict()


def test_old_runs_are_forgotten_except_the_versions_the_mirror_holds(crm_url):
    migrate.migrate(crm_url)
    connection_id = _connection(crm_url)
    a, b = A.lower(), B.lower()
    old = [invoice(InvoiceID=A, Reference="A v1"), invoice(InvoiceID=B, Reference="B v1")]
    _import(crm_url, connection_id, "old", 20, old)
    newer = "/Date(1573755099000+0000)/"  # A changed in Xero since
    _import(
        crm_url, connection_id, "recent", 1, [invoice(InvoiceID=A, Reference="A v2", UpdatedDateUTC=newer)]
    )
    _quarantine(crm_url, connection_id, "old", 20, "fixed since", resolved=True)
    _quarantine(crm_url, connection_id, "old", 20, "still open")
    _quarantine(crm_url, connection_id, "recent", 1, "resolved yesterday", resolved=True)  # inside the window

    # The old run's version of A is superseded: gone with its lines; B's version is the mirror's: kept, with its
    # lines. The recent run is inside the window: untouched. Of the old quarantined records, the one a later run
    # quarantined again and the resolved one go; the open one stays (the status page lists it).
    assert _prune(crm_url) == {
        "runs": 1,
        "finished": 0,
        "staged_deleted": 1,
        "kept_for_mirror": 1,
        "quarantine_deleted": 2,
        "outbox_deleted": 0,
    }
    assert _staged(crm_url) == [("old", b, 2), ("recent", a, 2)]
    assert _mirrored_payloads(crm_url) == {a: "A v2", b: "B v1"}
    assert _quarantined(crm_url) == [
        ("old", "still open"),
        ("recent", "held back by every run"),
        ("recent", "resolved yesterday"),
    ]

    # The next full reconcile stages B again: the mirror moves to the newer row, and the old run empties and is
    # stamped, never looked at again.
    _import(crm_url, connection_id, "reconcile", 0.5, [invoice(InvoiceID=B, Reference="B again")])
    assert _prune(crm_url)["finished"] == 1
    assert [run for run, _, _ in _staged(crm_url)] == ["recent", "reconcile"]
    assert _mirrored_payloads(crm_url) == {a: "A v2", b: "B again"}
    assert _prune(crm_url)["runs"] == 0


def test_a_late_rerun_of_an_old_run_keeps_what_it_stages_until_that_is_old(crm_url):
    """However late a rerun comes, what it stages stays until it is itself older than the window: validate and
    load read it after extract, and the watermarks move with it."""
    migrate.migrate(crm_url)
    connection_id = _connection(crm_url)
    _import(crm_url, connection_id, "old", 20, [invoice(InvoiceID=A, Reference="A v1")])
    with db.begin(crm_url) as conn:
        conn.execute(text("DELETE FROM val_invoices"))  # nothing mirrored: the whole run goes
    assert _prune(crm_url)["finished"] == 1
    assert _staged(crm_url) == []

    # The rerun stages again now and records the run: the stamp is cleared, its fresh rows outlive the next prunes.
    with db.begin(crm_url) as conn:
        spec = entity("invoices")
        ctx = staging.RunContext(run_id="old", connection_id=connection_id, extracted_at=NOW)
        staging.write_page(conn, spec, staging.stage_page(spec, [invoice(InvoiceID=A)], ctx))
    runs.record_run(db.get_engine(crm_url), connection_id, "old", "import", {"extract": {}})
    assert _prune(crm_url) == {
        "runs": 1,
        "finished": 0,
        "staged_deleted": 0,
        "kept_for_mirror": 0,
        "quarantine_deleted": 0,
        "outbox_deleted": 0,
    }
    assert _staged(crm_url) == [("old", A.lower(), 2)]


def test_a_pass_with_a_time_budget_leaves_the_rest_for_the_next_pass(crm_url):
    """The health DAG gives each pass about two minutes, so a backlog (the first pass after an upgrade) never holds
    up its next run: once the budget is spent no further run is started, and the next pass goes on, oldest first."""
    migrate.migrate(crm_url)
    connection_id = _connection(crm_url)
    for n, run_id in enumerate(("oldest", "older")):
        _import(crm_url, connection_id, run_id, 30 - n, [invoice(InvoiceID=A)])
    with db.begin(crm_url) as conn:
        conn.execute(text("DELETE FROM val_invoices"))  # nothing mirrored: each run empties in one pass
    engine = db.get_engine(crm_url)
    first = retention.prune_staging(engine, older_than=WINDOW, max_seconds=0)
    assert (first.runs, first.finished) == (1, 1)  # one run is always done
    assert [run for run, _, _ in _staged(crm_url)] == ["older"]
    second = retention.prune_staging(engine, older_than=WINDOW)
    assert (second.runs, second.finished) == (1, 1) and _staged(crm_url) == []


def test_drained_outbox_rows_older_than_the_window_go_and_pending_ones_stay(crm_url):
    migrate.migrate(crm_url)
    company_id = connected_company(crm_url, "Outbox Ltd")[0]

    def queue(record_id: int, state: str, days_ago: float | None) -> None:
        with db.begin(crm_url) as conn:
            when = db.bind_time(NOW - timedelta(days=days_ago or 30), conn.dialect.name)
            conn.execute(
                text(
                    "INSERT INTO crm_change_outbox (operating_company_id, record_type, record_id, created_at, "
                    "state, processed_at) VALUES (:c, 'sales_ledger', :r, :t, :s, :p)"
                ),
                {
                    "c": company_id,
                    "r": record_id,
                    "t": when,
                    "s": state,
                    "p": None if days_ago is None else when,
                },
            )

    queue(9001, "done", 20)  # pushed three weeks ago: goes
    queue(9002, "done", 1)  # pushed yesterday: inside the window
    queue(
        9003, "pending", None
    )  # a month-old edit still waiting (xero_crm_changes down): work, never deleted
    assert _prune(crm_url)["outbox_deleted"] == 1
    with db.begin(crm_url) as conn:
        left = conn.execute(
            text("SELECT record_id FROM crm_change_outbox WHERE record_id > 9000 ORDER BY record_id")
        ).scalars()
        assert left.all() == [9002, 9003]


def test_the_window_comes_from_the_environment_and_must_be_positive(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("XERO_STAGING_KEEP_DAYS", raising=False)
    assert retention.keep_staged() == timedelta(days=14)
    monkeypatch.setenv("XERO_STAGING_KEEP_DAYS", "2.5")
    assert retention.keep_staged() == timedelta(days=2, hours=12)
    for bad in ("0", "-1", "a week"):
        monkeypatch.setenv("XERO_STAGING_KEEP_DAYS", bad)
        with pytest.raises(Exception, match="XERO_STAGING_KEEP_DAYS must be"):
            retention.keep_staged()


def test_the_cli_prunes_and_says_what_it_did(crm_url, monkeypatch: pytest.MonkeyPatch, capsys):
    migrate.migrate(crm_url)
    connection_id = _connection(crm_url)
    long_ago = (
        datetime.now(UTC).replace(tzinfo=None) - NOW
    ).days + 30  # older than 7 days, whatever today is
    _import(crm_url, connection_id, "old", long_ago, [invoice(InvoiceID=A)])
    with db.begin(crm_url) as conn:
        conn.execute(text("DELETE FROM val_invoices"))
    monkeypatch.setenv("CRM_DATABASE_URL", crm_url)
    assert cli_main(["prune-staging", "--keep-days", "0"]) == 2
    assert "--keep-days must be more than 0" in capsys.readouterr().err
    assert cli_main(["prune-staging", "--keep-days", "7"]) == 0
    out = capsys.readouterr().out
    assert "1 looked at, 1 with nothing left; staged records deleted 1" in out
    assert _staged(crm_url) == []
