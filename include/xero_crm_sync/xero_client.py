"""The Accounting API over an authenticated `requests` session: paging, pacing, bounded retries, typed errors.

The session is a requests-oauthlib `OAuth2Session` (`oauth.XeroSession`, built by `ConnectionStore.session`:
automatic refresh, the new token saved on every refresh); this module never sees a secret and never logs headers.

Limits (O3): per organisation 60 calls a minute, 5,000 a day and 5 at once, per app 10,000 a minute.
- Every call goes through the shared limiter (`limiter.py`: state in the CRM database, so every process and worker
  of every DAG counts against the same windows), so a 429 should not happen at all.
- A 429 is still honoured with its Retry-After; a spent *daily* limit (ours or Xero's) raises `DailyLimitReached`
  at once: the run stops cleanly and the next scheduled run resumes from the watermark (waiting hours inside a
  task would hold a worker).
- 5xx, timeouts and reset connections are retried (tenacity) with capped exponential backoff and jitter, a bounded
  number of times, each retry logged ("retry N of M"). Writes are retried only with an Idempotency-Key, so a retry
  within Xero's key window can never duplicate; past it, the callers look Xero up before writing again.
"""

from __future__ import annotations

import json
import json as _json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import requests
from sqlalchemy import Engine
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from xero_crm_sync.entities import Entity
from xero_crm_sync.limiter import DayBudgetSpent, Limiter, Limits, limiter_for
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
        engine: Engine | None = None,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """`engine`: the CRM database, whose shared limiter paces this client with every other process calling
        the organisation (without one, a limiter for this process only); `limits` default to Xero's."""
        self.session = session
        self.base = api_url.rstrip("/") + "/api.xro/2.0"
        self.tenant_id = tenant_id
        self.app_id = str(getattr(session, "client_id", None) or "app")
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or limiter_for(engine, limits)
        self.stats = CallStats()
        self._sleep = sleep
        self._rng = rng or random.Random()

    # --- reads -------------------------------------------------------------------------------------------

    def iter_pages(
        self, entity: Entity, *, modified_since: datetime | None = None, ids: Sequence[str] = ()
    ) -> Iterator[Page]:
        """Every record of `entity` (changed since `modified_since`, or just those `ids`), one page at a time.

        Paged entities ask for 1,000 a page and stop at the `pagination.pageCount` Xero reports, so a read costs
        ceil(records / 1000) calls (one when nothing changed) and memory holds one page at a time.
        """
        params: dict[str, Any] = dict(entity.extra_params)
        if ids:
            params["IDs"] = ",".join(ids)  # Xero's IDs filter: many records in one call (webhook imports)
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
        data = None
        if json is not None:
            # One byte-for-byte body per content (sorted keys): a resend with the same Idempotency-Key must be
            # "the same request" to Xero, even when its body was rebuilt or read back from the database.
            data = _json.dumps(json, sort_keys=True, separators=(",", ":")).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        retryable = method == "GET" or bool(idempotency_key)
        where = f"{method} {path}"
        tries = {"transient": 0, "rate": 0}

        def once() -> requests.Response:
            try:
                with self.limiter.call(self.tenant_id, self.app_id) as waited:
                    self.stats.waited_seconds += waited
                    self.stats.calls += 1
                    self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
                    response = self.session.request(
                        method, url, params=params, data=data, headers=all_headers, timeout=self.retry.timeout
                    )
            except DayBudgetSpent as exc:
                raise DailyLimitReached(
                    f"{where}: the organisation's daily call budget is spent (retry after {exc.retry_after:.0f} s)",
                    problem="day",
                    retry_after=exc.retry_after,
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                tries["transient"] += 1
                if not retryable:
                    raise XeroUnavailable(f"{where}: {type(exc).__name__} after 1 attempts") from None
                raise _Transient(type(exc).__name__, None) from None
            status = response.status_code
            if status < 400 or status == 304:
                return response
            if status == 429:
                problem = response.headers.get("X-Rate-Limit-Problem", "minute").lower()
                retry_after = _retry_after(response)
                self.stats.rate_limited += 1
                if problem == "day" or retry_after > self.retry.max_retry_after:
                    raise DailyLimitReached(
                        f"{where}: Xero's daily call limit is spent (retry after {retry_after:.0f} s)",
                        problem=problem,
                        retry_after=retry_after,
                    )
                tries["rate"] += 1
                raise _RateLimited(problem, retry_after)
            if status in _TRANSIENT_STATUS and retryable:
                tries["transient"] += 1
                raise _Transient(f"HTTP {status}", response)
            raise _error_for(method, path, response)

        def stop(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _RateLimited):
                return tries["rate"] > self.retry.max_rate_limit_waits
            return tries["transient"] >= self.retry.max_attempts

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _RateLimited):
                return error.retry_after
            delay = min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (tries["transient"] - 1))
            return delay * (0.5 + self._rng.random() / 2)  # jitter: many workers must not retry in lockstep

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            self.stats.waited_seconds += delay
            if isinstance(error, _RateLimited):
                log.warning(
                    "Xero rate limit (%s) on %s: waiting %.1f s as Retry-After asks; wait %d of %d",
                    error.problem,
                    where,
                    delay,
                    tries["rate"],
                    self.retry.max_rate_limit_waits,
                )
                return
            self.stats.retries += 1
            log.warning(
                "Xero %s failed (%s); retry %d of %d in %.2f s",
                where,
                error,
                tries["transient"],
                self.retry.max_attempts - 1,
                delay,
            )

        retrying = Retrying(
            retry=retry_if_exception_type((_Transient, _RateLimited)),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(once)
        except _RateLimited as exc:
            raise XeroRateLimited(
                f"{where}: still rate limited ({exc.problem}) after {tries['rate'] - 1} waits",
                problem=exc.problem,
                retry_after=exc.retry_after,
            ) from None
        except _Transient as exc:
            if exc.response is not None:
                raise _error_for(method, path, exc.response) from None
            raise XeroUnavailable(f"{where}: {exc} after {tries['transient']} attempts") from None


class _Transient(Exception):
    """A fault worth retrying (a reset, a timeout, a 5xx); `response` is the 5xx answer if there was one."""

    def __init__(self, reason: str, response: requests.Response | None) -> None:
        super().__init__(reason)
        self.response = response


class _RateLimited(Exception):
    def __init__(self, problem: str, retry_after: float) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


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
