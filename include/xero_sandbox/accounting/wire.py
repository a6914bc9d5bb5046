"""Xero's wire conventions: Microsoft JSON dates, the response envelope, no nulls, pre-encoded JSON responses.

Records live in the store with native Python values (``date``, aware ``datetime``, ``float``, ``bool``, ``str``);
this module is the one place that turns them into what Xero puts on the wire and parses what clients send back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from starlette.responses import Response

PROVIDER_NAME = "Xero Sandbox"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS_DATE_RE = re.compile(r"^/Date\((-?\d+)([+-]\d{2}:?\d{2})?\)/$")


# --------------------------------------------------------------------------------------------------- dates out
def ms_date(value: date | datetime) -> str:
    """``/Date(1573755038314+0000)/`` for a timestamp (UTC) or a calendar date (its midnight UTC)."""
    if isinstance(value, datetime):
        delta = value.astimezone(UTC) - _EPOCH
    else:
        delta = datetime(value.year, value.month, value.day, tzinfo=UTC) - _EPOCH
    # Integer arithmetic: float seconds would lose the millisecond for dates far from the epoch.
    millis = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return f"/Date({millis}+0000)/"


def date_string(value: date) -> str:
    """The ``DateString`` companion Xero sends next to a ``Date``: ``2019-11-14T00:00:00``."""
    return f"{value.isoformat()}T00:00:00"


def utc_string(value: datetime) -> str:
    """The ``UpdatedDateUTCString`` companion: ``2018-11-02T16:31:30Z``."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def to_millis(value: datetime) -> datetime:
    """Truncate to whole milliseconds: Xero's timestamps carry no more, so stamps equal what clients read back."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


# ---------------------------------------------------------------------------------------------------- dates in
class BadDate(ValueError):
    """A date a client sent that Xero would not understand."""


def parse_datetime_input(value: Any) -> datetime:
    """Parse a client timestamp: ``/Date(ms[+hhmm])/``, ISO 8601 with or without offset (naive means UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        raise BadDate(f"not a date: {value!r}")
    text = value.strip()
    match = _MS_DATE_RE.match(text)
    if match:
        # The offset in /Date(ms+hhmm)/ is informational: the milliseconds are already UTC.
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError as exc:
        raise BadDate(f"not a date: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date_input(value: Any) -> date:
    """Parse a client calendar date (``Date``, ``DueDate``...): ISO date, ISO timestamp or ``/Date(ms)/``.

    A timestamp with an offset keeps its local calendar day (``2021-10-18T00:00:00+11:00`` is 18 October), as
    Xero reads the date part a client meant, not the UTC instant.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _MS_DATE_RE.match(text):
            return parse_datetime_input(text).date()
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text).date()
        except ValueError:
            pass
    raise BadDate(f"not a date: {value!r}")


def parse_if_modified_since(header: str) -> datetime:
    """The ``If-Modified-Since`` header as an aware UTC datetime truncated to the second.

    Xero accepts ISO 8601 (with or without offset; without means UTC) and the HTTP RFC 1123 form, and compares
    to the second, so ``2020-02-06T12:17:43.202-08:00`` means every record updated at or after 20:17:43 UTC.
    """
    text = header.strip()
    try:
        parsed = parse_datetime_input(text)
    except BadDate:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise BadDate(f"not a date: {header!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


# ------------------------------------------------------------------------------------------------ wire values
def to_wire(value: Any) -> Any:
    """Native record -> JSON-ready value: dates as ``/Date()/``, ``None`` dropped (Xero omits, never nulls)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            item_kind = type(item)
            if item_kind is str or item_kind is bool or item_kind is int or item_kind is float:
                out[key] = item
            else:
                out[key] = to_wire(item)
        return out
    if kind is list:
        return [to_wire(item) for item in value if item is not None]
    if kind is datetime or kind is date:
        return ms_date(value)
    return value


def strip_nulls(value: Any) -> Any:
    """Drop JSON nulls from a client payload so absent and null mean the same thing, as they do for Xero."""
    if isinstance(value, dict):
        return {key: strip_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [strip_nulls(item) for item in value if item is not None]
    return value


# -------------------------------------------------------------------------------------------------- responses
def envelope(
    collection: str,
    items: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    provider_name: str | None = None,
    pagination: Mapping[str, int] | None = None,
    warnings: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Xero's success envelope around an already wire-shaped collection."""
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": provider_name or PROVIDER_NAME,
        "DateTimeUTC": ms_date(now),
    }
    if pagination is not None:
        body["pagination"] = dict(pagination)
    if warnings:
        body["Warnings"] = warnings
    body[collection] = list(items)
    return body


def _encode_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return ms_date(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(payload: Any) -> bytes:
    """JSON bytes with dates as ``/Date(ms+0000)/``; orjson calls back only for the dates."""
    return orjson.dumps(payload, default=_encode_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def json_response(payload: Any, status_code: int = 200) -> Response:
    """Pre-encoded orjson bytes: FastAPI's own encoder is far too slow for 1,000-record pages."""
    return Response(dumps(payload), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def not_found_response() -> Response:
    """Xero answers an unknown ID with a 404 and a bare sentence, not JSON."""
    return Response(NOT_FOUND_TEXT, status_code=404, media_type="text/html; charset=utf-8")


def validation_exception_body(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """The 400 ``ApiException`` body for a write whose elements failed validation."""
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def query_parse_exception_body(message: str) -> dict[str, Any]:
    """The 400 body for a ``where``/``order`` Xero cannot parse."""
    return {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def post_data_invalid_body(message: str) -> dict[str, Any]:
    """The 400 body for a request body that is not the JSON Xero expects."""
    return {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}
