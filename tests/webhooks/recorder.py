"""A stand-in webhook receiver for the sandbox's own tests: answers as told and records every request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from xero_sandbox.server import bind_socket, uvicorn_config


@dataclass
class Received:
    body: bytes
    signature: str
    signed_ok: bool
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Recorder:
    """`answer(request_number, signed_ok) -> status`: default a correct receiver (200 if signed, else 401)."""

    key: str = ""
    answer: Callable[[int, bool], int] = lambda n, signed_ok: 200 if signed_ok else 401
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def start(self) -> Recorder:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            signature = request.headers.get("x-xero-signature", "")
            digest = base64.b64encode(hmac.new(self.key.encode(), body, hashlib.sha256).digest()).decode()
            signed_ok = hmac.compare_digest(digest, signature)
            status = self.answer(len(self.received), signed_ok)
            self.received.append(Received(body, signature, signed_ok, status))
            if self.delay:
                time.sleep(self.delay)
            return Response(status_code=status)

        sock = bind_socket()
        self._server = uvicorn.Server(uvicorn_config(app))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def events(self) -> list[dict[str, Any]]:
        """Every event of every accepted (200) delivery, in arrival order."""
        return [e for r in self.received if r.status == 200 for e in r.payload["events"]]

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"receiver got {len(self.received)} requests")
            time.sleep(0.02)
