"""The webhook key: stored encrypted (secrets.py), used to check `x-xero-signature` in constant time.

Xero signs each request with base64(HMAC-SHA256(webhook key, raw body)). The receiver recomputes it over the raw
bytes it received (never a re-serialised body) and compares with `hmac.compare_digest`. Every stored key is
tried (a rotation keeps the old app's key until Xero uses the new one), all of them every time, so the time
taken does not depend on which key matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import Connection, text

from xero_crm_sync import db
from xero_crm_sync.connections import utcnow
from xero_crm_sync.secrets import SecretBox


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify(keys: dict[str, str], body: bytes, header: str | None) -> str | None:
    """The app (client id) whose key signed `body` as `header` says, or None. Every key is checked."""
    if not header or not keys:
        return None
    given = header.strip().encode()
    matched = None
    for client_id, key in keys.items():
        if hmac.compare_digest(signature(key, body).encode(), given):
            matched = client_id
    return matched


def set_key(conn: Connection, client_id: str, key: str, box: SecretBox | None = None) -> None:
    """Store (or replace) the app's webhook key, encrypted."""
    if not key.strip():
        raise ValueError("the webhook key is empty")
    box = box or SecretBox.from_env()
    now = db.bind_time(utcnow(), conn.dialect.name)
    conn.execute(
        text(
            "INSERT INTO webhook_key (client_id, key_blob, created_at, updated_at) VALUES (:c, :k, :now, :now) "
            "ON CONFLICT (client_id) DO UPDATE SET key_blob = excluded.key_blob, updated_at = excluded.updated_at"
        ),
        {"c": client_id, "k": box.encrypt(key.strip()), "now": now},
    )


def load_keys(conn: Connection, box: SecretBox | None = None) -> dict[str, str]:
    """Every stored webhook key by client id, decrypted (in memory of the receiver only)."""
    rows = conn.execute(text("SELECT client_id, key_blob FROM webhook_key ORDER BY client_id")).all()
    if not rows:
        return {}
    box = box or SecretBox.from_env()
    return {client_id: box.decrypt(blob) for client_id, blob in rows}
