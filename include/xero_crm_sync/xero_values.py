"""Reading values the way Xero writes them: `/Date(ms+zzzz)/` dates, ISO dates, numbers and booleans.

Every parser is total: it returns a value or raises `ValueError` with a message fit for a quarantine reason.
Staging calls them through `convert`, which turns the error into a per-field reason instead of a crash, so one
malformed record never stops a run (the record is quarantined by validation, the rest loads).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
# Postgres and SQLite both store these; anything outside is a data error, not a crash.
_MIN = datetime(1753, 1, 1, tzinfo=UTC)
_MAX = datetime(9999, 12, 31, tzinfo=UTC)
MAX_NUMERIC = Decimal("1e15")


def parse_xero_datetime(value: Any) -> datetime:
    """`/Date(1573755038314+0000)/` or ISO 8601 -> aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a date string, got {type(value).__name__}")
    m = _MS_DATE.match(value.strip())
    if m:
        try:
            # The offset in /Date(ms+hhmm)/ is informational: the milliseconds are already UTC.
            result = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m.group(1)))
        except OverflowError as exc:
            raise ValueError(f"date out of range: {value[:40]!r}") from exc
    else:
        try:
            result = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not a date: {value[:40]!r}") from exc
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)
        result = result.astimezone(UTC)
    if not _MIN <= result <= _MAX:
        raise ValueError(f"date out of range: {value[:40]!r}")
    return result


def parse_xero_date(value: Any) -> date:
    """A calendar date (invoice Date, DueDate): Xero sends midnight `/Date(...)/` or `2019-11-14T00:00:00`."""
    return parse_xero_datetime(value).date()


def parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float | Decimal):
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value[:40]!r}") from exc
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not result.is_finite() or abs(result) >= MAX_NUMERIC:
        raise ValueError(f"number out of range: {str(value)[:40]}")
    return result


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected true or false, got {str(value)[:40]!r}")


def parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected an integer, got {str(value)[:40]!r}")


def parse_text(value: Any) -> str:
    if isinstance(value, str):
        # NUL cannot be stored by PostgreSQL text, nor a lone surrogate by any UTF-8 database (JSON can carry
        # one as an escape): the characters we cannot keep verbatim.
        if "\x00" in value:
            raise ValueError("text contains a NUL character")
        if not is_storable(value):
            raise ValueError("text contains an unpaired surrogate (invalid UTF-16 escape)")
        return value
    if isinstance(value, bool | dict | list):
        raise ValueError(f"expected text, got {type(value).__name__}")
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise ValueError(f"expected text, got {type(value).__name__}")


def is_storable(text: str) -> bool:
    """False when the text holds a lone surrogate, which UTF-8 (so neither database) can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def format_xero_datetime(value: datetime) -> str:
    """For request headers and bodies: ISO 8601 to the second, UTC (what If-Modified-Since accepts)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
