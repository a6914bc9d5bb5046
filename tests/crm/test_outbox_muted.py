"""The import's load queues nothing in the CRM-change outbox (what it writes is what Xero holds), while every other
writer, a CRM edit committed beside a running load or after it on the same pooled connection included, still
queues its row (migration 0320, webhooks/outbox.py `muted`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from xero_crm_sync import crashpoints
from xero_crm_sync.webhooks import outbox

from .helpers import contact, item


def _queued(crm) -> list[tuple[str, int]]:
    return [
        (r["record_type"], r["record_id"])
        for r in crm.rows(
            "SELECT record_type, record_id FROM crm_change_outbox WHERE operating_company_id = :company_id "
            "ORDER BY id"
        )
    ]


def _seen_muted(conn) -> bool:
    """Whether `conn` sees the outbox muted: PostgreSQL's setting, SQLite's row (webhooks/outbox.py, `muted`)."""
    if conn.dialect.name == "postgresql":
        return (
            conn.execute(text("SELECT current_setting('xero_crm_sync.outbox_muted', true)")).scalar() == "on"
        )
    return conn.execute(text("SELECT COUNT(*) FROM crm_change_outbox_muted")).scalar() > 0


def _muted_left(crm) -> bool:
    with crm.engine.connect() as conn:
        return _seen_muted(conn)


def _records() -> dict[str, list]:
    return {
        "contacts": [
            contact("acme", "Acme Ltd", FirstName="Ann", LastName="Acme"),
            contact("beta", "Beta Ltd"),
        ],
        "items": [item("WIDGET")],
    }


def test_the_load_queues_nothing_and_crm_edits_after_it_still_do(crm):
    crm.settings(default_account_manager_id=crm.manager_id, missing_records_mode="all")
    counts = crm.run(_records())
    acme = crm.ledger("acme")
    # New customers and a product, each customer then linked to the company, division and contact created for it
    # (060): every one of those writes used to queue a row.
    assert counts["sales_ledgers"] == 2 and counts["products"] == 1 and acme["contact_id"] is not None
    assert _queued(crm) == [] and not _muted_left(crm)
    # A later change in Xero, imported: still nothing queued.
    crm.run({"contacts": [contact("acme", "Acme Renamed Ltd", FirstName="Ann", LastName="Acme")]})
    assert crm.ledger("acme")["name"] == "Acme Renamed Ltd" and _queued(crm) == []

    # A CRM user's edit and new product, committed after the load: queued as before.
    crm.execute("UPDATE sales_ledger SET email = 'crm@acme.test' WHERE id = :id", id=acme["id"])
    crm.execute(
        "INSERT INTO product (operating_company_id, code, name) VALUES (:company_id, 'CRM-ONLY', 'Crm only')"
    )
    product_id = crm.scalar(
        "SELECT id FROM product WHERE operating_company_id = :company_id AND code = 'CRM-ONLY'"
    )
    assert _queued(crm) == [("sales_ledger", acme["id"]), ("product", product_id)]


def test_a_load_that_fails_leaves_the_outbox_live(crm):
    crm.settings(default_account_manager_id=crm.manager_id)

    def fail_at_a_step(point: str) -> None:
        if point == "load.step":
            raise RuntimeError("the database went away mid-load")

    with crashpoints.observe(fail_at_a_step), pytest.raises(RuntimeError, match="went away"):
        crm.run(_records())
    assert not _muted_left(crm)  # rolled back with the load
    crm.execute(
        "INSERT INTO sales_ledger (operating_company_id, name) VALUES (:company_id, 'Typed in the CRM')"
    )
    assert [kind for kind, _ in _queued(crm)] == ["sales_ledger"]


def test_a_crm_edit_committed_beside_a_running_load_is_queued(crm):
    crm.settings(default_account_manager_id=crm.manager_id)
    crm.run(_records())
    acme = crm.ledger("acme")
    with crm.engine.connect() as load:
        with load.begin(), outbox.muted(load, "a-load"):
            load.execute(
                text("UPDATE sales_ledger SET phone = '01 234' WHERE id = :id"),
                {"id": crm.ledger("beta")["id"]},
            )
            # The load's transaction is muted (its own update above queued nothing), and no other connection sees it...
            assert _seen_muted(load)
            with crm.engine.connect() as other:
                assert not _seen_muted(other)
            # ...so a CRM edit committed meanwhile queues its row (PostgreSQL; SQLite has one writer at a time,
            # so there the edit waits for the load to commit).
            if crm.engine.dialect.name == "postgresql":
                crm.execute(
                    "UPDATE sales_ledger SET email = 'beside@acme.test' WHERE id = :id", id=acme["id"]
                )
    if crm.engine.dialect.name == "sqlite":
        crm.execute("UPDATE sales_ledger SET email = 'beside@acme.test' WHERE id = :id", id=acme["id"])
    assert _queued(crm) == [("sales_ledger", acme["id"])] and not _muted_left(crm)
