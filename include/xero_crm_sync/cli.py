"""`python -m xero_crm_sync <command>`: operate the integration from a terminal.

migrate                      create or migrate the CRM database (idempotent)
connect                      connect a Xero organisation (OAuth2 authorization code + PKCE)
connections                  list connections and their health (never their tokens)
disconnect                   disconnect an organisation: revoke at Xero, stop its DAGs, keep CRM data
health                       check connections now (what the xero_connection_health DAG does)
prune-staging                forget what old import runs staged, never what the mirror points at (xero_connection_health)
import                       run one import cycle without Airflow (what xero_import does; debugging)
push                         push changed customers and products once (what xero_push does; debugging)
outbox                       drain the order outbox once: confirmed orders -> Draft invoices (xero_order_invoices)
summary                      what the last sync cycle did
webhooks                     store the Xero app's webhook key (encrypted); show the webhooks' health
settings                     show or change an operating company's settings (S1-S9)
sql                          run one SQL step from sql/ with bound parameters (or print a generated one)
demo                         `make run`: sandbox + connect + xero_import through Airflow + summary
airflow-standalone           `make airflow`: sandbox + connections + Airflow standalone

`python -m xero_crm_sync <command> --help` explains each command and its options. The DAGs are the real thing:
these commands run the same code in this process, for debugging without Airflow.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import uuid
from typing import TYPE_CHECKING

from xero_crm_sync import db
from xero_crm_sync.settings import SettingsError, get_settings

if TYPE_CHECKING:
    from xero_crm_sync.entities import Entity, Lines


def _store():  # late imports keep `--help` fast
    from xero_crm_sync.connections import ConnectionStore

    return ConnectionStore(db.get_engine())


def cmd_migrate(args: argparse.Namespace) -> int:
    from xero_crm_sync import migrate

    done = migrate.migrate()
    if args.seed_demo:
        with db.begin() as conn:
            migrate.seed_demo(conn, args.seed_demo)
    print("\n".join(done) if done else "CRM database is up to date")
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    from xero_crm_sync.connect import connect
    from xero_crm_sync.oauth import AppCredentials

    secret = os.environ.get(args.client_secret_env) or (
        getpass.getpass(f"Client secret for {args.client_id}: ") if sys.stdin.isatty() else ""
    )
    if not secret:
        raise SettingsError(
            f"set the app's client secret in ${args.client_secret_env} (never on the command line)"
        )
    connect(
        _store(),
        get_settings(),
        AppCredentials(args.client_id, secret),
        operating_company=args.operating_company,
        role=args.role,
        tenant=args.tenant,
        scopes=args.scopes,
        port=args.port,
        redirect_host=args.redirect_host,
        headless=args.headless,
        open_browser=not args.no_browser and not args.headless,
        create_operating_company=args.create_operating_company,
        choose=_choose_tenant if sys.stdin.isatty() and not args.headless else None,
    )
    return 0


def _choose_tenant(tenants: list[dict]) -> dict:
    """Let the user pick one of the organisations Xero granted (several were ticked on the consent page)."""
    for number, tenant in enumerate(tenants, 1):
        print(f"  {number}. {tenant.get('tenantName')} ({tenant.get('tenantId')})")
    while True:
        answer = input(f"Which organisation should this connection use? [1-{len(tenants)}] ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(tenants):
            return tenants[int(answer) - 1]


def cmd_connections(_args: argparse.Namespace) -> int:
    from xero_crm_sync import status

    connections = status.report(db.get_engine()).connections
    if not connections:
        print(
            "no Xero connection yet: connect one with "
            "`python -m xero_crm_sync connect --operating-company <name> --role primary` (see the README)"
        )
    for c in connections:
        refreshed = f"{c['last_refresh_at']:%Y-%m-%d %H:%M}" if c["last_refresh_at"] else "never"
        print(
            f"{c['id']:>3}  {c['company']:<20} {c['role']:<9} {c['status']:<16} {c['health'] or '':<18} "
            f"refreshed {refreshed}  {c['tenant_name'] or ''} ({c['tenant_id']})"
            + (f"\n     last error: {c['last_error']}" if c["last_error"] else "")
            + (f"\n     to do: {c['what_to_do']}" if c["what_to_do"] else "")
        )
    return 0


def _connection_id(args: argparse.Namespace) -> int:
    """--connection-id, or the live connection of --operating-company in --role."""
    if args.connection_id is not None:
        return args.connection_id
    from sqlalchemy import text

    with db.get_engine().connect() as conn:
        found = conn.execute(
            text(
                "SELECT x.id FROM xero_connection x JOIN operating_company oc ON oc.id = x.operating_company_id "
                "WHERE oc.name = :name AND x.role = :role AND x.status <> 'disconnected'"
            ),
            {"name": args.operating_company, "role": args.role},
        ).scalar()
    if found is None:
        raise SettingsError(f"{args.operating_company} has no connected {args.role} organisation")
    return int(found)


def cmd_disconnect(args: argparse.Namespace) -> int:
    from xero_crm_sync.disconnect import disconnect

    if args.connection_id is None and not args.operating_company:
        raise SettingsError(
            "name the connection: --connection-id N, or --operating-company NAME [--role ROLE]"
        )
    store = _store()
    connection_id = _connection_id(args)
    info = store.get(connection_id)
    if not args.yes and sys.stdin.isatty():
        answer = input(
            f"Disconnect {info.tenant_name} ({info.role}, connection {info.id})? Imports and pushes stop; "
            "CRM data stays. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    result = disconnect(store, get_settings(), connection_id, by_user=getpass.getuser(), force=args.force)
    print(
        f"Disconnected {result.tenant_name} ({result.role}, connection {result.connection_id}): "
        f"removed at Xero: {'yes' if result.removed_at_xero else 'no'}, "
        f"refresh token revoked: {'yes' if result.token_revoked else 'no'}."
    )
    for note in result.notes:
        print(f"  note: {note}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from xero_crm_sync import health

    store = _store()
    settings = get_settings()
    infos = store.list(connection_id=args.connection_id)
    results = [health.check_connection(store, info, settings) for info in infos]
    for r in results:
        print(
            f"{r.connection_id:>3}  {r.role:<9} {r.outcome:<18} {r.tenant_name or '':<32}"
            + (" refreshed" if r.refreshed else "")
            + (f"  {r.detail}" if r.detail else "")
        )
    return 0 if all(r.outcome in ("ok", "skipped") for r in results) else 1


def cmd_prune_staging(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from xero_crm_sync import retention, staging

    if args.keep_days is not None and not args.keep_days > 0:
        raise SettingsError(f"--keep-days must be more than 0, not {args.keep_days}")
    keep = timedelta(days=args.keep_days) if args.keep_days is not None else retention.keep_staged()
    older_than = staging.now_utc_naive() - keep
    total = retention.PruneResult()
    while True:  # a batch of runs at a time, as the DAG does every 10 minutes
        batch = retention.prune_staging(db.get_engine(), older_than=older_than, max_runs=args.max_runs)
        for name, value in batch.as_dict().items():
            setattr(total, name, getattr(total, name) + value)
        if batch.runs < args.max_runs or not batch.finished:
            break
    print(
        f"import runs started before {older_than:%Y-%m-%d %H:%M} UTC: {total.runs} looked at, {total.finished} "
        f"with nothing left; staged records deleted {total.staged_deleted} (their lines with them), kept for "
        f"the mirror {total.kept_for_mirror}; quarantined records deleted {total.quarantine_deleted}; drained "
        f"CRM-change outbox rows deleted {total.outbox_deleted}"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from xero_crm_sync import import_run, summary

    store = _store()
    run_id = args.run_id or f"cli__{uuid.uuid4().hex[:12]}"
    for info in import_run.connections_to_run(store, args.connection_id):
        extracted = import_run.extract(store.engine, store, store.get(info["id"]), run_id, full=args.full)
        import_run.validate(store.engine, extracted.as_dict())
        import_run.load(store.engine, extracted.as_dict(), full=args.full)
    print(summary.render(store.engine, run_id))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """xero_push's tasks in order, per active primary connection: customers, then products."""
    from xero_crm_sync.push.run import push_connections, run_step

    store = _store()
    settings = get_settings()
    run_id = args.run_id or f"cli__{uuid.uuid4().hex[:12]}"
    connections = push_connections(store, args.connection_id)
    if not connections:
        print("no active primary connection to push to (see `python -m xero_crm_sync connections`)")
    steps = [step for step in ("customers", "products") if step in (args.steps or ("customers", "products"))]
    stopped_any = False
    for connection in connections:
        stopped = None
        for step in steps:
            result = run_step(
                step,
                store.engine,
                store,
                settings,
                connection["id"],
                run_id,
                last=step == steps[-1],
                stopped_before=stopped,
            )
            stopped = stopped or result.get("stopped")
            print(
                f"{connection['tenant_name']}: {step:<9} changed {result['changed']}, created {result['created']}, "
                f"updated {result['updated']}, linked {result['linked']}, rejected {result['rejected']}, "
                f"calls {result['calls']}"
                + (f"; stopped: {result['stopped']}" if result.get("stopped") else "")
            )
        stopped_any = stopped_any or bool(stopped)
    print(f"run {run_id}; rejected records are unresolved errors on the status page")
    return 1 if stopped_any else 0


