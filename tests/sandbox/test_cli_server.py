"""The CLI (`python -m xero_sandbox serve | describe`), SandboxServer in both modes, and the state file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from xero_sandbox.server import SandboxServer
from xero_sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, tenant_id_for

from .conftest import api_headers, get_token


def test_describe_prints_entity_counts_per_organisation():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xero_sandbox",
            "describe",
            "--seed",
            "3",
            "--contacts",
            "20",
            "--tenants",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    described = json.loads(result.stdout)
    assert [t["tenantName"] for t in described] == ["Demo Company (NZ)", "Demo Company 2 (NZ)"]
    for tenant in described:
        assert tenant["entities"]["Contacts"] == 20
        assert tenant["entities"]["Accounts"] > 0
    # Stable tenant ids: a pipeline configured against seed 3 finds the same organisations next run.
    assert [t["tenantId"] for t in described] == [tenant_id_for(3, 0), tenant_id_for(3, 1)]


def test_subprocess_server_prints_what_to_set_and_stops_cleanly(tmp_path):
    state_file = tmp_path / "sandbox.state"
    server = SandboxServer(mode="subprocess", contacts=10, tenants=2, state_file=state_file)
    with server:
        banner = "\n".join(server.output())
        for expected in (
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            f"XERO_LOGIN_URL={server.url}",
            f"XERO_IDENTITY_URL={server.url}",
            f"XERO_API_URL={server.url}",
            "http://127.0.0.1:<any port>/callback",
            "Demo Company 2 (NZ)",
        ):
            assert expected in banner
        token = get_token(server)
        connections = httpx.get(f"{server.url}/connections", headers=api_headers(token)).json()
        assert len(connections) == 2
        tenant = connections[0]["tenantId"]
        created = httpx.put(
            f"{server.url}/api.xro/2.0/Contacts",
            headers=api_headers(token, tenant),
            json={"Contacts": [{"Name": "Persisted Ltd"}]},
        )
        assert created.status_code == 200
        proc = server._proc
        url = server.url
    assert proc is not None and proc.poll() is not None  # the process is gone
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/sandbox/health", timeout=2)

    # The state file written on shutdown brings back the organisations, what was written, and the tokens.
    assert state_file.exists()
    with SandboxServer(state_file=state_file) as restored:
        refreshed = httpx.post(
            f"{restored.url}/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )
        assert refreshed.status_code == 200
        found = httpx.get(
            f"{restored.url}/api.xro/2.0/Contacts",
            params={"where": 'Name=="Persisted Ltd"'},
            headers=api_headers(refreshed.json(), tenant),
        )
        assert [c["Name"] for c in found.json()["Contacts"]] == ["Persisted Ltd"]


def test_thread_server_stop_frees_the_port():
    server = SandboxServer(contacts=2, tenants=1).start()
    url = server.url
    assert httpx.get(f"{url}/sandbox/health").json()["ok"] is True
    assert server.env() == {"XERO_LOGIN_URL": url, "XERO_IDENTITY_URL": url, "XERO_API_URL": url}
    server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/sandbox/health", timeout=2)


def test_serve_help_documents_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "xero_sandbox", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    for option in (
        "--port",
        "--seed",
        "--contacts",
        "--tenants",
        "--min-limit",
        "--day-limit",
        "--window-seconds",
    ):
        assert option in result.stdout
    for option in ("--no-limits", "--auto-consent", "--state-file", "--describe"):
        assert option in result.stdout


def test_a_subprocess_sandbox_does_not_outlive_its_starter():
    """A benchmark killed mid-run must not leave a sandbox behind (it would hold CPU and a port)."""
    starter = (
        "import os\n"
        "from xero_sandbox.server import SandboxServer\n"
        "server = SandboxServer(mode='subprocess', contacts=1, tenants=1).start()\n"
        "print(server._proc.pid, flush=True)\n"
        "os._exit(0)  # dies without stop()\n"
    )
    result = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=120)
    sandbox_pid = int(result.stdout.strip())
    deadline = time.monotonic() + 30
    while _alive(sandbox_pid):
        assert time.monotonic() < deadline, f"sandbox {sandbox_pid} outlived its starter"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, now init, reaps it in its own time).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
