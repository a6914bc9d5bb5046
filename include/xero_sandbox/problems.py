"""The error answers Xero's platform layer gives (before an Accounting API handler runs), byte for byte in shape.

401/403 are the problem-details bodies Xero's API gateway sends, e.g.
`{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"AuthenticationUnsuccessful","Instance":"...",
"Extensions":{}}`. "Type": null is kept because Xero sends it (the one place we send a JSON null).
400s raised here use the Accounting API's own Error schema (ErrorNumber/Type/Message).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

JSON = "application/json; charset=utf-8"


class Answer:
    """A complete HTTP answer: status, headers (as sent) and body bytes."""

    def __init__(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = JSON
    ):
        self.status = status
        self.body = body
        self.headers = {"Content-Type": content_type, **(headers or {})}

    async def send(self, send: Any) -> None:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def _problem(status: int, title: str, detail: str, correlation_id: str | None) -> bytes:
    return orjson.dumps(
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": correlation_id or str(uuid.uuid4()),
            "Extensions": {},
        }
    )


def unauthorized(detail: str = "AuthenticationUnsuccessful", correlation_id: str | None = None) -> Answer:
    return Answer(
        401,
        _problem(401, "Unauthorized", detail, correlation_id),
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(
    detail: str = "AuthorizationUnsuccessful",
    correlation_id: str | None = None,
    insufficient_scope: bool = False,
) -> Answer:
    headers = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'} if insufficient_scope else {}
    return Answer(403, _problem(403, "Forbidden", detail, correlation_id), headers)


def validation_error(message: str) -> Answer:
    return Answer(400, orjson.dumps({"ErrorNumber": 10, "Type": "ValidationException", "Message": message}))


def too_large(limit: int) -> Answer:
    return Answer(
        413,
        orjson.dumps(
            {
                "Title": "Request Entity Too Large",
                "Status": 413,
                "Detail": f"The request body exceeds {limit} bytes",
            }
        ),
    )


def rate_limited(problem: str, retry_after: int, headers: dict[str, str]) -> Answer:
    return Answer(
        429,
        orjson.dumps(
            {
                "Title": "Too Many Requests",
                "Status": 429,
                "Detail": f"You have exceeded the {problem} rate limit",
            }
        ),
        {**headers, "Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem},
    )


def server_error(correlation_id: str | None = None) -> Answer:
    return Answer(
        500,
        orjson.dumps(
            {
                "Title": "An error occurred",
                "Status": 500,
                "Detail": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com "
                "for current service status.",
                "Instance": correlation_id or str(uuid.uuid4()),
            }
        ),
    )


def unavailable() -> Answer:
    return Answer(
        503,
        orjson.dumps(
            {
                "Title": "Service Unavailable",
                "Status": 503,
                "Detail": "The Xero API is temporarily unavailable",
            }
        ),
        {"Retry-After": "1"},
    )


def gateway_timeout() -> Answer:
    return Answer(
        504, orjson.dumps({"Title": "Gateway Timeout", "Status": 504, "Detail": "The request timed out"})
    )


def oauth_error(error: str, status: int = 400) -> Answer:
    # Xero's identity server answers `{"error": "..."}` and nothing else.
    return Answer(status, orjson.dumps({"error": error}), {"Cache-Control": "no-store", "Pragma": "no-cache"})
