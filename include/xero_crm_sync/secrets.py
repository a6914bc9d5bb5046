"""Encryption at rest for Xero secrets (client secret, access and refresh tokens): Fernet, key from configuration.

The key comes from `XERO_CRM_FERNET_KEY` (`make env` writes one into `.env` for a local clone; production sets it
from its secret store). A missing or malformed key is an error that says what to do, never a plaintext fallback.
`MultiFernet` accepts several comma-separated keys: the first encrypts, all decrypt, so keys can be rotated.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from xero_crm_sync.settings import SettingsError

KEY_VARIABLE = "XERO_CRM_FERNET_KEY"


class SecretBox:
    def __init__(self, keys: str) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
        except (ValueError, TypeError):
            raise SettingsError(
                f"{KEY_VARIABLE} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
                "generate one with `make env` or "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            ) from None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SecretBox:
        env = os.environ if environ is None else environ
        keys = env.get(KEY_VARIABLE, "").strip()
        if not keys:
            raise SettingsError(
                f"{KEY_VARIABLE} is not set: it encrypts Xero tokens and the client secret at rest. "
                "Run `make env` (writes .env for this clone) or set it from your secret store."
            )
        return cls(keys)

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            # Do not echo the ciphertext: the message must be safe to log.
            raise SettingsError(
                f"a stored Xero secret cannot be decrypted with {KEY_VARIABLE}: the key changed? "
                "Add the old key after the new one (comma-separated) or reconnect the organisation."
            ) from None

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        return json.loads(self.decrypt(token))
