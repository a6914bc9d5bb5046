"""Benchmark the sandbox's Accounting API at scale: generation time and 1,000-record page latency.

    .venv/bin/python bench/sandbox_accounting.py --contacts 100000 [--json out.json]

Generates a demo organisation (default 100,000 contacts -> 200,000 invoices of ~5 lines), serves the
Accounting router on a bare FastAPI app (no auth/limits: this measures the accounting layer) with uvicorn on a
free loopback port, and times 1,000-record pages over real HTTP: cold (first request, which builds and caches the
ordering) and warm (median of repeats), for contacts and invoices with lines, with and without ``order`` and
``If-Modified-Since``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request

from xero_sandbox.accounting import router
from xero_sandbox.generator import generate_org


def serve(org) -> tuple[uvicorn.Server, threading.Thread, str]:
    app = FastAPI()

    @app.middleware("http")
    async def attach(request: Request, call_next):
        request.state.org = org
        return await call_next(request)

    app.include_router(router, prefix="/api.xro/2.0")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}/api.xro/2.0"


def timed(
    client: httpx.Client, path: str, params: dict, headers: dict | None = None
) -> tuple[float, int, int]:
    start = time.perf_counter()
    response = client.get(path, params=params, headers=headers or {})
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    body = response.json()
    collection = path.rsplit("/", 1)[-1]
    return elapsed, len(body[collection]), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    results: dict[str, object] = {"contacts": args.contacts}
    start = time.perf_counter()
    org = generate_org("bench-tenant", "Bench Ltd", seed=args.seed, contacts=args.contacts)
    results["generate_seconds"] = round(time.perf_counter() - start, 2)
    results["counts"] = {
        e: org.count(e)
        for e in ("Contacts", "Items", "Invoices", "Payments", "CreditNotes", "PurchaseOrders")
    }
    results["invoice_lines"] = sum(len(i["LineItems"]) for i in org.invoices.values())
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"generated in {results['generate_seconds']} s: {results['counts']}, {results['invoice_lines']} lines, "
          f"max RSS {results['max_rss_mb']} MB", flush=True)  # fmt: skip

    server, thread, base = serve(org)
    since = datetime.now(UTC).replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).isoformat()
    cases = [
        ("contacts page (creation order)", "/Contacts", {"pageSize": 1000}, None),
        ("contacts page, order=UpdatedDateUTC DESC", "/Contacts", {"pageSize": 1000, "order": "UpdatedDateUTC DESC"}, None),
        ("contacts page, If-Modified-Since + order", "/Contacts", {"pageSize": 1000, "order": "UpdatedDateUTC DESC"}, {"If-Modified-Since": since}),
        ("invoices page with lines", "/Invoices", {"pageSize": 1000}, None),
        ("invoices page with lines, order=UpdatedDateUTC DESC", "/Invoices", {"pageSize": 1000, "order": "UpdatedDateUTC DESC"}, None),
        ("invoices page, where Status==AUTHORISED", "/Invoices", {"pageSize": 1000, "where": 'Status=="AUTHORISED"'}, None),
    ]  # fmt: skip
    rows = []
    try:
        with httpx.Client(timeout=120) as client:
            for label, path, params, headers in cases:
                middle = max(1, args.contacts // 1000 // 2)
                cold, count, size = timed(client, base + path, {**params, "page": middle}, headers)
                warm = [
                    timed(client, base + path, {**params, "page": p}, headers)[0]
                    for p in range(1, args.repeats + 1)
                ]
                row = {
                    "case": label,
                    "records": count,
                    "bytes": size,
                    "cold_ms": round(cold * 1000, 1),
                    "warm_median_ms": round(statistics.median(warm) * 1000, 1),
                    "warm_max_ms": round(max(warm) * 1000, 1),
                }
                rows.append(row)
                print(f"{label:55s} {count:5d} records {size / 1e6:6.2f} MB  cold {row['cold_ms']:7.1f} ms  "
                      f"warm median {row['warm_median_ms']:7.1f} ms (max {row['warm_max_ms']:.1f})", flush=True)  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    results["pages"] = rows
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
