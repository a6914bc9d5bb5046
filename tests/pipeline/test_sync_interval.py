"""S9: scheduled imports honour each operating company's sync interval; manual runs always go."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from tests.pipeline.helpers import connected_company
from xero_crm_sync import company_settings, db, import_run, migrate
from xero_crm_sync.connections import ConnectionStore, utcnow


def test_scheduled_runs_wait_for_the_company_interval(crm_url):
    migrate.migrate(crm_url)
    now = utcnow()
    company, connection_id = connected_company(crm_url, "Interval Ltd")
    with db.begin(crm_url) as conn:
        company_settings.set_company_settings(conn, company, sync_interval_minutes=30)
    store = ConnectionStore(db.get_engine(crm_url))

    def ids(**kwargs):
        return [c["id"] for c in import_run.connections_to_run(store, now=now, **kwargs)]

    assert ids(respect_interval=True) == [connection_id], "never imported: due"
    with db.begin(crm_url) as conn:
        conn.execute(
            text(
                "INSERT INTO sync_run (run_id, connection_id, kind, started_at) VALUES ('r1', :c, 'import', :t)"
            ),
            {"c": connection_id, "t": now - timedelta(minutes=10)},
        )
    assert ids(respect_interval=True) == [], "10 minutes into a 30-minute interval: wait"
    assert ids() == [connection_id], "a manual run always goes"
    with db.begin(crm_url) as conn:
        company_settings.set_company_settings(conn, company, sync_interval_minutes=5)
    assert ids(respect_interval=True) == [connection_id]
