"""RS256 signing of the sandbox's JWTs (access and id tokens) and the JWKS that lets clients verify them.

Xero's tokens are RS256 JWTs whose claims clients read (authentication_event_id, xero_userid); the sandbox
issues the same so code that decodes them works unchanged. The key is generated on first use (not at import or
start-up: generating an RSA key costs tens of milliseconds) and kept as PEM so the state can be pickled.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenSigner:
    """Signs claims with one RSA key; `jwks()` publishes its public half."""

    def __init__(self) -> None:
        self._pem: bytes | None = None
        self._key: rsa.RSAPrivateKey | None = None
        self._kid = ""
        self._lock = threading.Lock()

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                if self._pem is None:
                    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                    self._pem = key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                loaded = serialization.load_pem_private_key(self._pem, password=None)
                assert isinstance(loaded, rsa.RSAPrivateKey)
                self._key = loaded
                n = loaded.public_key().public_numbers().n
                self._kid = hashlib.sha256(_b64url_uint(n).encode()).hexdigest()[:32].upper()
            return self._key

    @property
    def kid(self) -> str:
        self._private_key()
        return self._kid

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._private_key(), algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """Decode and check a token this signer issued (used by tests and by clients that want to)."""
        return jwt.decode(
            token,
            self._private_key().public_key(),
            algorithms=["RS256"],
            audience=audience,
            options={"verify_aud": audience is not None, "verify_exp": False, "verify_nbf": False},
        )

    def jwks(self) -> dict[str, Any]:
        numbers = self._private_key().public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "e": _b64url_uint(numbers.e),
                    "n": _b64url_uint(numbers.n),
                }
            ]
        }

    def __getstate__(self) -> dict:
        self._private_key()
        return {"pem": self._pem}

    def __setstate__(self, state: dict) -> None:
        self._pem = state["pem"]
        self._key = None
        self._kid = ""
        self._lock = threading.Lock()
