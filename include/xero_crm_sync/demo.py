"""`make run`: a full sync cycle on the embedded default (SQLite) against the local sandbox, then a summary.

1. A fresh demo CRM database (`var/demo/crm.db`; `--keep` keeps the last one), migrated and seeded with one
   operating company.
2. The sandbox with two demo organisations (a primary and a secondary), auto-consent on.
3. Both organisations connected through the real OAuth2 flow (authorization code + PKCE, headless).
4. `airflow dags test xero_import`: a real Airflow run of the DAG (its log goes to `var/demo/airflow-*.log`).
5. Sales staff work in the CRM: a new customer, a new product, a price change, and a confirmed order.
6. `airflow dags test xero_push` and `xero_order_invoices`: only those changes go to Xero; the order becomes a
   Draft invoice.
7. The summary: rows per CRM table, quarantined records with reasons, API calls used against the fewest possible,
   and what the push wrote to Xero.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from xero_crm_sync import db, migrate, progress, summary
from xero_crm_sync.airflow_env import airflow_environ, ensure_metadata_db, run_airflow
from xero_crm_sync.connections import ConnectionStore
from xero_crm_sync.settings import VAR_DIR, get_settings

DEMO_DIR = VAR_DIR / "demo"
COMPANY = "Demo Trading Ltd"
_PROGRESS_LINE = re.compile(re.escape(progress.PREFIX) + r" (.*?(?:left|done))")


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)


def run(*, contacts: int = 500, seed: int = 1, keep: bool = False) -> int:
    from xero_crm_sync.connect import connect
    from xero_crm_sync.oauth import AppCredentials
    from xero_sandbox.server import SandboxServer
    from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

    started = time.perf_counter()
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    if "CRM_DATABASE_URL" not in os.environ:
        database = DEMO_DIR / "crm.db"
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
        os.environ["CRM_DATABASE_URL"] = f"sqlite:///{database}"
    url = os.environ["CRM_DATABASE_URL"]
    _step(f"CRM database {db.make_url(url).render_as_string(hide_password=True)}")
    migrate.migrate(url)
    with db.begin(url) as conn:
        migrate.seed_demo(conn, COMPANY)

    _step(f"starting the Xero sandbox: 2 demo organisations of {contacts} contacts (seed {seed})")
    with SandboxServer(seed=seed, contacts=contacts, tenants=2, auto_consent=True) as sandbox:
        os.environ.update(sandbox.env())
        print(f"    sandbox at {sandbox.url}")
        settings = get_settings()
        store = ConnectionStore(db.get_engine(url))
        credentials = AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET)
        tenants = sandbox.admin.tenants()
        for role, tenant in zip(("primary", "secondary"), tenants, strict=False):
            _step(
                f"connecting {tenant['tenantName']} as the {role} organisation (OAuth2 + PKCE, auto-consent)"
            )
            connect(
                store,
                settings,
                credentials,
                operating_company=COMPANY,
                role=role,
                tenant=tenant["tenantId"],
                headless=True,
                announce=lambda _msg: None,
            )

        env = airflow_environ()
        _step(f"Airflow metadata database in {env['AIRFLOW_HOME']}")
        ensure_metadata_db(env, DEMO_DIR / "airflow-db.log")
        server: dict[str, dict[str, Any]] | None = None
        for dag_id, before in (
            ("xero_import", None),
            ("xero_push", lambda: _sales_staff_work(url)),
            ("xero_order_invoices", None),
        ):
            if before is not None:
                _step(before())
            log_path = DEMO_DIR / f"airflow-{dag_id}.log"
            _step(f"airflow dags test {dag_id} (log: {log_path})")
            code = _run_dag(dag_id, env, log_path)
            if code != 0:
                print(_tail(log_path))
                print(f"{dag_id} failed (exit {code}); full log: {log_path}")
                return code
            if dag_id == "xero_import":
                server = _server_import_figures(sandbox, tenants)  # before the push adds its own calls
        writes = [
            f"{e['method']} {e['path'].split('?')[0]}"
            for e in sandbox.admin.journal(tenant_id=tenants[0]["tenantId"])
            if e["method"] in ("PUT", "POST")
        ]
        counters = sandbox.admin.counters()
        sandbox_calls = {
            tenant["tenantName"]: counters.get(tenant["tenantId"], {}).get("totals", {}).get("calls", 0)
            for tenant in tenants
        }
    engine = db.get_engine(url)
    run_id = summary.latest_import_run(engine)
    print()
    print(summary.render(engine, run_id or "?", sandbox_calls, server))
    print(_push_summary(engine, writes))
    print(
        f"\nDone in {time.perf_counter() - started:.0f} s. Query the CRM: sqlite3 {db.make_url(url).database}"
    )
    return 0


def _server_import_figures(sandbox: Any, tenants: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per organisation: the import's GETs as the sandbox counted them, and the fewest possible from the records
    the sandbox holds (GET /sandbox/records), never from what the client says it read."""
    counters, records = sandbox.admin.counters(), sandbox.admin.records()
    return {
        tenant["tenantName"]: summary.server_import_figures(
            counters.get(tenant["tenantId"], {}).get("endpoints", {}), records[tenant["tenantId"]]
        )
        for tenant in tenants
    }


