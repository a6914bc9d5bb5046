"""What a task process does with a connection, runnable in a spawned process (multiprocessing pickles only names
from importable modules): build its own engine and store, wait for the others, then call Xero."""

from __future__ import annotations

import os
from typing import Any


def call_connections(
    url: str, connection_id: int, xero_url: str, barrier: Any, results: Any, repeat: int = 1
) -> None:
    os.environ.update({"XERO_LOGIN_URL": xero_url, "XERO_IDENTITY_URL": xero_url, "XERO_API_URL": xero_url})
    from xero_crm_sync import db
    from xero_crm_sync.connections import ConnectionStore
    from xero_crm_sync.oauth import allow_loopback_http
    from xero_crm_sync.settings import get_settings

    settings = get_settings()
    allow_loopback_http(xero_url)
    store = ConnectionStore(db.get_engine(url))
    try:
        session = store.session(connection_id, settings)
        barrier.wait(timeout=60)
        statuses = [session.get(settings.connections_url, timeout=30).status_code for _ in range(repeat)]
        results.put({"pid": os.getpid(), "statuses": statuses, "refreshes": session.refreshes})
    except Exception as exc:  # reported to the test, which fails on it
        results.put({"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"})
    finally:
        db.dispose_engine(url)