def cmd_outbox(args: argparse.Namespace) -> int:
    """xero_order_invoices' task: every pending order_outbox event, in order, once."""
    from xero_crm_sync.push.orders import InvoiceOptions, process_outbox

    store = _store()
    run_id = args.run_id or f"cli__{uuid.uuid4().hex[:12]}"
    options = InvoiceOptions(args.delivery_account_code, args.delivery_tax_type)
    result = process_outbox(store.engine, store, get_settings(), run_id, options=options)
    print(
        f"{result.events} events: {result.invoices_created} invoices created, {result.invoices_deleted} deleted, "
        f"{result.done_without_call} done without a call, {result.failed} failed, {result.waiting} waiting for a "
        f"connection, {result.calls} calls" + (f"; stopped: {result.stopped}" if result.stopped else "")
    )
    return 1 if result.failed or result.stopped else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from xero_crm_sync import summary

    engine = db.get_engine()
    run_id = args.run_id or summary.latest_import_run(engine)
    if run_id is None:
        print("no import has run yet")
        return 1
    print(summary.render(engine, run_id))
    return 0


def _parse_setting(name: str, raw: str) -> object:
    from xero_crm_sync.company_settings import CompanySettings

    field = CompanySettings.__dataclass_fields__.get(name)
    if field is None:
        return raw  # unknown: set_company_settings refuses it with the list of known settings
    if raw.lower() in ("none", "null", ""):
        return None
    kind = str(field.type)
    if "bool" in kind:
        return raw.lower() in ("1", "true", "yes", "on")
    if "int" in kind:
        try:
            return int(raw)
        except ValueError:
            return raw  # refused with a clear message by validation
    return raw


