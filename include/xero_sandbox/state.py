"""Everything one sandbox holds: organisations, apps and users, tokens, limits, faults, journal, counters.

`build_state(...)` makes the default sandbox (the documented demo app and user, N generated organisations);
`save_state` / `load_state` persist it between runs (`serve --state-file`), so a pipeline can keep its tokens
and the organisations keep what it wrote.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from xero_sandbox.clock import Clock
from xero_sandbox.counters import Counters
from xero_sandbox.faults import FaultPlan
from xero_sandbox.idempotency import IdempotencyCache
from xero_sandbox.journal import RequestJournal
from xero_sandbox.limits import LimitConfig, RateLimiter
from xero_sandbox.oauth import App, Identity, User
from xero_sandbox.signing import TokenSigner
from xero_sandbox.webhooks import WebhookHub

# The demo app every local sandbox registers: fixed, documented credentials for local use only.
DEMO_CLIENT_ID = "SANDBOX-DEMO-CLIENT"
DEMO_CLIENT_SECRET = "sandbox-demo-secret-local-use-only"
DEMO_APP_NAME = "xero-crm-sync (sandbox demo)"
# A second demo app registered as "granular" (created after 2026-03-02): broad transaction scopes refused.
GRANULAR_CLIENT_ID = "SANDBOX-GRANULAR-CLIENT"
GRANULAR_CLIENT_SECRET = "sandbox-granular-secret-local-use-only"
# Desktop-style loopback redirects: any port, path /callback (RFC 8252 section 7.3).
DEMO_REDIRECT_URIS = ["http://127.0.0.1:*/callback", "http://localhost:*/callback"]
DEMO_USER_EMAIL = "demo.user@example.com"

MAX_BODY_BYTES = int(3.5 * 1024 * 1024)
_NAMESPACE = uuid.UUID("5a1d6b0e-7c1e-4d8e-9a57-0a11ce5a4db0")

# generate_org(tenant_id, name, *, seed, contacts, clock, base_currency, **sizes) -> OrgStore
OrgFactory = Callable[..., Any]


@dataclass
class SandboxConfig:
    admin_enabled: bool = True  # /sandbox/... admin paths; on by default for local use
    auto_consent: bool = False  # authorize redirects at once, granting auto_consent_tenant_ids
    auto_consent_tenant_ids: list[str] | None = None  # None: every organisation the user can access
    # Who is "signed in" when an authorize request has no login_hint.
    default_user_email: str = DEMO_USER_EMAIL
    max_body_bytes: int = MAX_BODY_BYTES


@dataclass
class Tenant:
    tenant_id: str
    name: str
    store: Any  # xero_sandbox.accounting.store.OrgStore
    created_at: datetime
    seed: int | None = None
    contacts: int | None = None
    base_currency: str = "NZD"

    def public_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "tenantId": self.tenant_id,
            "tenantName": self.name,
            "tenantType": "ORGANISATION",
            "baseCurrency": self.base_currency,
            "createdDateUtc": self.created_at.isoformat(),
        }
        if self.seed is not None:
            view["seed"] = self.seed
        if self.contacts is not None:
            view["contacts"] = self.contacts
        return view


def default_org_factory(*args: Any, **kwargs: Any) -> Any:
    from xero_sandbox.generator import generate_org  # the accounting engineer's generator

    return generate_org(*args, **kwargs)


def tenant_id_for(seed: int, index: int) -> str:
    """Stable tenant ids: the same seed serves the same organisations, run after run."""
    return str(uuid.uuid5(_NAMESPACE, f"tenant:{seed}:{index}"))


def tenant_name_for(index: int) -> str:
    return "Demo Company (NZ)" if index == 0 else f"Demo Company {index + 1} (NZ)"


@dataclass
class SandboxState:
    clock: Clock
    config: SandboxConfig
    identity: Identity
    limits: RateLimiter
    tenants: dict[str, Tenant] = field(default_factory=dict)
    faults: FaultPlan = field(default_factory=FaultPlan)
    idempotency: IdempotencyCache = field(default_factory=IdempotencyCache)
    journal: RequestJournal = field(default_factory=RequestJournal)
    counters: Counters = field(default_factory=Counters)
    org_factory: OrgFactory = default_org_factory
    webhooks: WebhookHub = field(default_factory=WebhookHub)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        self._attach_webhooks()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("webhooks", WebhookHub())
        self._lock = threading.RLock()
        self._attach_webhooks()

    def _attach_webhooks(self) -> None:
        """Writes to contacts, invoices and credit notes become webhook events for apps connected to the org."""
        connections = self.identity.connections
        self.webhooks.connected = lambda client_id, tenant_id: any(
            c.client_id == client_id and c.tenant_id == tenant_id for c in list(connections.values())
        )
        for tenant in self.tenants.values():
            self._listen(tenant.store)

    def _listen(self, store: Any) -> None:
        if hasattr(store, "commit"):  # an organisation store (tests of the platform alone use stand-ins)
            store.listener = self.webhooks.record_changes

    def add_tenant(
        self,
        name: str,
        *,
        seed: int,
        contacts: int,
        tenant_id: str | None = None,
        base_currency: str = "NZD",
        grant_users: list[str] | None = None,
        **sizes: Any,
    ) -> Tenant:
        """Generate an organisation and let the given users (default: the demo user) connect it."""
        tenant_id = tenant_id or str(uuid.uuid4())
        with self._lock:
            if tenant_id in self.tenants:
                raise ValueError(f"tenant {tenant_id} already exists")
        store = self.org_factory(
            tenant_id,
            name,
            seed=seed,
            contacts=contacts,
            clock=self.clock.now,
            base_currency=base_currency,
            **sizes,
        )
        tenant = Tenant(tenant_id, name, store, self.clock.now(), seed, contacts, base_currency)
        self._listen(store)
        with self._lock:
            self.tenants[tenant_id] = tenant
            emails = grant_users if grant_users is not None else [self.config.default_user_email]
            for email in emails:
                user = self.identity.user_by_email(email)
                if user is not None:
                    user.tenant_ids.add(tenant_id)
                    self.show_user(tenant_id, user)
        return tenant

    def show_user(self, tenant_id: str, user: User) -> None:
        """List a user who may connect the organisation in its ``GET /Users`` (Xero's users of the org)."""
        tenant = self.tenants.get(tenant_id)
        put_user = getattr(tenant.store, "put_user", None) if tenant else None
        if put_user is not None:
            put_user(user.user_id, user.email, user.given_name, user.family_name)

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id)

    def demo_app(self) -> App:
        return self.identity.apps[DEMO_CLIENT_ID]

    def demo_user(self) -> User:
        user = self.identity.user_by_email(self.config.default_user_email)
        if user is None:
            raise LookupError(f"no user {self.config.default_user_email}")
        return user


