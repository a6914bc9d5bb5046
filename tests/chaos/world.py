"""A demo world for the campaigns: a sandbox organisation, a connected CRM with work to push, and the plan of
DAG runs a routine day consists of. Everything is derived from a `Scenario` (seed and sizes), so two worlds of
the same scenario run the same plan to the same end state, faults or not.

The plan (each DAG run is its tasks in order, as Airflow runs them, 31 minutes after the last, so each starts by
refreshing its access token):

    xero_import  (first sync: everything)  ->  xero_push  ->  xero_order_invoices
    the accounts team edits Xero; sales edit the CRM (new and voided orders, a changed price)
    xero_import  (incremental)             ->  xero_push  ->  xero_order_invoices

`run_plan` runs it in this process with Airflow's semantics: a failed task is retried (same run id, the XCom of
the tasks before it) up to the DAG's retries, each retry logged; a DAG run whose task still fails is followed
by a new DAG run (new run id), as the next schedule would, at most `max_dag_runs` times.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import text

from tests.chaos import state
from tests.chaos.tasks import TaskEnv, TaskPolicy, dag_plan, run_task, runnable
from xero_crm_sync import db, migrate
from xero_crm_sync.connect import connect
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.oauth import AppCredentials
from xero_crm_sync.push.orders import confirm_order, void_order
from xero_crm_sync.settings import Settings
from xero_sandbox.clock import Clock
from xero_sandbox.idempotency import DEFAULT_WINDOW_SECONDS
from xero_sandbox.limits import LimitConfig
from xero_sandbox.server import SandboxServer
from xero_sandbox.signing import TokenSigner
from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET, SandboxConfig, build_state

log = logging.getLogger("tests.chaos")

COMPANY = "Chaos Trading Ltd"
# Xero's per-minute and concurrency limits on, over a one-second "minute" so a campaign is not slowed by minutes of
# waiting: the pipeline's shared limiter runs with the same window (tasks.FAST_LIMITS), so the sandbox should
# never have to refuse a call. The day is out of the way (tests of the daily limit set their own).
CHAOS_LIMITS = LimitConfig(minute=60, window_seconds=1.0, concurrent=5, day=10_000_000, app_minute=10_000_000)
# A retry after a failed task or a failed DAG run comes after Xero has forgotten its Idempotency-Keys (6 minutes):
# the pipeline must not rely on a key for anything but a quick retry inside one call.
PAST_THE_KEY_WINDOW = DEFAULT_WINDOW_SECONDS + 1
_SIGNER = TokenSigner()  # one RSA key for every sandbox of the process (generating one costs seconds)
# Every world of a test process generates its organisation as of the process's start. The generator dates records
# relative to its clock's day, so a reference world built before midnight UTC and a faulty one built after it
# differed by a day in every date (a `make test` that crossed midnight failed 8 chaos tests that way).
SESSION_START = datetime.now(UTC)


@dataclass(frozen=True)
class Scenario:
    seed: int = 11
    xero_contacts: int = 30  # generated organisation (invoices, payments, items scale with it)
    customers: int = 6  # new in the CRM, to be pushed
    products: int = 4
    orders: int = 3  # confirmed before the first push; one more confirmed, one voided, later
    xero_tenants: int = 1  # organisations the user may connect (the CRM connects the first as its primary)


@dataclass
class World:
    scenario: Scenario
    sandbox: SandboxServer
    crm_url: str
    env: TaskEnv
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> Any:
        return db.get_engine(self.crm_url)

    @property
    def org(self) -> Any:
        return self.sandbox.state.tenants[self.env.tenant_id].store

    def close(self) -> None:
        self.sandbox.stop()
        db.dispose_engine(self.crm_url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def crm_state(self) -> dict[str, list[str]]:
        return state.crm_state(self.engine, state.id_names(self.org))

    def xero_state(self) -> dict[str, list[str]]:
        return state.xero_state(self.org)


def build_world(scenario: Scenario, crm_url: str, policy: TaskPolicy | None = None) -> World:
    """Start the sandbox (thread mode, loopback, limits on a short window), migrate the CRM, connect it through OAuth2."""
    sandbox_state = build_state(
        seed=scenario.seed,
        contacts=scenario.xero_contacts,
        tenants=scenario.xero_tenants,
        limits=dataclasses.replace(CHAOS_LIMITS),  # its own: PUT /sandbox/limits changes the object in place
        config=SandboxConfig(auto_consent=True),
        signer=_SIGNER,
        journal_size=500_000,  # every request of a campaign stays visible (faults are counted from it)
        clock=Clock(start=SESSION_START),
    )
    sandbox = SandboxServer(sandbox_state).start()
    settings = Settings(sandbox.url, sandbox.url, sandbox.url, crm_url)
    migrate.migrate(crm_url)
    with db.begin(crm_url) as conn:
        migrate.seed_demo(conn, COMPANY)
    store = ConnectionStore(db.get_engine(crm_url))
    tenant = next(iter(sandbox_state.tenants.values()))
    with _env(settings):
        result = connect(
            store,
            settings,
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=COMPANY,
            role="primary",
            tenant=tenant.tenant_id,
            headless=True,
            announce=lambda _m: None,
        )
    env = TaskEnv(crm_url, settings, result.connection_id, tenant.tenant_id, policy or TaskPolicy())
    world = World(scenario, sandbox, crm_url, env)
    seed_crm(world)
    return world


def reconnect(world: World) -> None:
    """The user connects the organisation again (OAuth2, headless): the same connection row comes back."""
    with _env(world.env.settings):
        result = connect(
            world.env.store,
            world.env.settings,
            AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET),
            operating_company=COMPANY,
            role="primary",
            tenant=world.env.tenant_id,
            headless=True,
            announce=lambda _m: None,
        )
    assert result.connection_id == world.env.connection_id


@contextmanager
def _env(settings: Settings) -> Iterator[None]:
    """Some helpers read the Xero URLs from the environment: point them at this world's sandbox meanwhile."""
    urls = {
        "XERO_LOGIN_URL": settings.xero_login_url,
        "XERO_IDENTITY_URL": settings.xero_identity_url,
        "XERO_API_URL": settings.xero_api_url,
    }
    with mock.patch.dict(os.environ, urls):
        yield