def cmd_settings(args: argparse.Namespace) -> int:
    """Show or change an operating company's settings (S1-S9); changes are validated before anything is saved."""
    import dataclasses

    from sqlalchemy import text

    from xero_crm_sync.company_settings import InvalidSettings, get_company_settings, set_company_settings

    with db.begin() as conn:
        company_id = conn.execute(
            text("SELECT id FROM operating_company WHERE name = :n"), {"n": args.operating_company}
        ).scalar()
        if company_id is None:
            raise SettingsError(f"no operating company named {args.operating_company!r}")
        if args.set:
            changes = {}
            for item in args.set:
                name, _, raw = item.partition("=")
                changes[name.strip()] = _parse_setting(name.strip(), raw.strip())
            try:
                set_company_settings(conn, company_id, **changes)
            except InvalidSettings as exc:
                for problem in exc.problems:
                    print(f"refused: {problem}", file=sys.stderr)
                return 2
        for name, value in dataclasses.asdict(get_company_settings(conn, company_id)).items():
            print(f"{name:<36} {value}")
    return 0


def _loaded_lines(name: str) -> tuple[Entity, Lines]:
    from xero_crm_sync import transform

    known = transform.loaded_lines()
    if name not in known:
        raise SettingsError(f"unknown line entity {name!r}; known: {', '.join(known)}")
    return known[name]


