"""Set-up shared by the pipeline tests."""

from __future__ import annotations

from sqlalchemy import text

from xero_crm_sync import db, migrate


def connected_company(url: str, name: str) -> tuple[int, int]:
    """An operating company (seeded as the demo's) with an active primary Xero connection: (company, connection)."""
    with db.begin(url) as conn:
        company = migrate.seed_demo(conn, name)
        connection_id = conn.execute(
            text(
                "INSERT INTO xero_connection (operating_company_id, role, tenant_id, tenant_name, status) "
                "VALUES (:c, 'primary', 't-1', 'Org', 'active') RETURNING id"
            ),
            {"c": company},
        ).scalar_one()
    return company, connection_id
