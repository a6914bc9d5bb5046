"""Xero's Accounting API (``/api.xro/2.0``) for the sandbox: entities, reads, writes and validation.

Public interface (the platform's contract):

* ``router``: a FastAPI ``APIRouter`` with paths relative to ``/api.xro/2.0`` in Xero's canonical casing.
* ``ROUTE_SEGMENTS``: the canonical collection names served, for case-insensitive path matching.
* ``OrgStore``: one organisation in memory (``xero_sandbox.accounting.store``).
"""

from . import readonly
from .entities import ROUTE_SEGMENTS
from .routes import router
from .store import ElementResult, NotFound, OrgStore

router.include_router(readonly.router)

__all__ = ["ROUTE_SEGMENTS", "ElementResult", "NotFound", "OrgStore", "router"]
