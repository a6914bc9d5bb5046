"""Xero's webhooks, as the sandbox sends them: subscriptions per app, intent to receive, signed batched deliveries.

What Xero documents (https://developer.xero.com/documentation/webhooks/overview and
https://developer.xero.com/documentation/webhooks/configuring-your-server), and how the sandbox models it:

- Webhooks are configured per app: a delivery URL and a webhook key; events come for every organisation connected
  to the app, in the categories subscribed to (CONTACT, INVOICE, CREDITNOTE), for CREATE and UPDATE (archiving is
  an UPDATE). A payment changes its invoice, so paying an invoice is an INVOICE UPDATE.
- Intent to receive: before any event is delivered, Xero POSTs an empty event list signed correctly and one signed
  incorrectly; the URL must answer 200 to the first and 401 to the second, within 5 seconds, with no body. Only
  then is the subscription OK. (Stricter reading: both answers must come within the 5 s and have no body.)
- Every request carries `x-xero-signature`: base64(HMAC-SHA256(webhook key, raw body)).
- Payload: `events`, `firstEventSequence`, `lastEventSequence`, `entropy`; event: resourceUrl, resourceId,
  eventDateUtc, eventType, eventCategory, tenantId, tenantType (+ `data` {Type, Status} for credit notes), as in
  Xero's OpenAPI webhooks spec.
- A delivery not answered 200 within 5 s is retried "with decreasing frequency for up to 24 hours", then the
  subscription is disabled. The sandbox retries with exponential back-off (capped) and disables after
  `give_up_seconds` of failures (both configurable: tests shorten them).
- Xero does not document batching or ordering; the sandbox takes the strict reading: events are batched (a short
  window, at most `max_events` per payload), delivered at least once, and a retried batch goes out after newer
  ones, so deliveries may arrive out of order and more than once.

Fault options per subscription: drop (the delivery is lost for good: "webhooks stopped"), delay, duplicate,
reorder, and wrong signature (the attempt is signed with another key, then retried correctly).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)

CATEGORIES = {"Contacts": "CONTACT", "Invoices": "INVOICE", "CreditNotes": "CREDITNOTE"}
ID_FIELDS = {"Contacts": "ContactID", "Invoices": "InvoiceID", "CreditNotes": "CreditNoteID"}
RESPONSE_LIMIT_SECONDS = 5.0  # Xero: "responds within 5 seconds with a 200"


def sign(key: str, body: bytes) -> str:
    """Xero's x-xero-signature: base64 of the HMAC-SHA256 of the raw body with the webhook key."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _entropy(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(20))


def _event_time(value: Any) -> str:
    stamp = value if isinstance(value, datetime) else datetime.now(UTC)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


@dataclass
class WebhookFaults:
    """Faults applied to deliveries (fractions are per delivery, seeded; counts are the next N deliveries)."""

    drop: float = 0.0  # lost for good, never retried
    drop_count: int = 0
    delay_seconds: float = 0.0  # every delivery waits this long (others may overtake it)
    duplicate: float = 0.0  # a delivered payload is sent once more
    reorder: float = 0.0  # the delivery is held back behind the next one
    wrong_signature: int = 0  # the next N attempts are signed with another key (then retried correctly)
    seed: int = 0


@dataclass
class Subscription:
    id: str
    client_id: str
    url: str
    key: str
    categories: set[str]
    resource_base: str
    status: str = (
        "PENDING"  # PENDING -> OK (intent to receive passed) | FAILED; DISABLED after 24 h of failures
    )
    status_detail: str = ""
    sequence: int = 0
    faults: WebhookFaults = field(default_factory=WebhookFaults)
    pending: list[dict[str, Any]] = field(default_factory=list)  # events waiting for the batch window
    first_pending_at: float | None = None
    failing_since: float | None = None
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("events", "deliveries", "attempts", "delivered", "failed_attempts", "dropped", "duplicated"), 0
        )
    )

    def view(self, *, with_key: bool = False) -> dict[str, Any]:
        out = {
            "id": self.id,
            "client_id": self.client_id,
            "url": self.url,
            "categories": sorted(self.categories),
            "status": self.status,
            "status_detail": self.status_detail,
            "faults": asdict(self.faults),
            "pending_events": len(self.pending),
            "stats": dict(self.stats),
        }
        if with_key:
            out["key"] = self.key
        return out


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    subscription_id: str = field(compare=False)
    body: bytes = field(compare=False)
    events: int = field(compare=False)
    attempt: int = field(default=0, compare=False)
    duplicate: bool = field(default=False, compare=False)


@dataclass
class WebhookConfig:
    batch_seconds: float = 0.5  # events of this long are sent in one payload
    max_events: int = 100  # events per payload at most
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    give_up_seconds: float = 86_400.0  # Xero: retried for up to 24 hours, then disabled
    timeout_seconds: float = RESPONSE_LIMIT_SECONDS


