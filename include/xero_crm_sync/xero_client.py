"""The Accounting API over an authenticated `requests` session: paging, pacing, bounded retries, typed errors.

The session is a requests-oauthlib `OAuth2Session` built by `xero_crm_sync.tokens` (automatic refresh, the new
token saved on every refresh); this module never sees a secret and never logs headers.

Limits (O3): per organisation 60 calls a minute and 5 at once, per app 10,000 a minute, 5,000 a day.
- `RateGate` paces this process under the per-minute and concurrency limits, so we rarely see a 429 at all.
- A 429 is honoured with its Retry-After; a spent *daily* limit raises `DailyLimitReached` at once: the run stops
  cleanly and the next scheduled run resumes from the watermark (waiting hours inside a task would hold a worker).
- 5xx, timeouts and reset connections are retried with capped exponential backoff and jitter, a bounded number of
  times, each retry logged. Writes are retried only with an Idempotency-Key, so a retry can never duplicate.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import requests

from xero_crm_sync.entities import Entity
from xero_crm_sync.xero_values import format_xero_datetime

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # Xero's maximum: the fewest calls for a full read


class XeroError(Exception):
    """A call to Xero failed; `status` and `detail` say how (never a token or secret)."""

    def __init__(self, message: str, *, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class XeroAuthError(XeroError):
    """401: the access token was refused (revoked, or the authorising user removed): the connection needs a
    reconnect."""


class XeroForbidden(XeroError):
    """403: the connection lacks the scope for this endpoint, or the tenant is not connected."""


class XeroNotFound(XeroError):
    pass


class XeroRateLimited(XeroError):
    def __init__(self, message: str, *, problem: str, retry_after: float, status: int = 429) -> None:
        super().__init__(message, status=status, detail={"problem": problem, "retry_after": retry_after})
        self.problem = problem
        self.retry_after = retry_after


class DailyLimitReached(XeroRateLimited):
    """The organisation's 5,000 calls a day are spent: stop the run cleanly, resume on a later run."""


class XeroValidationError(XeroError):
    """400 with Xero's ValidationException body (`detail` holds the parsed body)."""


class XeroUnavailable(XeroError):
    """5xx, timeouts or resets persisted past the retry budget."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # first try + 5 retries for transient faults
    max_rate_limit_waits: int = 10  # 429s (minute/concurrent/app) we will wait out per call
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0  # longer waits than this are treated like a spent limit
    timeout: tuple[float, float] = (10.0, 120.0)  # connect, read


@dataclass(frozen=True)
class Limits:
    calls_per_minute: int = 60
    concurrent: int = 5
    window_seconds: float = 60.0


class RateGate:
    """In-process pacing for one tenant: at most `calls_per_minute` starts per window, `concurrent` in flight."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(limits.concurrent)
        self.waited_seconds = 0.0

    def __enter__(self) -> RateGate:
        self._slots.acquire()
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.limits.window_seconds:
                    self._starts.popleft()
                if len(self._starts) < self.limits.calls_per_minute:
                    self._starts.append(now)
                    return self
                wait = self.limits.window_seconds - (now - self._starts[0])
            self.waited_seconds += wait
            self._sleep(max(wait, 0.001))

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


_GATES: dict[str, RateGate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(tenant_id: str, limits: Limits | None = None) -> RateGate:
    """One gate per tenant per process, shared by every client of that tenant."""
    with _GATES_LOCK:
        gate = _GATES.get(tenant_id)
        if gate is None or (limits is not None and gate.limits != limits):
            gate = _GATES[tenant_id] = RateGate(limits or Limits())
        return gate


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "waited_seconds": round(self.waited_seconds, 3),
            "by_path": dict(self.by_path),
        }


@dataclass(frozen=True)
class Page:
    records: list[Any]
    page: int
    page_count: int | None
    item_count: int | None


_TRANSIENT_STATUS = {500, 502, 503, 504}