def _sales_staff_work(url: str) -> str:
    """What sales staff do in the CRM between syncs: the push must send exactly this and nothing else."""
    from sqlalchemy import text

    from xero_crm_sync.push.orders import confirm_order

    with db.begin(url) as conn:
        company = conn.execute(
            text("SELECT id FROM operating_company WHERE name = :n"), {"n": COMPANY}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO sales_ledger (operating_company_id, name, email, currency_code, status, city, country) "
                "VALUES (:c, 'Harbour Bikes Ltd', 'accounts@harbourbikes.example', 'NZD', 'Active', 'Wellington', "
                "'New Zealand')"
            ),
            {"c": company},
        )
        conn.execute(
            text(
                "INSERT INTO product (operating_company_id, code, name, description, sell_price, cost_price, "
                "sales_account_code, purchase_account_code, sales_tax_type) VALUES (:c, 'DEMO-BIKE', 'Demo bike', "
                "'A bike sold from the CRM', 899, 450, '200', '300', 'OUTPUT2')"
            ),
            {"c": company},
        )
        changed = conn.execute(
            text(
                "SELECT id, code, sell_price FROM product WHERE accounting_code IS NOT NULL ORDER BY code LIMIT 1"
            )
        ).first()
        conn.execute(
            text("UPDATE product SET sell_price = sell_price + 10 WHERE id = :id"), {"id": changed.id}
        )
        customer = conn.execute(
            text(
                "SELECT id, currency_code FROM sales_ledger WHERE accounting_code IS NOT NULL AND status = 'Active' "
                "ORDER BY id LIMIT 1"
            )
        ).first()
        order_id = conn.execute(
            text(
                "INSERT INTO sales_order (operating_company_id, order_number, sales_ledger_id, status, "
                "customer_reference, currency_code, delivery_charge, order_date) VALUES (:c, 'SO-DEMO-1', :l, 'quote', "
                "'PO 4471', :cur, 25, CURRENT_DATE) RETURNING id"
            ),
            {"c": company, "l": customer.id, "cur": customer.currency_code or "NZD"},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO sales_order_line (sales_order_id, line_no, item_code, description, quantity, unit_price, "
                "tax_type, account_code) VALUES (:o, 1, :code, 'Consulting', 2, 150, 'OUTPUT2', '200')"
            ),
            {"o": order_id, "code": None},
        )
        confirm_order(conn, order_id)
    return (
        "sales staff in the CRM: new customer Harbour Bikes Ltd, new product DEMO-BIKE, "
        f"a price change on {changed.code}, order SO-DEMO-1 confirmed"
    )


