"""One benchmark scenario: one organisation size on one database, in this process, start to finish.

    sandbox (own process, limits off)  ->  fresh CRM database, connected through OAuth2
    full import            extract | stage | validate | transform and load
    incremental, nothing changed
    1% of contacts and invoices changed in Xero  ->  incremental
    push with nothing changed in the CRM
    1% of customers and products changed in the CRM  ->  push (diff | send)

Every stage reports wall and CPU seconds of this process, records and records a second, peak RSS; every run
reports the API calls it used against the fewest possible, the sandbox's CPU (its process) and, on PostgreSQL,
the database server's CPU for our database. Run it in a fresh process (bench.run does) so that peak memory and
one-off start-up costs belong to this scenario alone.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import changes
from bench.databases import backend_pids, fresh_database
from bench.instrument import instrumented
from bench.measure import MIB, ProcessCpu, RssSampler, StageClock, cpu_seconds

COMPANY = "Bench Trading Ltd"
# The client's own pacing (60 calls a minute) would make the figures measure sleeping; the sandbox runs with
# its limits off too. Call counts are what the targets are about, and those do not depend on pacing.
UNPACED = {
    "calls_per_minute": 1_000_000,
    "concurrent": 5,
    "calls_per_day": 1_000_000_000,
    "app_calls_per_minute": 1_000_000_000,
}


@dataclass
class RunReport:
    """One import or push run."""

    kind: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0
    fewest: int = 0
    records: int = 0
    rows: int = 0  # records plus their lines
    changed: int = 0
    xero_wait: float = 0.0
    sandbox_cpu: float = 0.0
    db_cpu: float | None = None
    peak_rss_mb: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return sum(s["wall"] for s in self.stages.values())

    @property
    def cpu(self) -> float:
        return sum(s["cpu"] for s in self.stages.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stages": self.stages,
            "wall": round(self.wall, 3),
            "cpu": round(self.cpu, 3),
            # Our own time: the run's wall time minus the time spent waiting for the sandbox's answers.
            "own_wall": round(self.wall - self.xero_wait, 3),
            "xero_wait": round(self.xero_wait, 3),
            "calls": self.calls,
            "fewest": self.fewest,
            "records": self.records,
            "rows": self.rows,
            "changed": self.changed,
            "sandbox_cpu": round(self.sandbox_cpu, 3),
            "db_cpu": None if self.db_cpu is None else round(self.db_cpu, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "detail": self.detail,
        }


def _stage(wall: float, cpu: float, records: int, peak_rss: int, rows: int | None = None) -> dict[str, Any]:
    """One stage's figures. `records` are Xero records (an invoice is one); `rows` are the table rows written
    for them (an invoice and its lines), which is what bulk-write throughput is about."""
    rows = records if rows is None else rows
    return {
        "wall": round(wall, 3),
        "cpu": round(cpu, 3),
        "records": records,
        "records_per_second": round(records / wall) if wall > 0 else None,
        "rows": rows,
        "rows_per_second": round(rows / wall) if wall > 0 else None,
        "peak_rss_mb": round(peak_rss / MIB, 1),
    }


class Scenario:
    def __init__(self, contacts: int, database: str, *, seed: int = 1, scratch: Path) -> None:
        self.contacts = contacts
        self.database = database
        self.seed = seed
        self.scratch = scratch
        self.rss = RssSampler()
        self.sandbox_pid = 0
        self.last_import_at: datetime | None = None
        self.db_cpu: ProcessCpu | None = None

    # --- measuring --------------------------------------------------------------------------------------

    def _timed(self, func: Callable[[], Any]) -> tuple[Any, float, float, int]:
        self.rss.reset()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        value = func()
        return value, time.perf_counter() - wall0, time.process_time() - cpu0, self.rss.peak()

    def _begin_run(self, kind: str) -> tuple[RunReport, float]:
        if self.db_cpu is not None:
            self.db_cpu.mark()
        return RunReport(kind=kind), cpu_seconds([self.sandbox_pid])

    def _server_figures(self, since: datetime | None) -> dict[str, Any]:
        """The sandbox's counts for this organisation: GETs per entity so far, and records changed since `since`."""
        from xero_crm_sync import summary

        tenant_id = self.info.tenant_id
        counters = self.admin.counters(tenant_id).get(tenant_id, {}).get("endpoints", {})
        modified_since = since.strftime("%Y-%m-%dT%H:%M:%S") if since else None
        held = self.admin.records(tenant_id, modified_since)[tenant_id]
        return summary.server_import_figures(counters, held)

    def _fewest_held(self, full: bool) -> dict[str, int]:
        """Per entity, the records the sandbox holds that the fewest-calls read must return.

        A full read returns them all. An incremental read can ask for no later If-Modified-Since than the newest
        UpdatedDateUTC the client has seen (its watermark: Xero's clock, never ours), and Xero answers with every
        record updated at or after that second (sandbox `wire.parse_if_modified_since`): the records stamped in
        the watermark's own second come back every time, because one changed later in that second could not be
        told apart. Counting only what changed since the previous run *began* (our clock) left them out, and the
        1%-changed run at 100,000 contacts showed 13 calls against 11 "fewest" when 300 invoices sat in that
        second and tipped the read over a page boundary.
        """
        from xero_crm_sync import import_run
        from xero_crm_sync.entities import BY_NAME

        marks: dict[str, tuple[datetime | None, datetime | None]] = {}
        if not full:
            with self.engine.connect() as conn:
                marks = import_run.watermarks(conn, self.info.id)
        held: dict[str, int] = {}
        answers: dict[str | None, dict[str, Any]] = {}
        for name, entity in BY_NAME.items():
            mark = marks.get(name, (None, None))[0]
            since = mark.strftime("%Y-%m-%dT%H:%M:%S") if mark is not None else None
            if since not in answers:
                tenant_id = self.info.tenant_id
                answers[since] = self.admin.records(tenant_id, since)[tenant_id]
            held[name] = answers[since].get(entity.path, {}).get("held", 0)
        return held

    def _server_calls(self) -> int:
        """Every API call the sandbox has counted for this organisation so far."""
        tenant_id = self.info.tenant_id
        endpoints = self.admin.counters(tenant_id).get(tenant_id, {}).get("endpoints", {})
        return sum(item.get("calls", 0) for item in endpoints.values())

    def _end_run(self, report: RunReport, sandbox_before: float) -> RunReport:
        report.sandbox_cpu = cpu_seconds([self.sandbox_pid]) - sandbox_before
        if self.db_cpu is not None:
            report.db_cpu = self.db_cpu.since_mark()
        report.peak_rss_mb = max((s["peak_rss_mb"] for s in report.stages.values()), default=0.0)
        return report

    # --- the runs ---------------------------------------------------------------------------------------

    def import_run(self, kind: str, run_id: str, *, full: bool) -> RunReport:
        from xero_crm_sync import import_run, summary
        from xero_crm_sync.xero_client import Limits

        report, sandbox_before = self._begin_run(kind)
        # What changed in Xero since the previous import began (the sandbox's own answer), and what the fewest
        # possible calls must read: see `_fewest_held`.
        since, self.last_import_at = (None if full else self.last_import_at), datetime.now(UTC)
        counted_before = self._server_figures(since)
        fewest_held = self._fewest_held(full)
        clock = StageClock()
        with instrumented(clock):
            extracted, wall, cpu, peak = self._timed(
                lambda: import_run.extract(
                    self.engine, self.store, self.info, run_id, full=full, limits=Limits(**UNPACED)
                )
            )
        result = extracted.as_dict()
        records = sum(e["records"] for e in result["entities"].values())
        stage = clock.get("stage")
        rows = records + clock.counts.get("line_rows", 0)
        # Extract validates each entity as soon as it is read (while the next is read): that time is validation's;
        # and it loads ahead the steps whose entities are all read: that time is the load's (on PostgreSQL it ran
        # on a thread beside staging, so extract's remainder is what is left of the wall time once both are out).
        early, ahead = clock.get("validate"), clock.get("load_ahead")
        report.stages["extract"] = _stage(
            max(0.0, wall - stage.wall - early.wall - ahead.wall),
            max(0.0, cpu - stage.cpu - early.cpu - ahead.cpu),
            records,
            peak,
        )
        report.stages["stage"] = _stage(stage.wall, stage.cpu, records, peak, rows)
        # Pages are read ahead on a thread (import_run's ReadAhead): the HTTP time overlaps staging. What counts
        # as waiting for Xero is the time extract sat blocked on the next page with nothing of its own to do.
        report.xero_wait = sum(e.get("waited", 0.0) for e in result["entities"].values())
        report.stages["extract"]["xero_wait"] = round(report.xero_wait, 3)
        report.stages["extract"]["xero_call_seconds"] = round(clock.get("xero_wait").wall, 3)

        validated, wall, cpu, peak = self._timed(lambda: import_run.validate(self.engine, result))
        checked = sum(r["checked"] for r in validated["entities"].values())
        report.stages["validate"] = _stage(wall + early.wall, cpu + early.cpu, checked, peak)
        loaded, wall, cpu, peak = self._timed(lambda: import_run.load(self.engine, result, full=full))
        report.stages["load"] = _stage(wall + ahead.wall, cpu + ahead.cpu, records, peak, rows)
        report.detail["loaded_ahead_seconds"] = round(ahead.wall, 3)

        # Calls and the fewest possible as the sandbox counts them, never as the client reports them.
        counted = self._server_figures(since)["entities"]
        before = counted_before["entities"]
        report.calls = sum(counted[e]["calls"] - before[e]["calls"] for e in result["entities"])
        report.fewest = summary.fewest_calls({e: {"records": fewest_held[e]} for e in result["entities"]})
        report.detail["changed_since_previous_import"] = {e: counted[e]["held"] for e in result["entities"]}
        report.detail["client_calls"] = result["calls"]
        report.records = records
        report.rows = rows
        report.detail |= {
            "status": loaded["status"],
            "quarantined": sum(r["quarantined"] for r in validated["entities"].values()),
            # Whether any entity went through the GX suite (a run of unchanged records needs none).
            "gx_used": any(r["expectations"] for r in validated["entities"].values()),
            "entities": {
                name: {"mode": e["mode"], "records": e["records"], "calls": e["calls"]}
                for name, e in result["entities"].items()
            },
        }
        if loaded["status"] != "success":
            raise RuntimeError(f"{kind} import ended {loaded['status']}: {result.get('stopped')}")
        return self._end_run(report, sandbox_before)

    def push_run(self, kind: str, run_id: str) -> RunReport:
        from xero_crm_sync import xero_access
        from xero_crm_sync.push import run as push
        from xero_crm_sync.xero_client import Limits

        report, sandbox_before = self._begin_run(kind)
        client = xero_access.make_client(self.store, self.info, self.settings, limits=Limits(**UNPACED))
        clock = StageClock()

        def both() -> list[Any]:
            return [
                push.push_customers(self.engine, client, self.info, run_id),
                push.push_products(self.engine, client, self.info, run_id),
            ]

        calls_before = self._server_calls()
        with instrumented(clock):
            summaries, wall, cpu, peak = self._timed(both)
        diff = clock.get("push_diff")
        changed = sum(s.changed for s in summaries)
        report.stages["push_diff"] = _stage(diff.wall, diff.cpu, changed, peak)
        report.stages["push"] = _stage(wall - diff.wall, cpu - diff.cpu, changed, peak)
        report.xero_wait = clock.get("xero_wait").wall
        report.stages["push"]["xero_wait"] = round(report.xero_wait, 3)
        report.calls = self._server_calls() - calls_before  # as the sandbox counted them
        # The fewest calls for a push of updates: one batch of at most 50 per record type.
        report.fewest = sum(math.ceil(s.changed / 50) for s in summaries)
        report.records = report.changed = changed
        report.detail = {s.record_type: s.as_dict() for s in summaries}
        stopped = [s.stopped for s in summaries if s.stopped]
        if stopped:
            raise RuntimeError(f"{kind} push stopped: {stopped}")
        return self._end_run(report, sandbox_before)

    # --- the whole scenario -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from xero_sandbox.limits import LimitConfig
        from xero_sandbox.server import SandboxServer

        self.rss.start()
        out: dict[str, Any] = {"contacts": self.contacts, "database": self.database, "seed": self.seed}
        started = time.perf_counter()
        try:
            with (
                SandboxServer(
                    mode="subprocess",
                    seed=self.seed,
                    contacts=self.contacts,
                    limits=LimitConfig(enabled=False),
                    auto_consent=True,
                    startup_timeout=900,  # generating 100,000 contacts takes minutes on shared cores
                ) as sandbox,
                fresh_database(self.database, self.scratch) as url,
            ):
                out["sandbox_start_seconds"] = round(time.perf_counter() - started, 2)
                self.sandbox_pid = _sandbox_pid()
                self._prepare(sandbox, url)
                out["gx_startup_seconds"] = self._gx_startup()
                runs = out["runs"] = {}
                runs["full"] = self.import_run("full", "bench-full", full=True).as_dict()
                out["organisation"] = {
                    name: e["records"] for name, e in runs["full"]["detail"]["entities"].items()
                }
                out["organisation"]["line_rows"] = runs["full"]["rows"] - runs["full"]["records"]
                runs["incremental_unchanged"] = self.import_run(
                    "incremental_unchanged", "bench-incr-0", full=False
                ).as_dict()
                tenant_id = self.info.tenant_id
                with changes.AccountsTeam(sandbox.url, tenant_id) as team:
                    made = changes.change_xero(self.engine, self.info.id, team, "bench")
                report = self.import_run("incremental_1pct", "bench-incr-1", full=False)
                report.changed = made.total
                runs["incremental_1pct"] = report.as_dict()
                runs["push_unchanged"] = self.push_run("push_unchanged", "bench-push-0").as_dict()
                crm = changes.change_crm(self.engine, self.info.operating_company_id, "bench")
                report = self.push_run("push_1pct", "bench-push-1")
                report.detail["crm_changes"] = {"customers": crm.customers, "products": crm.products}
                runs["push_1pct"] = report.as_dict()
        finally:
            self.rss.stop()
        out["process_peak_rss_mb"] = round(_max_rss_bytes() / MIB, 1)
        out["scenario_seconds"] = round(time.perf_counter() - started, 1)
        return out

    def _prepare(self, sandbox: Any, url: str) -> None:
        from xero_crm_sync import db, migrate
        from xero_crm_sync.connect import connect
        from xero_crm_sync.connections import ConnectionStore
        from xero_crm_sync.oauth import AppCredentials
        from xero_crm_sync.settings import get_settings
        from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

        os.environ.update(sandbox.env())
        os.environ["CRM_DATABASE_URL"] = url
        self.admin = sandbox.admin
        migrate.migrate(url)
        with db.begin(url) as conn:
            migrate.seed_demo(conn, COMPANY)
        self.engine = db.get_engine(url)
        self.settings = get_settings()
        self.store = ConnectionStore(self.engine)
        tenant = sandbox.admin.tenants()[0]
        result = connect(
            self.store,
            self.settings,
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=COMPANY,
            role="primary",
            tenant=tenant["tenantId"],
            headless=True,
            announce=lambda _m: None,
        )
        self.info = self.store.get(result.connection_id)
        if self.database == "postgresql":
            self.db_cpu = ProcessCpu(lambda: backend_pids(url))

    @staticmethod
    def _gx_startup() -> float:
        """Great Expectations' import and context: paid once per process, reported apart from per-record work."""
        from xero_crm_sync import validation

        started = time.perf_counter()
        validation._context()
        return round(time.perf_counter() - started, 2)


def _sandbox_pid() -> int:
    for child in psutil.Process().children(recursive=True):
        try:
            if "xero_sandbox" in " ".join(child.cmdline()):
                return child.pid
        except psutil.Error:
            continue
    raise RuntimeError("cannot find the sandbox process")


def _max_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