def build_state(
    *,
    seed: int = 1,
    contacts: int = 500,
    tenants: int = 1,
    limits: LimitConfig | None = None,
    config: SandboxConfig | None = None,
    clock: Clock | None = None,
    org_factory: OrgFactory | None = None,
    journal_size: int = 1000,
    signer: TokenSigner | None = None,
    **sizes: Any,
) -> SandboxState:
    """A sandbox with the demo apps and user and `tenants` generated organisations (seed, seed+1, ...).

    `signer` lets many short-lived sandboxes (tests) share one RSA key instead of generating one each.
    """
    clock = clock or Clock()
    identity = Identity(clock, signer)
    state = SandboxState(
        clock=clock,
        config=config or SandboxConfig(),
        identity=identity,
        limits=RateLimiter(clock, limits or LimitConfig()),
        journal=RequestJournal(journal_size),
        org_factory=org_factory or default_org_factory,
    )
    identity.register_app(
        DEMO_APP_NAME, DEMO_REDIRECT_URIS, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET
    )
    identity.register_app(
        "xero-crm-sync (sandbox granular demo)",
        DEMO_REDIRECT_URIS,
        client_id=GRANULAR_CLIENT_ID,
        client_secret=GRANULAR_CLIENT_SECRET,
        granular=True,
    )
    identity.add_user(
        state.config.default_user_email,
        given_name="Demo",
        family_name="User",
        user_id=str(uuid.uuid5(_NAMESPACE, f"user:{state.config.default_user_email}")),
    )
    for index in range(tenants):
        state.add_tenant(
            tenant_name_for(index),
            seed=seed + index,
            contacts=contacts,
            tenant_id=tenant_id_for(seed, index),
            **sizes,
        )
    return state


_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


class _StatePickler(pickle.Pickler):
    """Pickles locks (ours and the organisation stores') as fresh, unlocked ones."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _RLOCK):
            return threading.RLock, ()
        if isinstance(obj, _LOCK):
            return threading.Lock, ()
        return NotImplemented


def save_state(state: SandboxState, path: str | Path) -> None:
    """Pickle the state atomically (a crash mid-write leaves the previous file intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            _StatePickler(fh, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | Path) -> SandboxState:
    """Read a state written by save_state. Only load files you wrote yourself (pickle runs code)."""
    with open(path, "rb") as fh:
        state = pickle.load(fh)  # our own file, written by save_state
    if not isinstance(state, SandboxState):
        raise TypeError(f"{path} does not hold a sandbox state")
    return state
