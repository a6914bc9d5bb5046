"""A real distributed Airflow on this machine, for tests: scheduler, dag-processor, api-server, triggerer and a Celery
worker as separate processes, metadata on its own PostgreSQL database, Celery over Redis.

Everything it starts is isolated and bounded: a fresh AIRFLOW_HOME, free loopback ports, a Redis database number
nobody is using and a queue name of its own, each process in its own session so that `stop()` ends it and its
children (Celery's pool, task processes) and nothing else.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text

from tests.scale.worker_identity import WORKER_NAME_VARIABLE
from xero_crm_sync.airflow_env import airflow_bin, airflow_environ
from xero_crm_sync.settings import PROJECT_ROOT

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_available() -> bool:
    try:
        return bool(redis.Redis(REDIS_HOST, REDIS_PORT, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def unused_redis_db(start: int | None = None) -> int:
    """A Redis database number (1-15) holding no keys right now: other test runs may use the others."""
    start = secrets.randbelow(15) if start is None else start
    for offset in range(15):
        number = 1 + (start + offset) % 15
        if redis.Redis(REDIS_HOST, REDIS_PORT, db=number).dbsize() == 0:
            return number
    raise RuntimeError("every Redis database 1-15 holds keys: cannot pick one without clashing")


@dataclass
class AirflowCluster:
    """The processes and settings of one distributed Airflow. Use `start()`, then `stop()` in a finally."""

    home: Path
    metadata_url: str  # SQLAlchemy URL (psycopg2 driver) of an empty PostgreSQL database
    extra_env: Mapping[str, str] = field(default_factory=dict)
    worker_concurrency: int = 2
    queue: str = field(default_factory=lambda: f"xcs-{uuid.uuid4().hex[:10]}")
    worker_name: str = field(default_factory=lambda: f"celery-worker-{uuid.uuid4().hex[:8]}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.redis_db = unused_redis_db()
        self.env = self._environment()

    # --- configuration ----------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env = airflow_environ(base, self.home)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                # Our own queue: a clash in Redis with another run can never hand it our tasks.
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                # Test only: every API caller is an admin, so the test needs no login.
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Only the runs the test triggers: no scheduled runs racing them.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            }
        )
        # Tasks import include/ (installed), plugins/ (airflow_environ adds it) and, for the worker's hostname
        # callable, this tests package.
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(PROJECT_ROOT)])
        env.update(self.extra_env)
        return env

    # --- processes --------------------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = 300) -> None:
        """Run an `airflow` command to completion (e.g. `db migrate`)."""
        log = self.home / f"{args[0]}-{args[1] if len(args) > 1 else ''}.log"
        with log.open("w") as out:
            code = subprocess.run(
                [airflow_bin(), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        if code != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({code}):\n{_tail(log)}")

    def spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [airflow_bin(), *args],
            env=dict(env or self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends its children too
        )

    def start(self) -> None:
        self.run("db", "migrate")
        self.spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)])
        self.spawn("scheduler", ["scheduler"])
        self.spawn("dag-processor", ["dag-processor"])
        self.spawn("triggerer", ["triggerer", "--skip-serve-logs"])
        # The worker names itself through Airflow's hostname_callable, so task instances show where they ran.
        worker_env = {
            **self.env,
            WORKER_NAME_VARIABLE: self.worker_name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scale.worker_identity.hostname",
        }
        self.spawn(
            "celery-worker",
            [
                "celery",
                "worker",
                "--queues",
                self.queue,
                "--concurrency",
                str(self.worker_concurrency),
                "--celery-hostname",
                f"{self.worker_name}@%h",
                "--skip-serve-logs",
                "--without-gossip",
                "--without-mingle",
            ],
            worker_env,
        )

    def stop(self, grace: float = 20) -> None:
        """SIGTERM every process group, then SIGKILL what is left; clean up our keys in Redis."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            client = redis.Redis(REDIS_HOST, REDIS_PORT, db=self.redis_db)
            for key in client.scan_iter(match=f"*{self.queue}*"):
                client.delete(key)
        except redis.RedisError:
            pass

    def dead(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def logs(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- {name}.log ---\n{_tail(self.home / f'{name}.log', lines)}" for name in self.processes
        )

    # --- talking to it ------------------------------------------------------------------------------------

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.dead()
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}")
            try:
                value = check()
            except (httpx.HTTPError, OSError):
                value = None
            if value:
                return value
            time.sleep(1)
        raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s:\n{self.logs()}")

    def metadata(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(self.metadata_url.replace("+psycopg2", "+psycopg"))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params).mappings().all())
        finally:
            engine.dispose()


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group is the process's own session (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