def _push_summary(engine: Any, writes: list[str]) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        pushed = conn.execute(
            text(
                "SELECT record_type, operation, COUNT(*) FROM sync_history WHERE direction = 'export' "
                "GROUP BY record_type, operation ORDER BY record_type, operation"
            )
        ).all()
        invoice = conn.execute(
            text("SELECT order_number, xero_invoice_id FROM sales_order WHERE xero_invoice_id IS NOT NULL")
        ).all()
        errors = conn.execute(
            text("SELECT record_type, message FROM sync_error WHERE direction = 'export' AND status = 'open'")
        ).all()
    lines = ["", "Pushed to Xero (CRM -> Xero):"]
    lines += [
        f"  {record_type:<14} {operation:<16} {count:>4}" for record_type, operation, count in pushed
    ] or ["  nothing"]
    lines += [f"  order {number} -> Draft invoice {invoice_id}" for number, invoice_id in invoice]
    lines.append(f"  write requests Xero received: {len(writes)} ({', '.join(sorted(set(writes)))})")
    lines += [f"  unresolved: {record_type}: {message}" for record_type, message in errors]
    return "\n".join(lines)


def airflow_standalone(*, contacts: int = 500, seed: int = 1, port: int = 8765, api_port: int = 8080) -> int:
    """`make airflow`: the sandbox on a fixed port, both demo organisations connected, and `airflow standalone`
    (scheduler, dag-processor, api-server on `api_port`, triggerer) running this project's DAGs against it.
    Ctrl-C stops everything."""
    from xero_crm_sync.connect import connect
    from xero_crm_sync.oauth import AppCredentials
    from xero_sandbox.server import SandboxServer
    from xero_sandbox.state import GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET

    url = os.environ.setdefault("CRM_DATABASE_URL", f"sqlite:///{VAR_DIR / 'crm.db'}")
    migrate.migrate(url)
    with db.begin(url) as conn:
        migrate.seed_demo(conn, COMPANY)
    with SandboxServer(mode="subprocess", port=port, seed=seed, contacts=contacts, tenants=2) as sandbox:
        os.environ.update(sandbox.env())
        store = ConnectionStore(db.get_engine(url))
        credentials = AppCredentials(GRANULAR_CLIENT_ID, GRANULAR_CLIENT_SECRET)
        for role, tenant in zip(("primary", "secondary"), sandbox.admin.tenants(), strict=False):
            connect(
                store,
                get_settings(),
                credentials,
                operating_company=COMPANY,
                role=role,
                tenant=tenant["tenantId"],
                headless=True,
                announce=lambda _m: None,
            )
        env = airflow_environ()
        env.setdefault("AIRFLOW__API__PORT", str(api_port))
        env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")  # a development stack: loopback only
        print(
            f"sandbox {sandbox.url}; CRM {url}; Airflow UI http://127.0.0.1:{env['AIRFLOW__API__PORT']} "
            "(credentials printed below)",
            flush=True,
        )
        try:
            return run_airflow(["standalone"], env)
        except KeyboardInterrupt:
            return 0


def _run_dag(dag_id: str, env: dict[str, str], log_path: Path) -> int:
    """`airflow dags test` with its (verbose) output in `log_path`; the import's progress lines are shown here
    as they come, so a long first sync says where it is."""
    done = threading.Event()
    follower = threading.Thread(target=_follow_progress, args=(log_path, done), daemon=True)
    log_path.unlink(missing_ok=True)
    follower.start()
    try:
        return run_airflow(["dags", "test", dag_id], env, log_path)
    finally:
        done.set()
        follower.join(timeout=5)


def _follow_progress(log_path: Path, done: threading.Event) -> None:
    position = 0
    while True:
        finished = done.is_set()  # read once more after the run ends: its last lines
        if log_path.exists():
            with log_path.open("rb") as log:
                log.seek(position)
                for raw in log.readlines():
                    if not raw.endswith(b"\n"):
                        break  # a line still being written: read it next time
                    position += len(raw)
                    found = _PROGRESS_LINE.search(raw.decode(errors="replace"))
                    if found:
                        print(f"    {found.group(1)}", flush=True)
        if finished:
            return
        done.wait(0.5)


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def reset() -> None:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
