"""Logging for the commands (`python -m xero_crm_sync ...`, `make run`): the project's own lines on the console,
libraries' only when they warn.

HTTP and framework libraries log every request at INFO (`httpx: HTTP Request: GET ...`); among a command's own
output that is noise, so the root logger stays at WARNING and only `xero_crm_sync` (and the sandbox `make run`
starts) speak at INFO. `--verbose` opens everything at DEBUG, except the loggers that would print secrets
(`redaction.quiet_secret_loggers`).
"""

from __future__ import annotations

import logging
import sys

OWN_LOGGERS = ("xero_crm_sync", "xero_sandbox")


def configure_logging(*, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        if verbose
        else logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