# --- the CRM's own work: customers, products and orders sales entered --------------------------------------


def _insert(conn: Any, table: str, values: dict[str, Any]) -> int:
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return conn.execute(
        text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"),
        values,
    ).scalar_one()


def seed_crm(world: World) -> None:
    s = world.scenario
    with world.engine.begin() as conn:
        oc = conn.execute(
            text("SELECT id FROM operating_company WHERE name = :n"), {"n": COMPANY}
        ).scalar_one()
        world.ids["company"] = oc
        customers = []
        for i in range(s.customers):
            person = None
            if i % 2 == 0:
                person = _insert(
                    conn,
                    "contact",
                    {"operating_company_id": oc, "first_name": f"Pat{i}", "last_name": f"Chaos{s.seed}"},
                )
            customers.append(
                _insert(
                    conn,
                    "sales_ledger",
                    {
                        "operating_company_id": oc,
                        "name": f"Chaos Customer {s.seed}-{i:03d}",
                        "email": f"accounts{i}@chaos{s.seed}.example",
                        "currency_code": "NZD",
                        "tax_type": "OUTPUT2",
                        "phone": f"09 555 {1000 + i}",
                        "address_line1": f"{i + 1} Chaos St",
                        "city": "Auckland",
                        "contact_id": person,
                    },
                )
            )
        # Xero refuses this one: an unresolved error with its reason, the same in every run.
        world.ids["rejected"] = _insert(
            conn,
            "sales_ledger",
            {"operating_company_id": oc, "name": "Chaos Rejected Ltd", "email": "not-an-email"},
        )
        products = [
            _insert(
                conn,
                "product",
                {
                    "operating_company_id": oc,
                    "code": f"CHAOS-P{j:03d}",
                    "name": f"Chaos product {j}",
                    "description": f"Made for seed {s.seed}",
                    "sell_price": 10 + j + 0.1234,
                    "cost_price": 5 + j,
                    "sales_account_code": "200",
                    "sales_tax_type": "OUTPUT2",
                    "purchase_account_code": "300",
                },
            )
            for j in range(s.products)
        ]
        world.ids.update(customers=customers, products=products)
        orders = [_order(conn, world, k) for k in range(s.orders)]
        world.ids["orders"] = orders
        for order in orders:
            confirm_order(conn, order)