class XeroClient:
    """Small public methods over one tenant's Accounting API; all HTTP goes through `request`."""

    def __init__(
        self,
        session: requests.Session,
        api_url: str,
        tenant_id: str,
        *,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.base = api_url.rstrip("/") + "/api.xro/2.0"
        self.tenant_id = tenant_id
        self.retry = retry or RetryPolicy()
        self.gate = gate_for(tenant_id, limits)
        self.stats = CallStats()
        self._sleep = sleep
        self._rng = rng or random.Random()

    # --- reads -------------------------------------------------------------------------------------------

    def iter_pages(self, entity: Entity, *, modified_since: datetime | None = None) -> Iterator[Page]:
        """Every record of `entity` (changed since `modified_since`), one Xero page at a time.

        Paged entities ask for 1,000 a page and stop at the `pagination.pageCount` Xero reports, so a read costs
        ceil(records / 1000) calls (one when nothing changed) and memory holds one page at a time.
        """
        params: dict[str, Any] = dict(entity.extra_params)
        if entity.include_archived:
            params["includeArchived"] = "true"
        if entity.order:
            params["order"] = entity.order
        headers = {}
        if modified_since is not None and entity.modified_since:
            headers["If-Modified-Since"] = format_xero_datetime(modified_since)
        page = 1
        while True:
            if entity.paged:
                params.update(page=page, pageSize=PAGE_SIZE)
            body = self.get_json(entity.path, params=params, headers=headers)
            records = body.get(entity.collection) or []
            pagination = body.get("pagination") or {}
            page_count = pagination.get("pageCount")
            yield Page(records, page, page_count, pagination.get("itemCount"))
            if not entity.paged:
                return
            # Stop on Xero's own page count; fall back to "a short page is the last" if it sends none.
            if page_count is not None:
                if page >= int(page_count):
                    return
            elif len(records) < PAGE_SIZE:
                return
            page += 1

    def get_json(
        self, path: str, *, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = self.request("GET", path, params=params, headers=headers)
        if response.status_code == 304:
            return {}
        # orjson parses a 1,000-record page about twice as fast as requests' json (a third of extract's CPU).
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            # What orjson refuses and Xero may still send (a lone surrogate escape, a number beyond a double):
            # the stdlib reads it, and staging quarantines the record that cannot be stored, not the whole page.
            log.warning("%s: a page orjson cannot read; parsed with the standard json module", path)
            return json.loads(response.content)

    def organisation(self) -> dict[str, Any]:
        return (self.get_json("Organisation").get("Organisations") or [{}])[0]

    # --- writes ------------------------------------------------------------------------------------------

    def write_batch(
        self,
        method: str,
        path: str,
        collection: str,
        records: list[dict[str, Any]],
        *,
        idempotency_key: str,
        summarize_errors: bool = False,
    ) -> dict[str, Any]:
        """PUT/POST a batch with `summarizeErrors=false`: Xero answers 200 with per-element ValidationErrors."""
        response = self.request(
            method,
            path,
            params={"summarizeErrors": "true" if summarize_errors else "false"},
            json={collection: records},
            idempotency_key=idempotency_key,
        )
        return response.json()

    # --- the one place HTTP happens ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> requests.Response:
        url = f"{self.base}/{path.lstrip('/')}"
        all_headers = {"xero-tenant-id": self.tenant_id, "Accept": "application/json", **(headers or {})}
        if idempotency_key:
            all_headers["Idempotency-Key"] = idempotency_key
        retryable_write = method == "GET" or bool(idempotency_key)
        attempt = 0
        rate_waits = 0
        while True:
            attempt += 1
            try:
                with self.gate:
                    self.stats.calls += 1
                    self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
                    response = self.session.request(
                        method, url, params=params, json=json, headers=all_headers, timeout=self.retry.timeout
                    )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not retryable_write or attempt >= self.retry.max_attempts:
                    raise XeroUnavailable(
                        f"{method} {path}: {type(exc).__name__} after {attempt} attempts"
                    ) from None
                self._backoff(method, path, attempt, type(exc).__name__)
                continue

            status = response.status_code
            if status < 400 or status == 304:
                return response
            if status == 429:
                problem = response.headers.get("X-Rate-Limit-Problem", "minute").lower()
                retry_after = _retry_after(response)
                self.stats.rate_limited += 1
                if problem == "day" or retry_after > self.retry.max_retry_after:
                    raise DailyLimitReached(
                        f"{method} {path}: Xero's daily call limit is spent (retry after {retry_after:.0f} s)",
                        problem=problem,
                        retry_after=retry_after,
                    )
                rate_waits += 1
                if rate_waits > self.retry.max_rate_limit_waits:
                    raise XeroRateLimited(
                        f"{method} {path}: still rate limited ({problem}) after {rate_waits - 1} waits",
                        problem=problem,
                        retry_after=retry_after,
                    )
                log.warning(
                    "Xero rate limit (%s) on %s %s: waiting %.1f s as Retry-After asks",
                    problem,
                    method,
                    path,
                    retry_after,
                )
                self.stats.waited_seconds += retry_after
                self._sleep(retry_after)
                continue
            if status in _TRANSIENT_STATUS and retryable_write and attempt < self.retry.max_attempts:
                self._backoff(method, path, attempt, f"HTTP {status}")
                continue
            raise _error_for(method, path, response)

    def _backoff(self, method: str, path: str, attempt: int, reason: str) -> None:
        delay = min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (attempt - 1))
        delay *= 0.5 + self._rng.random() / 2  # jitter: many workers must not retry in lockstep
        self.stats.retries += 1
        self.stats.waited_seconds += delay
        log.warning(
            "Xero %s %s failed (%s); retry %d of %d in %.2f s",
            method,
            path,
            reason,
            attempt,
            self.retry.max_attempts - 1,
            delay,
        )
        self._sleep(delay)


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def _error_for(method: str, path: str, response: requests.Response) -> XeroError:
    status = response.status_code
    body = _body(response)
    where = f"{method} {path}"
    if status == 401:
        return XeroAuthError(
            f"{where}: Xero refused the access token (401); reconnect needed", status=status, detail=body
        )
    if status == 403:
        return XeroForbidden(
            f"{where}: not allowed (403): missing scope or organisation not connected",
            status=status,
            detail=body,
        )
    if status == 404:
        return XeroNotFound(f"{where}: not found (404)", status=status, detail=body)
    if status == 400 and isinstance(body, dict) and body.get("Type") == "ValidationException":
        return XeroValidationError(f"{where}: {validation_messages(body)}", status=status, detail=body)
    if status >= 500:
        return XeroUnavailable(f"{where}: Xero answered {status} after retries", status=status, detail=body)
    message = body.get("Message") or body.get("Detail") if isinstance(body, dict) else None
    return XeroError(
        f"{where}: HTTP {status}{': ' + str(message) if message else ''}", status=status, detail=body
    )


def validation_messages(body: dict[str, Any]) -> str:
    """Xero's ValidationException body -> one readable line ("Contact 2: The contact name ... ; ...")."""
    messages: list[str] = []
    for element in body.get("Elements") or []:
        for error in element.get("ValidationErrors") or []:
            if error.get("Message"):
                messages.append(error["Message"])
    return "; ".join(dict.fromkeys(messages)) or body.get("Message", "validation failed")