class WebhookHub:
    """The sandbox's webhook subscriptions and their delivery worker (a daemon thread, started on first use).

    `connected(client_id, tenant_id)` says whether an app may hear about a tenant (set by the state: the app
    has a connection to the organisation).
    """

    def __init__(self, config: WebhookConfig | None = None) -> None:
        self.config = config or WebhookConfig()
        self.subscriptions: dict[str, Subscription] = {}
        self.connected: Callable[[str, str], bool] = lambda client_id, tenant_id: True
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[_Delivery] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._in_flight = 0
        self._rngs: dict[str, random.Random] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "subscriptions": self.subscriptions}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.connected = lambda client_id, tenant_id: True
        self._init_runtime()

    # --- subscriptions ---------------------------------------------------------------------------------

    def subscribe(
        self,
        client_id: str,
        url: str,
        *,
        key: str | None = None,
        categories: set[str] | None = None,
        resource_base: str = "https://api.xero.com",
    ) -> Subscription:
        """Create (or replace) the app's subscription; it delivers nothing until `validate` passes."""
        wanted = categories or set(CATEGORIES.values())
        unknown = wanted - set(CATEGORIES.values())
        if unknown:
            raise ValueError(f"unknown event categories {sorted(unknown)}; use {sorted(CATEGORIES.values())}")
        sub = Subscription(
            id=str(uuid.uuid4()),
            client_id=client_id,
            url=url,
            # Xero's keys are long random strings shown in the developer portal.
            key=key or base64.b64encode(secrets.token_bytes(48)).decode(),
            categories=set(wanted),
            resource_base=resource_base.rstrip("/"),
        )
        with self._lock:
            for old in [s for s in self.subscriptions.values() if s.client_id == client_id]:
                del self.subscriptions[old.id]
            self.subscriptions[sub.id] = sub
        return sub

    def get(self, subscription_id: str) -> Subscription:
        try:
            return self.subscriptions[subscription_id]
        except KeyError:
            raise LookupError(f"no webhook subscription {subscription_id}") from None

    def remove(self, subscription_id: str) -> None:
        with self._lock:
            self.subscriptions.pop(subscription_id, None)

    def set_faults(self, subscription_id: str, faults: WebhookFaults) -> Subscription:
        sub = self.get(subscription_id)
        with self._lock:
            sub.faults = faults
            self._rngs[sub.id] = random.Random(faults.seed)
        return sub

    def validate(self, subscription_id: str) -> Subscription:
        """Intent to receive: one correctly signed and one incorrectly signed empty payload; OK only on 200 then
        401, each within Xero's 5 seconds and with no body. Blocks for at most two timeouts."""
        sub = self.get(subscription_id)
        rng = random.Random()
        verdicts: list[str] = []
        for correct in (True, False):
            body = json.dumps(
                {"events": [], "lastEventSequence": 0, "firstEventSequence": 0, "entropy": _entropy(rng)},
                separators=(",", ":"),
            ).encode()
            signature = sign(sub.key if correct else sub.key + "-wrong", body)
            expected = 200 if correct else 401
            try:
                response = self._post(sub.url, body, signature)
            except httpx.HTTPError as exc:
                verdicts.append(
                    f"{'signed' if correct else 'mis-signed'} request failed: {type(exc).__name__}"
                )
                continue
            if response.status_code != expected:
                verdicts.append(
                    f"{'correctly' if correct else 'incorrectly'} signed payload answered "
                    f"{response.status_code}, expected {expected}"
                )
            elif correct and response.content:
                verdicts.append("the 200 answer has a body (Xero expects none)")
        with self._lock:
            sub.status, sub.status_detail = ("FAILED", "; ".join(verdicts)) if verdicts else ("OK", "")
            sub.failing_since = None
        if sub.status == "OK":
            self._ensure_worker()
        return sub

    # --- events -----------------------------------------------------------------------------------------

    def record_changes(self, tenant_id: str, changes: list[tuple[str, dict[str, Any], bool]]) -> None:
        """Called by the organisation store after a write: (collection, stored record, created?) each."""
        events = []
        for collection, record, created in changes:
            category = CATEGORIES.get(collection)
            if category is None:
                continue
            events.append((collection, category, record, created))
        if not events or not self.subscriptions:
            return
        now = time.monotonic()
        with self._lock:
            for sub in self.subscriptions.values():
                if sub.status != "OK" or not self.connected(sub.client_id, tenant_id):
                    continue
                for collection, category, record, created in events:
                    if category not in sub.categories:
                        continue
                    resource_id = record[ID_FIELDS[collection]]
                    event: dict[str, Any] = {
                        "resourceUrl": f"{sub.resource_base}/api.xro/2.0/{collection}/{resource_id}",
                        "resourceId": resource_id,
                        "tenantId": tenant_id,
                        "tenantType": "ORGANISATION",
                        "eventCategory": category,
                        "eventType": "CREATE" if created else "UPDATE",
                        "eventDateUtc": _event_time(record.get("UpdatedDateUTC")),
                    }
                    if category == "CREDITNOTE":
                        event["data"] = {"Type": record.get("Type"), "Status": record.get("Status")}
                    sub.pending.append(event)
                    sub.stats["events"] += 1
                if sub.pending and sub.first_pending_at is None:
                    sub.first_pending_at = now
            self._wake.notify_all()
        self._ensure_worker()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending, queued or in flight (for tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = not self._queue and not self._in_flight
                idle = idle and not any(s.pending for s in self.subscriptions.values() if s.status == "OK")
            if idle:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify_all()

    # --- the worker -------------------------------------------------------------------------------------

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="xero-sandbox-webhooks", daemon=True)
                self._thread.start()

    def _rng(self, sub: Subscription) -> random.Random:
        return self._rngs.setdefault(sub.id, random.Random(sub.faults.seed))

    def _batch(self, now: float) -> None:
        """Turn each subscription's pending events into deliveries once its batch window has passed."""
        for sub in self.subscriptions.values():
            if sub.status != "OK" or not sub.pending or sub.first_pending_at is None:
                continue
            if now - sub.first_pending_at < self.config.batch_seconds:
                continue
            while sub.pending:
                events, sub.pending = (
                    sub.pending[: self.config.max_events],
                    sub.pending[self.config.max_events :],
                )
                first = sub.sequence + 1
                sub.sequence += len(events)
                payload = {
                    "events": events,
                    "firstEventSequence": first,
                    "lastEventSequence": sub.sequence,
                    "entropy": _entropy(self._rng(sub)),
                }
                body = json.dumps(payload, separators=(",", ":")).encode()
                sub.stats["deliveries"] += 1
                due = now + sub.faults.delay_seconds
                if sub.faults.reorder and self._rng(sub).random() < sub.faults.reorder:
                    due += self.config.batch_seconds * 2 + 0.5  # the next batch overtakes this one
                heapq.heappush(self._queue, _Delivery(due, next(self._order), sub.id, body, len(events)))
            sub.first_pending_at = None

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                self._batch(now)
                if self._queue and self._queue[0].due <= now:
                    delivery = heapq.heappop(self._queue)
                    self._in_flight += 1
                else:
                    waits = [self._queue[0].due - now] if self._queue else []
                    waits += [
                        s.first_pending_at + self.config.batch_seconds - now
                        for s in self.subscriptions.values()
                        if s.pending and s.first_pending_at is not None and s.status == "OK"
                    ]
                    self._wake.wait(timeout=max(0.01, min(waits)) if waits else 1.0)
                    continue
            try:
                self._deliver(delivery)
            except Exception:  # the worker must survive anything one delivery does
                log.exception("webhook delivery failed unexpectedly")
            finally:
                with self._lock:
                    self._in_flight -= 1

    def _deliver(self, delivery: _Delivery) -> None:
        sub = self.subscriptions.get(delivery.subscription_id)
        if sub is None or sub.status != "OK":
            return
        faults, rng = sub.faults, self._rng(sub)
        with self._lock:
            if faults.drop_count > 0 or (faults.drop and rng.random() < faults.drop):
                faults.drop_count = max(0, faults.drop_count - 1)
                sub.stats["dropped"] += 1
                return
            wrong = faults.wrong_signature > 0
            if wrong:
                faults.wrong_signature -= 1
            sub.stats["attempts"] += 1
        signature = sign(sub.key + "-wrong" if wrong else sub.key, delivery.body)
        try:
            ok = self._post(sub.url, delivery.body, signature).status_code == 200
        except httpx.HTTPError:
            ok = False
        now = time.monotonic()
        with self._lock:
            if ok:
                sub.stats["delivered"] += 1
                sub.failing_since = None
                if not delivery.duplicate and faults.duplicate and rng.random() < faults.duplicate:
                    sub.stats["duplicated"] += 1
                    copy = _Delivery(now + 0.05, next(self._order), sub.id, delivery.body, delivery.events)
                    copy.duplicate = True
                    heapq.heappush(self._queue, copy)
                return
            sub.stats["failed_attempts"] += 1
            sub.failing_since = sub.failing_since or now
            if now - sub.failing_since >= self.config.give_up_seconds:
                sub.status = "DISABLED"
                sub.status_detail = "deliveries failed for longer than the retry period; re-enable it"
                return
            wait = min(self.config.retry_max_seconds, self.config.retry_base_seconds * 2**delivery.attempt)
            delivery.attempt += 1
            delivery.due = now + wait
            delivery.order = next(self._order)
            heapq.heappush(self._queue, delivery)

    def _post(self, url: str, body: bytes, signature: str) -> httpx.Response:
        return httpx.post(
            url,
            content=body,
            headers={"Content-Type": "application/json", "x-xero-signature": signature},
            timeout=self.config.timeout_seconds,
        )
