"""Singer's tap-xero against the sandbox: its own virtualenv inside the clone, one full extraction, what it read.

tap-xero pins its own ``requests``/``singer-python``/``jsonschema`` versions, so it lives in a virtualenv of its
own (``.cache/peers/tap-xero`` in the clone, or ``XERO_PEERS_DIR``), built once from
``requirements-tap-xero.txt`` and reused while that file is unchanged. Its hard-coded Xero URLs are redirected
to the sandbox by ``tap_xero_main.py`` (tap-xero's files stay untouched). Used by ``tests/sandbox`` (tap-xero
extracts exactly what the sandbox holds) and by the benchmark (a peer to compare with)::

    from xero_sandbox.peers import tap_xero
    venv = tap_xero.ensure_venv()                       # ~15 s the first time, instant afterwards
    run = tap_xero.extract(sandbox.url, tenant_id, workdir=tmp_path, venv=venv)
    run.records                                          # {"contacts": 50, "invoices": 120, ...}
    run.streams_completed, run.seconds, run.returncode
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xero_sandbox.oauth_client import authorize_headless
from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-tap-xero.txt"
RUNNER = HERE / "tap_xero_main.py"
REPO_ROOT = HERE.parents[2]
# The read scopes tap-xero's streams need, and offline_access for its refresh token.
SCOPES = (
    "offline_access",
    "accounting.transactions.read",
    "accounting.contacts.read",
    "accounting.settings.read",
    "accounting.journals.read",
)
START_DATE = "2000-01-01T00:00:00Z"  # earlier than anything the sandbox generates: a full extraction


class TapXeroError(RuntimeError):
    """tap-xero could not be installed or failed (the message carries the end of its log)."""


def default_venv() -> Path:
    base = os.environ.get("XERO_PEERS_DIR")
    return (Path(base) if base else REPO_ROOT / ".cache" / "peers") / "tap-xero"


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv(venv: Path | None = None) -> Path:
    """The tap's virtualenv, built when missing or when its requirements changed; returns its directory."""
    venv = venv or default_venv()
    marker = venv / ".requirements-sha256"
    python = venv / "bin" / "python"
    digest = _requirements_digest()
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():  # the project's .venv has uv (make install): much faster than pip
        commands = [
            [str(uv), "venv", "-q", "--python", sys.executable, str(venv)],
            [str(uv), "pip", "install", "-q", "--python", str(python), "-r", str(REQUIREMENTS)],
        ]
    else:
        commands = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "--no-cache-dir", "-r", str(REQUIREMENTS)],
        ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise TapXeroError(f"building tap-xero's virtualenv failed: {done.stderr[-2000:]}")
    marker.write_text(digest)
    return venv


def write_config(sandbox_url: str, tenant_id: str, path: Path, **options: Any) -> Path:
    """tap-xero's config for the demo app: a refresh token got through the sandbox's code flow with PKCE."""
    token = authorize_headless(sandbox_url, scopes=SCOPES)
    config = {
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "refresh_token": token["refresh_token"],
        "tenant_id": tenant_id,
        "start_date": START_DATE,
        **options,
    }
    path.write_text(json.dumps(config))
    return path


def select_all(catalog: dict[str, Any]) -> dict[str, Any]:
    """Every stream selected (tap-xero syncs only selected streams; discovery selects none)."""
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    return catalog


@dataclass
class TapRun:
    returncode: int
    records: Counter[str] = field(default_factory=Counter)  # RECORD messages per stream
    ids: dict[str, list[str]] = field(default_factory=dict)  # each stream's key values, in the order read
    streams: list[str] = field(default_factory=list)  # every stream of the catalog
    streams_started: list[str] = field(default_factory=list)  # SCHEMA messages, in order
    final_state: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    log_tail: str = ""

    @property
    def streams_completed(self) -> bool:
        """Every stream started and the tap ended its run (currently_syncing cleared, exit code 0)."""
        return (
            self.returncode == 0
            and sorted(self.streams_started) == sorted(self.streams)
            and self.final_state.get("currently_syncing") is None
        )


def _run(venv: Path, sandbox_url: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XERO_SANDBOX_URL": sandbox_url.rstrip("/")}
    env.pop("PYTHONPATH", None)  # the tap's interpreter must not see the project's packages
    # -P: the runner's directory (holding this module, also named tap_xero) must not shadow the tap's package.
    command = [str(venv / "bin" / "python"), "-P", str(RUNNER), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def extract(
    sandbox_url: str,
    tenant_id: str,
    *,
    workdir: Path,
    venv: Path | None = None,
    timeout: float = 600,
    **config_options: Any,
) -> TapRun:
    """Discover, select every stream, sync: tap-xero's full extraction of one organisation."""
    venv = ensure_venv(venv)
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(sandbox_url, tenant_id, workdir / "config.json", **config_options)
    started = time.perf_counter()
    discovered = _run(venv, sandbox_url, ["--config", str(config), "--discover"], timeout)
    if discovered.returncode != 0:
        raise TapXeroError(f"tap-xero --discover failed: {discovered.stderr[-3000:]}")
    catalog = select_all(json.loads(discovered.stdout))
    (workdir / "catalog.json").write_text(json.dumps(catalog))
    synced = _run(
        venv, sandbox_url, ["--config", str(config), "--catalog", str(workdir / "catalog.json")], timeout
    )
    run = TapRun(
        returncode=synced.returncode,
        streams=[stream["tap_stream_id"] for stream in catalog["streams"]],
        seconds=time.perf_counter() - started,
        log_tail=synced.stderr[-3000:],
    )
    keys = {stream["tap_stream_id"]: stream["key_properties"] for stream in catalog["streams"]}
    for line in synced.stdout.splitlines():
        message = json.loads(line)
        kind = message.get("type")
        if kind == "RECORD":
            stream = message["stream"]
            run.records[stream] += 1
            key = keys.get(stream) or []
            run.ids.setdefault(stream, []).append("/".join(str(message["record"].get(name)) for name in key))
        elif kind == "SCHEMA":
            run.streams_started.append(message["stream"])
        elif kind == "STATE":
            run.final_state = message["value"]
    return run