def _order(conn: Any, world: World, k: int) -> int:
    customers, products = world.ids["customers"], world.ids["products"]
    order = _insert(
        conn,
        "sales_order",
        {
            "operating_company_id": world.ids["company"],
            "sales_ledger_id": customers[k % len(customers)],
            "order_number": f"CHAOS-SO-{k}",
            "customer_reference": f"CHAOS-REF-{k}",
            "currency_code": "NZD",
            "delivery_charge": 10 if k % 2 else 0,
        },
    )
    lines = [
        {"product_id": products[k % len(products)], "quantity": 2, "unit_price": 12.5, "discount_rate": 10},
        {
            "description": f"Service {k}",
            "quantity": 1,
            "unit_price": 80,
            "account_code": "200",
            "tax_type": "OUTPUT2",
        },
    ]
    for number, line in enumerate(lines, start=1):
        conn.execute(
            text(
                f"INSERT INTO sales_order_line (sales_order_id, line_no, {', '.join(line)}) "
                f"VALUES (:o, :n, {', '.join(':' + c for c in line)})"
            ),
            {"o": order, "n": number, **line},
        )
    return order


# --- between the two cycles: people at work --------------------------------------------------------------------


def accounts_team_edits(world: World) -> None:
    """The accounts team in Xero (through the organisation's store: no API call, so no fault hits them)."""
    org = world.org
    # Contacts of the organisation itself, not the ones the push created (ContactNumber = a CRM id): an edit on
    # both sides of one record is a conflict, which the import settles for Xero (record by record).
    customers = sorted(
        (
            c
            for c in org.contacts.values()
            if c.get("IsCustomer")
            and c.get("ContactStatus") == "ACTIVE"
            and not str(c.get("ContactNumber") or "").isdigit()
        ),
        key=lambda c: c.get("ContactNumber") or c["Name"],
    )
    _write(org, "Contacts", {"ContactID": customers[0]["ContactID"], "ContactStatus": "ARCHIVED"})
    _write(org, "Contacts", {"ContactID": customers[1]["ContactID"], "EmailAddress": "changed@chaos.example"})
    authorised = sorted(
        (i for i in org.invoices.values() if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED"),
        key=lambda i: i["InvoiceNumber"],
    )
    _write(org, "Invoices", {"InvoiceID": authorised[0]["InvoiceID"], "Status": "VOIDED"})
    payment = {
        "Invoice": {"InvoiceID": authorised[1]["InvoiceID"]},
        "Account": {"Code": "090"},
        "Amount": round(float(authorised[1]["AmountDue"]) / 2, 2),
        "Date": "2026-11-20",
    }
    _write(org, "Payments", payment, method="PUT")
    world.ids.update(
        archived=customers[0]["ContactID"],
        email_changed=customers[1]["ContactID"],
        voided=authorised[0]["InvoiceID"],
        paid=authorised[1]["InvoiceID"],
    )


def _write(org: Any, entity: str, element: dict[str, Any], method: str = "POST") -> None:
    [result] = org.write(entity, [element], method=method)
    assert result.ok, result.errors


def sales_edits(world: World) -> None:
    """Sales in the CRM: a customer's phone, a product's price, a new order confirmed, the first order voided."""
    customers, products, orders = world.ids["customers"], world.ids["products"], world.ids["orders"]
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE sales_ledger SET phone = '09 999 0000' WHERE id = :i"), {"i": customers[0]})
        conn.execute(text("UPDATE product SET sell_price = 99.5 WHERE id = :i"), {"i": products[0]})
        late = _order(conn, world, len(orders))
        confirm_order(conn, late)
        void_order(conn, orders[0])
    world.ids["orders"] = [*orders, late]


# --- the plan -------------------------------------------------------------------------------------------------

Stage = tuple[str, str]  # (label, DAG id) or (label, "edits")

PLAN: tuple[Stage, ...] = (
    ("import-1", "xero_import"),
    ("push-1", "xero_push"),
    ("orders-1", "xero_order_invoices"),
    ("edits", "edits"),
    ("import-2", "xero_import"),
    ("push-2", "xero_push"),
    ("orders-2", "xero_order_invoices"),
)


class AbandonRun(Exception):
    """Raised by a task runner: this DAG run is failed as a whole (no task retry); a new DAG run follows."""


@dataclass
class PlanStats:
    task_runs: int = 0
    task_retries: int = 0  # Airflow retries of a failed task
    dag_reruns: int = 0  # new DAG runs after a DAG run failed
    failures: list[str] = field(default_factory=list)  # "stage/task: error", each one retried


# A hook the crash campaign uses: run this task another way (in a subprocess that dies). Returns the task's
# XCom result, or raises to count as a failed try.
TaskRunner = Callable[[str, str, str, dict[str, Any]], dict[str, Any]]


def in_process(world: World) -> TaskRunner:
    def run(stage: str, task: str, run_id: str, xcom: dict[str, Any]) -> dict[str, Any]:
        return run_task(task, world.env, run_id, xcom)

    return run


def run_dag(
    world: World,
    stage: str,
    dag_id: str,
    stats: PlanStats,
    *,
    runner: TaskRunner | None = None,
    max_dag_runs: int = 3,
) -> dict[str, Any]:
    """One DAG's run as Airflow would make it: tasks in order, failed ones retried, failed runs run again."""
    runner = runner or in_process(world)
    if not runnable(dag_id, world.env):
        return {}  # no mapped task: the run has nothing to do
    for attempt in range(1, max_dag_runs + 1):
        run_id = f"{stage}__{attempt}"
        xcom: dict[str, Any] = {}
        try:
            plan = dag_plan(dag_id)  # the real DAG's tasks, order and retries
            for task in plan.tasks:
                xcom[task] = _run_with_retries(
                    runner, stage, task, run_id, xcom, plan.retries[task], stats, lambda: _keys_expire(world)
                )
            return xcom
        except Exception as exc:  # the DAG run failed; the next schedule starts a new one
            if attempt == max_dag_runs:
                raise
            _keys_expire(world)
            stats.dag_reruns += 1
            log.warning("%s: DAG run %s failed (%s); a new DAG run follows", stage, run_id, exc)
    raise AssertionError("unreachable")


def _run_with_retries(
    runner: TaskRunner,
    stage: str,
    task: str,
    run_id: str,
    xcom: dict[str, Any],
    retries: int,
    stats: PlanStats,
    before_retry: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    for try_number in range(1, retries + 2):
        if try_number > 1:
            before_retry()
        stats.task_runs += 1
        try:
            return runner(stage, task, run_id, dict(xcom))
        except AbandonRun:
            stats.failures.append(f"{stage}/{task} try {try_number}: the DAG run was failed")
            raise
        except Exception as exc:
            stats.failures.append(f"{stage}/{task} try {try_number}: {type(exc).__name__}: {exc}"[:300])
            if try_number > retries:
                raise
            stats.task_retries += 1
            log.warning("%s/%s failed on try %d (%s); Airflow retries it", stage, task, try_number, exc)
    raise AssertionError("unreachable")


def _keys_expire(world: World) -> None:
    """Time passes before a retry: past Xero's Idempotency-Key window (what a retry delay, a zombie-task timeout or
    a night's outage does)."""
    world.sandbox.admin.advance_clock(PAST_THE_KEY_WINDOW)


def expire_access_token(world: World) -> None:
    """Move the sandbox clock 31 minutes: the DAG run that follows starts with an access token Xero considers
    expired, so every run exercises a token refresh (and the fault campaign's faults on the token endpoint)."""
    world.sandbox.admin.advance_clock(31 * 60)


def run_stage(
    world: World, stage: str, dag_id: str, stats: PlanStats, *, runner: TaskRunner | None = None
) -> dict[str, Any] | None:
    """One stage of the plan: the people's edits, or a DAG run (31 minutes after the last)."""
    if dag_id == "edits":
        accounts_team_edits(world)
        sales_edits(world)
        return None
    expire_access_token(world)
    return run_dag(world, stage, dag_id, stats, runner=runner)


def run_plan(
    world: World,
    stats: PlanStats | None = None,
    *,
    runner: TaskRunner | None = None,
    stages: tuple[Stage, ...] = PLAN,
) -> PlanStats:
    stats = stats or PlanStats()
    for stage, dag_id in stages:
        run_stage(world, stage, dag_id, stats, runner=runner)
    return stats


def plan_effects(world: World) -> list[str]:
    """What the plan is for, checked on its end state: each way it can silently do nothing is a problem here (a
    campaign comparing two runs that both did nothing would see no difference)."""
    problems: list[str] = []
    org, ids = world.org, world.ids
    rows = {r.id: r for r in _rows(world, "SELECT id, accounting_code, status FROM sales_ledger")}
    by_number = {c.get("ContactNumber"): c for c in org.contacts.values()}
    for customer in ids["customers"]:
        contact = by_number.get(str(customer))
        if contact is None or rows[customer].accounting_code != contact["ContactID"]:
            problems.append(f"customer {customer} is not in Xero, linked by its ContactNumber")
    if rows[ids["rejected"]].accounting_code is not None or not world.scalar(
        "SELECT COUNT(*) FROM sync_error WHERE record_id = :i AND status = 'open' AND xero_message LIKE '%mail%'",
        i=ids["rejected"],
    ):
        problems.append("the customer Xero refuses has no open error with Xero's message")
    first = by_number.get(str(ids["customers"][0])) or {}
    if [p.get("PhoneNumber") for p in first.get("Phones", []) if p.get("PhoneType") == "DEFAULT"] != [
        "09 999 0000"
    ]:
        problems.append("the phone sales changed did not reach Xero")
    item = next((i for i in org.items.values() if i["Code"] == "CHAOS-P000"), {})
    if item.get("SalesDetails", {}).get("UnitPrice") != 99.5:
        problems.append("the price sales changed did not reach Xero")
    invoices = [i for i in org.invoices.values() if str(i.get("Reference", "")).startswith("CHAOS-REF-")]
    for number, order in enumerate(ids["orders"]):
        mine = [i for i in invoices if i["Reference"] == f"CHAOS-REF-{number}"]
        wanted = "DELETED" if number == 0 else "DRAFT"  # the first order was voided after its invoice existed
        if [i["Status"] for i in mine] != [wanted]:
            problems.append(
                f"order {order}: Xero has {[i['Status'] for i in mine]}, not one {wanted} invoice"
            )
    ledger = {r.accounting_code: r for r in rows.values()}
    if getattr(ledger.get(ids["archived"]), "status", None) != "On Stop":
        problems.append("the contact archived in Xero is not On Stop in the CRM")
    if world.scalar("SELECT status FROM sales_invoice WHERE accounting_code = :x", x=ids["voided"]) != "D":
        problems.append("the invoice voided in Xero is not 'D' in the CRM")
    if not float(
        world.scalar("SELECT amount_paid FROM sales_invoice WHERE accounting_code = :x", x=ids["paid"]) or 0
    ):
        problems.append("the payment made in Xero did not reach the CRM")
    return problems


def _rows(world: World, sql: str) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(text(sql)))


def end_state(world: World) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    return world.crm_state(), world.xero_state()


@dataclass(frozen=True)
class Snapshot:
    """A world between two stages: the CRM (a SQLite copy), the sandbox's whole state, the world's notes."""

    scenario: Scenario
    crm_file: Path
    sandbox_state: bytes
    ids: dict[str, Any]
    connection_id: int
    tenant_id: str


def snapshot(world: World, path: Path) -> Snapshot:
    """Save the world as it is now (SQLite worlds only; the sandbox must be idle)."""
    import copy
    import pickle
    import sqlite3

    source = sqlite3.connect(db.make_url(world.crm_url).database)
    target = sqlite3.connect(path)
    with target:
        source.backup(target)  # consistent, WAL included
    source.close()
    target.close()
    return Snapshot(
        world.scenario,
        path,
        pickle.dumps(world.sandbox.state),
        copy.deepcopy(world.ids),
        world.env.connection_id,
        world.env.tenant_id,
    )


def restore(saved: Snapshot, crm_url: str, policy: TaskPolicy | None = None) -> World:
    """A new world (its own sandbox server and CRM file) exactly as the snapshot was: later stages run in it as
    they would have in the original."""
    import copy
    import pickle
    import sqlite3

    source = sqlite3.connect(saved.crm_file)
    target = sqlite3.connect(db.make_url(crm_url).database)
    with target:
        source.backup(target)
    source.close()
    target.close()
    sandbox = SandboxServer(pickle.loads(saved.sandbox_state)).start()
    settings = Settings(sandbox.url, sandbox.url, sandbox.url, crm_url)
    env = TaskEnv(crm_url, settings, saved.connection_id, saved.tenant_id, policy or TaskPolicy())
    return World(saved.scenario, sandbox, crm_url, env, copy.deepcopy(saved.ids))


def sqlite_url(directory: Path, name: str) -> str:
    return f"sqlite:///{directory / f'{name}.db'}"
