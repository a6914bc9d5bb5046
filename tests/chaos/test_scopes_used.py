"""C1 / security: the connect command asks for only the scopes the integration uses. After the whole plan (two
imports, two pushes, the order outbox) every Accounting API call the sandbox received was allowed by the granular
scopes we ask for, and each of those scopes was the only one opening at least one of those calls."""

from __future__ import annotations

from pathlib import Path

from tests.chaos.conftest import SCENARIO
from tests.chaos.world import build_world, run_plan, sqlite_url
from xero_crm_sync.oauth import SCOPES
from xero_sandbox.scopes import accepted_scopes

API = "/api.xro/2.0"


def test_every_scope_asked_for_is_needed_and_enough(tmp_path: Path) -> None:
    world = build_world(SCENARIO, sqlite_url(tmp_path, "scopes"))
    try:
        world.sandbox.admin.clear_journal()
        run_plan(world)
        calls = {
            (entry["method"], entry["path"][len(API) :])
            for entry in world.sandbox.admin.journal()
            if entry["path"].startswith(API)
        }
    finally:
        world.close()
    assert {method for method, _ in calls} >= {"GET", "PUT", "POST"}  # the plan read and wrote

    granted = set(SCOPES["granular"]) - {"offline_access"}  # offline_access: the refresh token itself
    needed_by: dict[str, list[str]] = {}
    for method, path in sorted(calls):
        accepted = accepted_scopes(method, path) or frozenset()
        assert accepted & granted, f"{method} {path} needs one of {sorted(accepted)}"
        for scope in granted:
            if not accepted & (granted - {scope}):
                needed_by.setdefault(scope, []).append(f"{method} {path}")
    assert sorted(needed_by) == sorted(granted), f"asked for but never needed: {granted - needed_by.keys()}"
