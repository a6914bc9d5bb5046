"""Runs inside tap-xero's own virtualenv: tap-xero's ``main`` with Xero's hosts redirected to the sandbox.

tap-xero hard-codes ``https://identity.xero.com/connect/token`` and ``https://api.xero.com/api.xro/2.0``. Its files
stay untouched: every ``requests.Session`` it makes gets a transport adapter mounted for those two origins that
sends the same path and query to ``XERO_SANDBOX_URL`` instead. Only the standard library and tap-xero's own
dependencies may be imported here (this file is executed by the tap's interpreter, not the project's).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

XERO_ORIGINS = ("https://identity.xero.com", "https://api.xero.com")


class ToSandbox(HTTPAdapter):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = self.target + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def redirect_sessions(target: str) -> None:
    original_init = requests.Session.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        for origin in XERO_ORIGINS:
            self.mount(origin, ToSandbox(target))

    requests.Session.__init__ = init


if __name__ == "__main__":
    redirect_sessions(os.environ["XERO_SANDBOX_URL"])
    import tap_xero

    sys.argv[0] = "tap-xero"
    tap_xero.main()
