"""Fixtures for the CRM tests: one migrated database per test module (SQLite and PostgreSQL), and a fresh
operating company with its own primary Xero connection and users per test, so tests never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from xero_crm_sync import db, migrate

from .helpers import Crm


@pytest.fixture(scope="module")
def migrated_url(crm_url_module: str) -> Iterator[str]:
    migrate.migrate(crm_url_module)
    yield crm_url_module
    db.dispose_engine(crm_url_module)


def new_company(url: str) -> Crm:
    tag = uuid.uuid4().hex[:8]
    engine = db.get_engine(url)
    with engine.begin() as conn:
        company_id = conn.execute(
            text("INSERT INTO operating_company (name) VALUES (:n) RETURNING id"), {"n": f"Company {tag}"}
        ).scalar_one()
        manager_id = conn.execute(
            text("INSERT INTO crm_user (operating_company_id, name) VALUES (:c, 'Alice') RETURNING id"),
            {"c": company_id},
        ).scalar_one()
        connection_id = conn.execute(
            text(
                "INSERT INTO xero_connection (operating_company_id, role, tenant_id, tenant_name)"
                " VALUES (:c, 'primary', :t, 'Primary org') RETURNING id"
            ),
            {"c": company_id, "t": f"tenant-1-{tag}"},
        ).scalar_one()
    return Crm(
        engine=engine, company_id=company_id, connection_id=connection_id, manager_id=manager_id, tag=tag
    )


@pytest.fixture
def crm(migrated_url: str) -> Crm:
    return new_company(migrated_url)
