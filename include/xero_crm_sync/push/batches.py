"""Batches of at most 50 elements a request, and Idempotency-Keys derived from what is sent (pure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

BATCH_SIZE = 50  # Xero's advice for batched writes: at most 50 elements a request
MAX_KEY_LENGTH = 128  # Xero's limit for Idempotency-Key

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def canonical_json(value: Any) -> str:
    """The body as stored and hashed: sorted keys, no spaces, so equal content gives an equal key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def batch_key(kind: str, connection_id: int, batch_id: int, body: Any) -> str:
    """The Idempotency-Key of one persisted batch: stable for its resends (same id, same body), new for any other
    batch. The batch id keeps two pushes of identical content at different times (A -> B -> A) apart: Xero
    would answer the second with the first's response and write nothing."""
    digest = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()[:24]
    return _bounded(f"xcs-{kind}-{connection_id}-{batch_id}-{digest}")


def order_key(action: str, order_id: int, attempt: int, order_fingerprint: str) -> str:
    """The Idempotency-Key of one order's invoice creation or deletion. Fixed per attempt, so retries and reruns
    of the attempt cannot create a second invoice; a new attempt (after Xero rejected the last one, whose
    answer it would otherwise replay) gets a new key. The fingerprint (order number and creation time) keeps
    ids of a restored or another CRM database apart."""
    digest = hashlib.sha256(order_fingerprint.encode("utf-8")).hexdigest()[:16]
    return _bounded(f"xcs-order-{order_id}-{action}-{attempt}-{digest}")


def _bounded(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"Idempotency-Key longer than {MAX_KEY_LENGTH} characters: {key[:40]}...")
    return key
