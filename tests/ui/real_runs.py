"""A CRM database written by real runs: `dag.test()` of xero_import (full, then incremental) against the sandbox
over HTTP, so the status page is tested on what the pipeline writes, not only on hand-seeded rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tests.e2e.conftest import NO_LIMITS, build_pipeline
from xero_sandbox.server import SandboxServer

CONTACTS = 40


@dataclass
class RealRuns:
    url: str
    engine: Engine
    connection_id: int
    tenant_name: str
    run_ids: list[str]


def run_real_syncs(url: str) -> RealRuns:
    with SandboxServer(seed=3, contacts=CONTACTS, tenants=1, limits=NO_LIMITS) as sandbox:
        pipeline = build_pipeline(url, sandbox)
        connection_id = pipeline.connections["primary"]
        run_ids = [
            pipeline.run_import(mode="full", connection_id=connection_id).run_id,
            pipeline.run_import(connection_id=connection_id).run_id,
        ]
        tenant_name = pipeline.scalar(
            "SELECT tenant_name FROM xero_connection WHERE id = :c", c=connection_id
        )
    return RealRuns(url, pipeline.engine, connection_id, tenant_name, run_ids)
