"""The one place that keeps Xero secrets out of logs: known values are masked, token-shaped text is scrubbed.

- `remember(*values)`: every secret this process holds in plaintext (access and refresh tokens, the client
  secret) is registered here as soon as it is decrypted or received. Registered values are masked by
  `redact()` and handed to the sinks: the Airflow hook adds Airflow's `mask_secret`, so task logs shown in the
  Airflow UI mask them too, and the supervisor process is told as well.
- `redact(text)`: masks registered values and anything shaped like a token in transit (`Bearer ...`,
  `refresh_token=...`, `"access_token": "..."`, an authorization `code=`), for messages built from foreign
  text (HTTP bodies, exception strings) before they are logged or stored.
- `quiet_secret_loggers()`: requests-oauthlib and oauthlib log whole token responses at DEBUG, and urllib3 logs
  request lines (the OAuth callback carries the authorization code); those loggers never go below INFO.
- `RedactingFilter`: a logging filter for handlers this project owns (the CLI's), running `redact()` on every
  record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable

MASK = "***"
_MIN_SECRET_LENGTH = 8  # shorter strings are not secrets we issue, and masking them would shred ordinary text

_lock = threading.Lock()
_known: set[str] = set()
_sinks: list[Callable[[str], None]] = []

# Token-shaped text in transit: header values, form fields, JSON fields and query parameters.
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]{8,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|id_token|client_secret|code_verifier|token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]{4,}"
    ),
    re.compile(r"(?i)([?&]code=)[^&\s\"']+"),
)


def remember(*values: str | None) -> None:
    """Register plaintext secrets so they are masked wherever this process logs."""
    fresh = [v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH]
    with _lock:
        fresh = [v for v in fresh if v not in _known]
        _known.update(fresh)
        sinks = list(_sinks)
    for value in fresh:
        for sink in sinks:
            try:
                sink(value)
            except Exception:  # a sink that fails must not break the caller; masking here still holds
                logging.getLogger(__name__).warning("a secret sink failed", exc_info=False)


def remember_token(token: dict | None) -> None:
    """Register the secrets of an OAuth2 token set."""
    if token:
        remember(token.get("access_token"), token.get("refresh_token"), token.get("id_token"))


def add_sink(sink: Callable[[str], None]) -> None:
    """Also hand every registered secret (past and future) to `sink` (e.g. Airflow's `mask_secret`)."""
    with _lock:
        if sink in _sinks:
            return
        _sinks.append(sink)
        known = list(_known)
    for value in known:
        sink(value)


def redact(text: object, extra: Iterable[str] = ()) -> str:
    """`text` with every registered secret (and `extra`) masked and token-shaped values scrubbed."""
    result = str(text)
    with _lock:
        values = sorted({*_known, *(v for v in extra if v)}, key=len, reverse=True)
    for value in values:
        if value in result:
            result = result.replace(value, MASK)
    for pattern in _PATTERNS:
        result = pattern.sub(lambda m: m.group(1) + MASK, result)
    return result


class RedactingFilter(logging.Filter):
    """Rewrite each record's message through `redact()` (args are rendered first, then cleared)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks print str(exception): render them here, redacted, and drop the raw exception.
            formatted = logging.Formatter().formatException(record.exc_info)
            record.msg = f"{record.msg}\n{redact(formatted)}"
            record.exc_info, record.exc_text = None, None
        return True


_SECRET_LOGGERS = ("requests_oauthlib", "oauthlib", "urllib3.connectionpool")


def quiet_secret_loggers() -> None:
    """Keep the OAuth and HTTP libraries' DEBUG output (which carries tokens and codes) switched off, even
    when the root logger is later set to DEBUG (an explicit level on the logger wins over the root's)."""
    for name in _SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.WARNING)


def install_filter(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add `RedactingFilter` to `handlers` (default: the root logger's)."""
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


quiet_secret_loggers()
