"""A real sandbox on a loopback port for the whole session, and helpers to get tokens the way a client does.

The session sandbox serves two small organisations with limits set out of the way (limit tests start their own
sandbox with a one-second window). Tests that move the clock, revoke, or remove users use `make_sandbox` for a
private one, so they never disturb the shared server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from xero_sandbox.accounting.store import OrgStore
from xero_sandbox.limits import LimitConfig
from xero_sandbox.oauth_client import authorize_headless
from xero_sandbox.server import SandboxServer
from xero_sandbox.signing import TokenSigner
from xero_sandbox.state import SandboxConfig, build_state

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO_ROOT / "vendor" / "xero-openapi"  # Xero's OpenAPI specs, vendored with their MIT licence

SPEC_FILES = ("xero_accounting.yaml", "xero-identity.yaml", "LICENSE")

# Limits out of the way for tests that are not about limits (headers are still sent).
GENEROUS_LIMITS = LimitConfig(minute=1_000_000, day=10_000_000, concurrent=100, app_minute=10_000_000)

ALL_SCOPES = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "accounting.transactions",
    "accounting.contacts",
    "accounting.settings",
    "accounting.reports.read",
    "accounting.attachments",
    "accounting.journals.read",
]


def _contacts_only_org(
    tenant_id: str, name: str, *, seed: int, contacts: int, clock: Any, **options: Any
) -> Any:
    """Until the demo generator is importable: an organisation with Xero's default settings and N contacts."""
    store = OrgStore(tenant_id, name, base_currency=options.get("base_currency", "NZD"), clock=clock)
    store.create_contacts([{"Name": f"Sandbox Contact {seed}-{i:04d}"} for i in range(contacts)])
    return store


def _org_factory() -> tuple[Any, bool]:
    try:
        from xero_sandbox.generator import generate_org
    except ImportError:
        return _contacts_only_org, False
    return generate_org, True


ORG_FACTORY, REAL_GENERATOR = _org_factory()

requires_generator = pytest.mark.skipif(
    not REAL_GENERATOR,
    reason="needs xero_sandbox.generator (the demo organisation generator) to be importable",
)


# One RSA key for every sandbox of the session: generating one costs ~0.1 s per sandbox.
SIGNER = TokenSigner()


def start_sandbox(
    *,
    contacts: int = 12,
    tenants: int = 2,
    limits: LimitConfig | None = None,
    auto_consent: bool = True,
    admin: bool = True,
    seed: int = 1,
    state_file: Path | None = None,
) -> SandboxServer:
    state = build_state(
        seed=seed,
        contacts=contacts,
        tenants=tenants,
        limits=limits or GENEROUS_LIMITS,
        config=SandboxConfig(admin_enabled=admin, auto_consent=auto_consent),
        org_factory=ORG_FACTORY,
        signer=SIGNER,
    )
    return SandboxServer(state, state_file=state_file).start()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(contacts=40, tenants=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Start private sandboxes (stopped at the end of the test)."""
    started: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        server = start_sandbox(**options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tenant_ids(sandbox: SandboxServer) -> list[str]:
    return [t["tenantId"] for t in sandbox.admin.tenants()]


def get_token(server: SandboxServer, scopes: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Authorization code + PKCE (S256) with requests-oauthlib, through auto-consent."""
    return authorize_headless(server.url, scopes=scopes or ALL_SCOPES, **options)


@pytest.fixture(scope="session")
def token(sandbox: SandboxServer) -> dict[str, Any]:
    """A full-scope token for read-mostly tests (never revoke it: use make_sandbox for that)."""
    return get_token(sandbox)


def api_headers(token: dict[str, Any], tenant_id: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json", **extra}
    if tenant_id:
        headers["xero-tenant-id"] = tenant_id
    return headers


@pytest.fixture(scope="session")
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    missing = [name for name in SPEC_FILES if not (SPEC_DIR / name).is_file()]
    if missing:  # never a skip: the conformance tests are the sandbox's proof
        pytest.fail(
            f"Xero's OpenAPI specs are missing from {SPEC_DIR}: {', '.join(missing)} (see its README)"
        )
    return SPEC_DIR


os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the sandbox listens on plain-http loopback


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A hung call (xero-python waits forever by default) fails its test in two minutes, with thread stacks,
    instead of eating the suite's whole budget."""
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).parent == here and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(120))
