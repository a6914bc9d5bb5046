"""Run a real sandbox (uvicorn on a free loopback port) from tests, benchmarks and the pipeline's `make run`.

    with SandboxServer(contacts=200, tenants=2) as sandbox:       # in-process: a thread
        sandbox.url, sandbox.state, sandbox.admin.journal()
    with SandboxServer(mode="subprocess", contacts=10_000) as sandbox:   # its own process (own CPU time)
        ...

Thread mode shares the process (handy: `sandbox.state` is the live state); subprocess mode keeps the sandbox's
CPU time apart from the caller's, which benchmarks of the pipeline want. Both bind 127.0.0.1 port 0 unless told
otherwise and stop cleanly (no server outlives `stop()`).
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter

from xero_sandbox.admin_client import SandboxAdmin
from xero_sandbox.limits import LimitConfig
from xero_sandbox.state import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    SandboxConfig,
    SandboxState,
    build_state,
    load_state,
    save_state,
)

READY_PREFIX = "XERO_SANDBOX_URL="


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket (port 0: the OS picks a free one; read it from getsockname())."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, log_level: str = "warning") -> uvicorn.Config:
    # Short graceful shutdown: a request held by a "timeout" fault must not keep stop() waiting.
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )


def env_for(url: str) -> dict[str, str]:
    """The three settings that point a Xero client at this sandbox."""
    return {"XERO_LOGIN_URL": url, "XERO_IDENTITY_URL": url, "XERO_API_URL": url}


class SandboxServer:
    """A running sandbox. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        mode: Literal["thread", "subprocess"] = "thread",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        contacts: int = 50,
        tenants: int = 1,
        limits: LimitConfig | None = None,
        auto_consent: bool = True,
        admin: bool = True,
        state_file: str | Path | None = None,
        accounting_router: APIRouter | None = None,
        route_segments: frozenset[str] | None = None,
        startup_timeout: float = 120.0,
        log_level: str = "warning",
    ) -> None:
        if mode not in ("thread", "subprocess"):
            raise ValueError("mode is 'thread' or 'subprocess'")
        if mode == "subprocess" and (state is not None or accounting_router is not None):
            raise ValueError("a subprocess sandbox builds its own state and uses the real accounting router")
        self.mode = mode
        self.host = host
        self.port = port
        self.seed, self.contacts, self.tenants = seed, contacts, tenants
        self.limits = limits
        self.auto_consent = auto_consent
        self.admin_enabled = admin
        self.state_file = Path(state_file) if state_file else None
        self.accounting_router = accounting_router
        self.route_segments = route_segments
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.state: SandboxState | None = state
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._admin: SandboxAdmin | None = None

    # ---- public -------------------------------------------------------------------------------------

    @property
    def admin(self) -> SandboxAdmin:
        """An HTTP client for the /sandbox admin paths (works in both modes)."""
        if self._admin is None:
            if not self.url:
                raise RuntimeError("the sandbox is not running")
            self._admin = SandboxAdmin(self.url)
        return self._admin

    @property
    def client_id(self) -> str:
        return DEMO_CLIENT_ID

    @property
    def client_secret(self) -> str:
        return DEMO_CLIENT_SECRET

    def env(self) -> dict[str, str]:
        return env_for(self.url)

    def start(self) -> SandboxServer:
        if self.url:
            return self
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_subprocess()
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
            self._server = self._thread = None
            if self.state_file is not None and self.state is not None:
                save_state(self.state, self.state_file)
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()  # SIGTERM: uvicorn shuts down gracefully, the CLI saves its state file
                try:
                    self._proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
            self._proc = None
        self.url = ""

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- thread mode --------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        from xero_sandbox.app import create_app

        if self.state is None:
            if self.state_file is not None and self.state_file.exists():
                self.state = load_state(self.state_file)
            else:
                self.state = build_state(
                    seed=self.seed,
                    contacts=self.contacts,
                    tenants=self.tenants,
                    limits=self.limits,
                    config=SandboxConfig(admin_enabled=self.admin_enabled, auto_consent=self.auto_consent),
                )
        app = create_app(
            self.state,
            accounting_router=self.accounting_router,
            route_segments=self.route_segments,
            state_file=self.state_file,
        )
        sock = bind_socket(self.host, self.port)
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(app, self.log_level))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="xero-sandbox", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        # uvicorn owns the socket now and closes it on shutdown.
        self._server, self._thread = server, thread
        self.url = f"http://{self.host}:{port}"

    # ---- subprocess mode ----------------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "xero_sandbox", "serve", "--host", self.host, "--port", str(self.port)]
        cmd += ["--seed", str(self.seed), "--contacts", str(self.contacts), "--tenants", str(self.tenants)]
        cmd += ["--log-level", self.log_level, "--watch-parent", str(os.getpid())]
        limits = self.limits or LimitConfig()
        if not limits.enabled:
            cmd.append("--no-limits")
        else:
            cmd += [
                "--min-limit", str(limits.minute),
                "--day-limit", str(limits.day),
                "--concurrent-limit", str(limits.concurrent),
                "--app-min-limit", str(limits.app_minute),
                "--window-seconds", str(limits.window_seconds),
                "--day-seconds", str(limits.day_seconds),
            ]  # fmt: skip
        if self.auto_consent:
            cmd.append("--auto-consent")
        if not self.admin_enabled:
            cmd.append("--no-admin")
        if self.state_file is not None:
            cmd += ["--state-file", str(self.state_file)]
        return cmd

    def _start_subprocess(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            self._command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._proc = proc
        found: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            # Keep reading for the process's whole life, so a chatty sandbox never blocks on a full pipe.
            assert proc.stdout is not None
            for line in proc.stdout:
                self._output.append(line.rstrip("\n"))
                if not found and line.startswith(READY_PREFIX):
                    found.append(line[len(READY_PREFIX) :].strip())
                    ready.set()
            ready.set()

        threading.Thread(target=pump, name="xero-sandbox-output", daemon=True).start()
        if not ready.wait(self.startup_timeout) or not found:
            self.stop()
            raise RuntimeError("the sandbox subprocess did not start:\n" + "\n".join(self._output))
        self.url = found[0]

    def output(self) -> list[str]:
        """The subprocess's recent output lines (diagnostics)."""
        return list(self._output)
