"""Disconnect (C5) from both sides, and reconnect: revocation in Xero is detected at the next refresh or health
check and flags the connection; a disconnect from the CRM revokes at Xero, stops the DAGs, keeps CRM data."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.connections.conftest import COMPANY, Connected
from xero_crm_sync import health
from xero_crm_sync.disconnect import DisconnectError, disconnect
from xero_crm_sync.import_run import connections_to_run


def _xero_connection_id(env: Connected, tenant_id: str) -> str:
    return next(c["id"] for c in env.sandbox.admin.connections() if c["tenantId"] == tenant_id)


def _check(env: Connected, role: str, **kwargs) -> health.HealthResult:
    return health.check_connection(env.store, env.store.get(env.ids[role]), env.settings, **kwargs)


def test_revoked_in_xero_is_detected_at_the_next_refresh_and_reconnect_revives_it(one_org: Connected):
    """The user disconnects the app in Xero (their only organisation): the grant ends, the next refresh gets
    invalid_grant, the connection asks for a reconnect and DAGs skip it; `connect` again brings the same
    connection back, with its history."""
    connection_id = one_org.ids["primary"]
    one_org.sandbox.admin.disconnect(_xero_connection_id(one_org, one_org.tenants["primary"]))
    result = _check(one_org, "primary", refresh_ahead=3600)
    assert result.outcome == "reconnect_required" and result.newly_broken
    row = one_org.row(connection_id)
    assert row["status"] == "needs_reconnect" and "revoked in Xero" in row["last_error"]
    assert connections_to_run(one_org.store) == []
    assert _check(one_org, "primary").outcome == "skipped"

    assert one_org.connect("primary", 0) == connection_id
    row = one_org.row(connection_id)
    assert (row["status"], row["health"], row["last_error"]) == ("active", "ok", None)
    assert _check(one_org, "primary", refresh_ahead=3600).outcome == "ok"
    assert [c["id"] for c in connections_to_run(one_org.store)] == [connection_id]


def test_an_organisation_disconnected_in_xero_is_flagged_disconnected(two_orgs: Connected):
    """The same user still has the secondary connected, so Xero keeps the grant alive: the health check sees
    the primary's organisation gone from /connections and flags it disconnected (by Xero); the secondary is
    untouched."""
    two_orgs.sandbox.admin.disconnect(_xero_connection_id(two_orgs, two_orgs.tenants["primary"]))
    result = _check(two_orgs, "primary")
    assert result.outcome == "tenant_missing" and result.status == "disconnected"
    row = two_orgs.row(two_orgs.ids["primary"])
    assert (row["status"], row["disconnected_by"], row["token_blob"]) == ("disconnected", "xero", None)
    assert "disconnected in Xero" in row["last_error"]
    assert _check(two_orgs, "secondary").outcome == "ok"
    assert [c["role"] for c in connections_to_run(two_orgs.store)] == ["secondary"]
    assert two_orgs.connect("primary", 0) == two_orgs.ids["primary"]  # revived where it left off


def test_disconnect_from_the_crm_revokes_at_xero_and_keeps_crm_data(one_org: Connected):
    connection_id = one_org.ids["primary"]
    refresh_token = one_org.stored_token(connection_id)["refresh_token"]
    with one_org.engine.begin() as conn:  # a record the import linked to this organisation, and its history
        company = one_org.row(connection_id)["operating_company_id"]
        conn.execute(
            text(
                "INSERT INTO sync_watermark (connection_id, entity, records_read) VALUES (:c, 'contacts', 7)"
            ),
            {"c": connection_id},
        )
    result = disconnect(one_org.store, one_org.settings, connection_id, by_user="alice")
    assert result.removed_at_xero and result.token_revoked
    assert one_org.sandbox.admin.connections() == []  # gone at Xero
    assert one_org.sandbox.state.identity.grants[
        one_org.sandbox.state.identity.refresh_tokens[refresh_token].grant_id
    ].revoked
    row = one_org.row(connection_id)
    assert (row["status"], row["disconnected_by"], row["token_blob"]) == ("disconnected", "crm", None)
    assert row["last_error"] == "disconnected from the CRM by alice"
    assert connections_to_run(one_org.store) == []
    with one_org.engine.connect() as conn:
        assert conn.execute(text("SELECT records_read FROM sync_watermark")).scalar() == 7
        assert conn.execute(
            text("SELECT COUNT(*) FROM operating_company WHERE id = :c"), {"c": company}
        ).scalar()
    with pytest.raises(DisconnectError, match="already disconnected"):
        disconnect(one_org.store, one_org.settings, connection_id)


def test_disconnecting_the_primary_leaves_the_secondary_connected(two_orgs: Connected):
    """Xero's revocation would end every connection of the same user and app: with the secondary still using
    one, only the primary's organisation is removed at Xero and its token is deleted, not revoked."""
    result = disconnect(two_orgs.store, two_orgs.settings, two_orgs.ids["primary"])
    assert result.removed_at_xero and not result.token_revoked
    assert "share its Xero user and app" in result.notes[0]
    assert {c["tenantId"] for c in two_orgs.sandbox.admin.connections()} == {two_orgs.tenants["secondary"]}
    assert _check(two_orgs, "secondary", refresh_ahead=3600).outcome == "ok"
    # The operating company may now connect another primary.
    assert two_orgs.connect("primary", 0) == two_orgs.ids["primary"]


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_disconnect_when_xero_is_unreachable_changes_nothing_unless_forced(one_org: Connected):
    connection_id = one_org.ids["primary"]
    one_org.sandbox.admin.add_fault("503", target="connections", count=1)
    with pytest.raises(DisconnectError, match="nothing was changed"):
        disconnect(one_org.store, one_org.settings, connection_id)
    assert one_org.row(connection_id)["status"] == "active"
    one_org.sandbox.admin.add_fault("503", target="connections", count=1)
    result = disconnect(one_org.store, one_org.settings, connection_id, force=True)
    assert "Settings > Connected Apps" in result.notes[0]
    assert one_org.row(connection_id)["status"] == "disconnected"


@pytest.mark.parametrize("crm_db", ["sqlite"], indirect=True)  # the flow, not the database, is under test
def test_the_cli_disconnects_by_company_and_role(one_org: Connected, monkeypatch, capsys):
    from xero_crm_sync import cli

    monkeypatch.setenv("CRM_DATABASE_URL", one_org.url)
    code = cli.main(["disconnect", "--operating-company", COMPANY, "--role", "primary", "--yes"])
    assert code == 0
    assert "refresh token revoked: yes" in capsys.readouterr().out
    assert cli.main(["disconnect", "--operating-company", COMPANY, "--yes"]) == 2
    assert "has no connected primary organisation" in capsys.readouterr().err
