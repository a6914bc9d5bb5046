"""One uninterrupted, fault-free run of the demo plan per session (SQLite): the state the fault and crash
campaigns must end in, and the crash points each task passes."""

from __future__ import annotations

import pytest

from tests.chaos import crashes
from tests.chaos.world import Scenario, sqlite_url

SCENARIO = Scenario(seed=11, xero_contacts=20, customers=6, products=4, orders=3)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> crashes.Reference:
    observed = crashes.observe_reference(SCENARIO, sqlite_url(tmp_path_factory.mktemp("chaos"), "reference"))
    assert observed.effects == []  # the plan does what it is for (else two equal runs would prove little)
    return observed
