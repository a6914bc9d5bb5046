"""The endpoint Xero posts webhooks to: signature first, then every event stored, then an empty 200.

Xero's rules (https://developer.xero.com/documentation/webhooks/configuring-your-server): answer within 5
seconds, 200 with no body and no cookies when the signature is right, 401 when it is wrong; intent to receive
sends empty event lists signed both ways and expects exactly that. So:

- the signature is checked over the raw bytes, in constant time, against every stored webhook key; unsigned or
  badly signed -> 401, nothing stored, nothing parsed;
- a correctly signed delivery is parsed and its events inserted in one transaction (duplicates skipped) before
  the 200: an event is durable once Xero is told it arrived. Nothing else happens in the request (no Xero call,
  no import): the xero_webhook_import DAG does that, started by a trigger watching the table;
- a correctly signed body that is not Xero's shape -> 400, nothing stored (it cannot come from Xero).

The database work runs in a worker thread (FastAPI runs `def` routes in its thread pool), so a slow database
never blocks the server's event loop. The key and the body are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine

from xero_crm_sync.connections import utcnow
from xero_crm_sync.webhooks import events, keys

log = logging.getLogger(__name__)


def create_app(engine: Callable[[], Engine]) -> FastAPI:
    app = FastAPI(title="Xero webhooks receiver", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine  # where the CRM database comes from (the deployment checks which)

    def accept(body: bytes, header: str | None) -> int:
        with engine().begin() as conn:
            client_id = keys.verify(keys.load_keys(conn), body, header)
            if client_id is None:
                return 401
            try:
                parsed = events.parse_delivery(orjson.loads(body))
            except (orjson.JSONDecodeError, events.MalformedDelivery) as exc:
                log.warning("a signed webhook delivery was refused: %s", exc)
                return 400
            new = events.store_delivery(conn, client_id, parsed, utcnow())
        if parsed:
            log.info("webhook delivery: %d events, %d new", len(parsed), new)
        return 200

    @app.post("/")
    async def receive(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body = await request.body()
        status = await run_in_threadpool(accept, body, request.headers.get("x-xero-signature"))
        return Response(status_code=status)

    return app


def standalone() -> FastAPI:
    """The receiver on its own (`uvicorn --factory xero_crm_sync.webhooks.receiver:standalone`): CRM_DATABASE_URL
    and XERO_CRM_FERNET_KEY from the environment, as for every other component."""
    from xero_crm_sync import db

    return create_app(db.get_engine)