def cmd_sql(args: argparse.Namespace) -> int:
    """Run one SQL file (e.g. a transform step) or a rendered template with bound parameters, or print the
    generated mirror SQL or a rendered template."""
    from xero_crm_sync import entities, transform, validated

    if args.show_validated:
        print(";\n\n".join(validated.promote_sql(entities.entity(args.show_validated))) + ";")
        return 0
    if args.show_lines:
        print(transform.document_lines_sql(*_loaded_lines(args.show_lines)), end="")
        return 0
    if not args.file and not args.lines:
        raise SettingsError(
            "give a SQL file (e.g. transform/040_upsert_sales_ledgers.sql), --lines, --show-lines or --show-validated"
        )
    params = dict(p.split("=", 1) for p in args.param)
    for key in ("connection_id", "operating_company_id"):
        if key in params:
            params[key] = int(params[key])
    with db.begin() as conn:
        if args.lines:
            label = f"{transform.DOCUMENT_LINES_TEMPLATE.name} ({args.lines})"
            sql = transform.document_lines_sql(*_loaded_lines(args.lines))
            counts = db.run_sql(conn, sql, params, source=label)
        else:
            label = args.file
            counts = db.run_sql_file(conn, args.file, params)
    print(f"{label}: {len(counts)} statements, rows affected {counts}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from xero_crm_sync import demo

    return demo.run(contacts=args.contacts, seed=args.seed, keep=args.keep)


def cmd_airflow(args: argparse.Namespace) -> int:
    from xero_crm_sync import demo

    return demo.airflow_standalone(
        contacts=args.contacts, seed=args.seed, port=args.sandbox_port, api_port=args.api_port
    )


def cmd_webhooks(args: argparse.Namespace) -> int:
    from xero_crm_sync.webhooks import health

    return health.command(args.action, args.client_id, args.key_env)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xero_crm_sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text)

    p = command("migrate", "create or migrate the CRM database")
    p.add_argument("--seed-demo", metavar="COMPANY", help="also seed a demo operating company")
    p.set_defaults(func=cmd_migrate)

    p = command("connect", "connect a Xero organisation")
    p.add_argument("--operating-company", required=True, help="the CRM operating company's name")
    p.add_argument(
        "--role",
        choices=["primary", "secondary"],
        default="primary",
        help="primary (synced both ways) or secondary (enrichment only, C2)",
    )
    p.add_argument(
        "--client-id",
        default=os.environ.get("XERO_CLIENT_ID"),
        required="XERO_CLIENT_ID" not in os.environ,
        help="the Xero app's client id (default $XERO_CLIENT_ID)",
    )
    p.add_argument(
        "--client-secret-env",
        default="XERO_CLIENT_SECRET",
        help="environment variable holding the client secret (default XERO_CLIENT_SECRET)",
    )
    p.add_argument("--tenant", help="organisation name or tenant id, when several are granted")
    p.add_argument(
        "--scopes",
        choices=["granular", "broad"],
        default="granular",
        help="granular (apps created after 2026-03-02, default) or broad (older apps)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        help="local redirect port; a real Xero app needs the port of its registered redirect URI (0: any free port, "
        "for the sandbox)",
    )
    p.add_argument(
        "--redirect-host",
        choices=["127.0.0.1", "localhost"],
        default="127.0.0.1",
        help="host of the registered redirect URI (http://<host>:<port>/callback)",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="follow the authorisation URL without a browser (the sandbox's auto-consent)",
    )
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p.add_argument(
        "--create-operating-company",
        action="store_true",
        help="create the operating company (with its Unassigned default account manager) if it does not exist",
    )
    p.set_defaults(func=cmd_connect)

    p = command("connections", "list connections")
    p.set_defaults(func=cmd_connections)

    p = command("disconnect", "disconnect an organisation (revoke at Xero; CRM data stays)")
    p.add_argument("--connection-id", type=int, help="xero_connection.id (see `connections`)")
    p.add_argument("--operating-company", help="with --role, instead of --connection-id")
    p.add_argument(
        "--role", choices=["primary", "secondary"], default="primary", help="with --operating-company"
    )
    p.add_argument("--force", action="store_true", help="disconnect in the CRM even if Xero is unreachable")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_disconnect)

    p = command("health", "check connections now: refresh ahead of expiry, GET /connections")
    p.add_argument("--connection-id", type=int, help="one xero_connection.id (default: every connection)")
    p.set_defaults(func=cmd_health)

    p = command(
        "prune-staging",
        "forget what import runs older than the retention window staged (rows and lines; old quarantined records "
        "once resolved or quarantined again), never the staged rows the mirror points at (what "
        "xero_connection_health does every 10 minutes)",
    )
    p.add_argument(
        "--keep-days",
        type=float,
        help="the retention window in days (default $XERO_STAGING_KEEP_DAYS, else 14)",
    )
    p.add_argument("--max-runs", type=int, default=200, help="runs per transaction batch")
    p.set_defaults(func=cmd_prune_staging)

    p = command("import", "run one import without Airflow: extract, validate, load (what xero_import does)")
    p.add_argument("--full", action="store_true", help="re-read everything instead of what changed")
    p.add_argument("--connection-id", type=int, help="one xero_connection.id (default: every active one)")
    p.add_argument("--run-id", help="the run id to record (default cli__<random>)")
    p.set_defaults(func=cmd_import)

    p = command(
        "push",
        "push CRM customers and products whose pushed fields changed, once, without Airflow (what xero_push "
        "does); exit 1 when a step stopped early (a spent daily limit, a lost connection)",
    )
    p.add_argument(
        "--connection-id", type=int, help="one primary xero_connection.id (default: every active primary)"
    )
    p.add_argument(
        "--only",
        dest="steps",
        choices=["customers", "products"],
        action="append",
        help="push only these (repeatable); default customers, then products",
    )
    p.add_argument("--run-id", help="the run id to record (default cli__<random>)")
    p.set_defaults(func=cmd_push, steps=None)

    p = command(
        "outbox",
        "drain the order outbox once without Airflow (what xero_order_invoices does): a Draft invoice in Xero "
        "for each confirmed order, the draft deleted for each voided one; exit 1 when an event failed",
    )
    p.add_argument(
        "--delivery-account-code",
        default=os.environ.get("XERO_DELIVERY_ACCOUNT_CODE"),
        help="account code of the delivery line (default $XERO_DELIVERY_ACCOUNT_CODE)",
    )
    p.add_argument(
        "--delivery-tax-type",
        default=os.environ.get("XERO_DELIVERY_TAX_TYPE"),
        help="tax type of the delivery line (default $XERO_DELIVERY_TAX_TYPE)",
    )
    p.add_argument("--run-id", help="the run id to record (default cli__<random>)")
    p.set_defaults(func=cmd_outbox)

    p = command("summary", "what the last sync cycle did")
    p.add_argument("--run-id", help="an import run id (default: the latest)")
    p.set_defaults(func=cmd_summary)

    p = command("webhooks", "set-key: store the webhook key (from $XERO_WEBHOOK_KEY); status")
    p.add_argument("action", choices=["set-key", "status"], help="set-key or status")
    p.add_argument(
        "--client-id", default=os.environ.get("XERO_CLIENT_ID"), help="the Xero app (XERO_CLIENT_ID)"
    )
    p.add_argument(
        "--key-env", default="XERO_WEBHOOK_KEY", help="variable holding the key (never an argument)"
    )
    p.set_defaults(func=cmd_webhooks)

    p = command("settings", "show or change an operating company's settings (S1-S9)")
    p.add_argument("--operating-company", required=True, help="the operating company's name")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="e.g. --set b2c_mode=regex --set 'b2c_regex=^[A-Z][a-z]+ [A-Z][a-z]+$'",
    )
    p.set_defaults(func=cmd_settings)

    p = command("sql", "run one SQL file from sql/ with bound parameters")
    p.add_argument("file", nargs="?", help="path under sql/, e.g. transform/040_upsert_sales_ledgers.sql")
    p.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a bound parameter (repeatable)"
    )
    p.add_argument("--show-validated", metavar="ENTITY", help="print the generated val_<entity> upsert SQL")
    p.add_argument(
        "--lines",
        metavar="LINES",
        help="run sql/transform/templates/upsert_document_lines.sql for a line entity (e.g. invoice_lines)",
    )
    p.add_argument("--show-lines", metavar="LINES", help="print that template rendered for a line entity")
    p.set_defaults(func=cmd_sql)

    p = command("demo", "make run: sandbox, connect, xero_import through Airflow, summary")
    p.add_argument("--contacts", type=int, default=500, help="contacts per sandbox organisation")
    p.add_argument("--seed", type=int, default=1, help="the sandbox's data generator seed")
    p.add_argument("--keep", action="store_true", help="keep the demo CRM database from the last run")
    p.set_defaults(func=cmd_demo)

    p = command("airflow-standalone", "make airflow: sandbox + connections + airflow standalone")
    p.add_argument("--contacts", type=int, default=500, help="contacts per sandbox organisation")
    p.add_argument("--seed", type=int, default=1, help="the sandbox's data generator seed")
    p.add_argument("--sandbox-port", type=int, default=8765, help="the sandbox's port")
    p.add_argument(
        "--api-port", type=int, default=8080, help="the Airflow UI and API (AIRFLOW__API__PORT wins)"
    )
    p.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from xero_crm_sync import console, redaction

    console.configure_logging(verbose=args.verbose)

    redaction.quiet_secret_loggers()
    redaction.install_filter()
    from xero_crm_sync.connect import ConnectError
    from xero_crm_sync.disconnect import DisconnectError
    from xero_crm_sync.oauth import ReconnectRequired

    try:
        return args.func(args)
    except (SettingsError, ConnectError, DisconnectError, ReconnectRequired) as exc:
        print(f"error: {redaction.redact(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
