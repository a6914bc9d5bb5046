"""`python -m xero_sandbox serve | describe`: run a local Xero, or say what a seed and size would serve.

python -m xero_sandbox serve --port 8765 --seed 1 --contacts 500 [--tenants 2]
    [--min-limit 60 --day-limit 5000 --window-seconds 60 | --no-limits] [--auto-consent] [--state-file F]
python -m xero_sandbox describe --seed 1 --contacts 500 [--tenants 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xero_sandbox.idempotency import DEFAULT_WINDOW_SECONDS
from xero_sandbox.limits import LimitConfig
from xero_sandbox.state import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URIS,
    DEMO_USER_EMAIL,
    GRANULAR_CLIENT_ID,
    GRANULAR_CLIENT_SECRET,
    SandboxConfig,
    SandboxState,
    build_state,
    load_state,
    save_state,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xero_sandbox", description="A local, wire-compatible Xero."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_org_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=1, help="generator seed (organisation N uses seed+N)")
        p.add_argument("--contacts", type=int, default=500, help="contacts per organisation")
        p.add_argument("--tenants", type=int, default=1, help="how many organisations to serve")

    serve = sub.add_parser("serve", help="serve the sandbox")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on start)")
    add_org_options(serve)
    limits = serve.add_argument_group("rate limits (Xero's defaults)")
    limits.add_argument("--min-limit", type=int, default=60, help="calls per minute per organisation")
    limits.add_argument("--day-limit", type=int, default=5000, help="calls per day per organisation")
    limits.add_argument("--concurrent-limit", type=int, default=5, help="calls in progress per organisation")
    limits.add_argument("--app-min-limit", type=int, default=10_000, help="calls per minute per app")
    limits.add_argument("--window-seconds", type=float, default=60.0, help="length of a 'minute'")
    limits.add_argument("--day-seconds", type=float, default=86_400.0, help="length of a 'day'")
    limits.add_argument("--no-limits", action="store_true", help="switch limits off (benchmarks)")
    serve.add_argument(
        "--idempotency-seconds",
        type=float,
        default=DEFAULT_WINDOW_SECONDS,
        help="how long an Idempotency-Key is remembered after its first call (Xero: 6 minutes)",
    )
    serve.add_argument("--auto-consent", action="store_true", help="authorize redirects at once (headless)")
    serve.add_argument("--no-admin", action="store_true", help="refuse the /sandbox admin paths")
    serve.add_argument("--state-file", type=Path, help="load state from here if it exists; save on exit")
    serve.add_argument(
        "--webhook-url",
        help="subscribe the demo app's webhooks to this URL (intent to receive runs on start)",
    )
    serve.add_argument(
        "--webhook-key",
        default=os.environ.get("XERO_SANDBOX_WEBHOOK_KEY"),
        help="the webhook key for --webhook-url (default: $XERO_SANDBOX_WEBHOOK_KEY, else a new one, printed)",
    )
    serve.add_argument("--journal-size", type=int, default=1000, help="requests kept in the journal")
    serve.add_argument("--log-level", default="warning")
    serve.add_argument("--describe", action="store_true", help="print entity counts per organisation too")
    serve.add_argument(
        "--watch-parent",
        type=int,
        metavar="PID",
        help="shut down when process PID (the one starting this sandbox) is no longer its parent",
    )

    describe = sub.add_parser("describe", help="print what a seed and size serve (entity counts)")
    add_org_options(describe)
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def describe_store(store: Any) -> dict[str, int]:
    """Entity counts of an organisation store: every collection it holds (objects with a name and a length)."""
    counts = getattr(store, "counts", None)
    if callable(counts):
        return dict(counts())
    result: dict[str, int] = {}
    for value in vars(store).values():
        name = getattr(value, "name", None)
        if isinstance(name, str) and hasattr(value, "__len__") and not isinstance(value, str | dict | list):
            result[name] = len(value)
    return result


def describe_state(state: SandboxState) -> list[dict[str, Any]]:
    return [{**t.public_view(), "entities": describe_store(t.store)} for t in state.tenants.values()]


def _print_description(description: list[dict[str, Any]]) -> None:
    for tenant in description:
        print(f"{tenant['tenantId']}  {tenant['tenantName']}")
        for entity, count in sorted(tenant["entities"].items()):
            print(f"    {entity:<24} {count:>8}")


def banner(url: str, state: SandboxState, startup_seconds: float) -> str:
    cfg, limits = state.config, state.limits.config
    lines = [
        f"Xero sandbox serving on {url} (ready in {startup_seconds:.1f} s)",
        "",
        "Point a Xero client at it:",
        f"  export XERO_LOGIN_URL={url}",
        f"  export XERO_IDENTITY_URL={url}",
        f"  export XERO_API_URL={url}",
        "",
        "Demo app (local use only; legacy scopes and granular ones):",
        f"  client id:     {DEMO_CLIENT_ID}",
        f"  client secret: {DEMO_CLIENT_SECRET}",
        f"  redirect URIs: {', '.join(u.replace(':*', ':<any port>') for u in DEMO_REDIRECT_URIS)}",
        f"Granular demo app: {GRANULAR_CLIENT_ID} / {GRANULAR_CLIENT_SECRET} (broad transaction scopes refused)",
        f"Signed-in user: {cfg.default_user_email}",
        "",
        "Tenants:",
    ]
    for tenant in state.tenants.values():
        size = f" (seed {tenant.seed}, {tenant.contacts} contacts)" if tenant.seed is not None else ""
        lines.append(f"  {tenant.tenant_id}  {tenant.name}{size}")
    if limits.enabled:
        lines.append(
            f"Limits: {limits.minute}/minute ({limits.window_seconds:g} s window), {limits.day}/day "
            f"({limits.day_seconds:g} s), {limits.concurrent} concurrent, {limits.app_minute}/app minute"
        )
    else:
        lines.append("Limits: off")
    lines.append(f"Auto-consent: {'on' if cfg.auto_consent else 'off (consent page in the browser)'}")
    lines.append(f"Admin: {'on: ' + url + '/sandbox/docs' if cfg.admin_enabled else 'off'}")
    return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from xero_sandbox.app import create_app
    from xero_sandbox.server import READY_PREFIX, bind_socket, uvicorn_config

    started = time.monotonic()
    if args.state_file is not None and args.state_file.exists():
        state = load_state(args.state_file)
    else:
        state = build_state(
            seed=args.seed,
            contacts=args.contacts,
            tenants=args.tenants,
            limits=LimitConfig(
                enabled=not args.no_limits,
                minute=args.min_limit,
                day=args.day_limit,
                concurrent=args.concurrent_limit,
                app_minute=args.app_min_limit,
                window_seconds=args.window_seconds,
                day_seconds=args.day_seconds,
            ),
            config=SandboxConfig(
                admin_enabled=not args.no_admin,
                auto_consent=args.auto_consent,
                default_user_email=DEMO_USER_EMAIL,
            ),
            journal_size=args.journal_size,
        )
        state.idempotency.window_seconds = args.idempotency_seconds
    app = create_app(state, state_file=args.state_file)
    sock = bind_socket(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    print(banner(url, state, time.monotonic() - started))
    if args.describe:
        print()
        _print_description(describe_state(state))
    if args.webhook_url:
        _subscribe_on_start(state, args.webhook_url, args.webhook_key, url)
    # The machine-readable ready line last: SandboxServer (subprocess mode) waits for it, banner read by then.
    print(f"\n{READY_PREFIX}{url}", flush=True)
    server = uvicorn.Server(uvicorn_config(app, args.log_level))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it under the handler it found: make that handler
    # a clean exit, so the state file below is still written (the default handler would kill the process).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if args.watch_parent:
        _watch_parent(server, args.watch_parent)
    try:
        server.run(sockets=[sock])
    finally:
        if args.state_file is not None:
            save_state(state, args.state_file)
    return 0


def _subscribe_on_start(state: SandboxState, webhook_url: str, key: str | None, url: str) -> None:
    """Subscribe the demo app; intent to receive runs once the sandbox serves (the receiver may start later:
    a few tries, then `POST /sandbox/webhooks/{id}/validate` runs it again)."""
    sub = state.webhooks.subscribe(DEMO_CLIENT_ID, webhook_url, key=key, resource_base=url)
    shown = "from --webhook-key" if key else f"{sub.key} (local use only)"
    print(f"Webhooks: {webhook_url} (subscription {sub.id}), key {shown}")

    def validate() -> None:
        for _ in range(10):
            time.sleep(2)
            if state.webhooks.validate(sub.id).status == "OK":
                return

    threading.Thread(target=validate, name="webhook-intent", daemon=True).start()


def _watch_parent(server: Any, parent: int) -> None:
    """A sandbox started by a test or benchmark must not outlive it, even when that process is killed.

    The starter passes its PID (it may be gone before we could read getppid() ourselves); once we are
    re-parented, it has exited, and the sandbox shuts down gracefully (writing its state file, if any).
    """

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _describe(args: argparse.Namespace) -> int:
    state = build_state(seed=args.seed, contacts=args.contacts, tenants=args.tenants)
    description = describe_state(state)
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        _print_description(description)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _describe(args)
