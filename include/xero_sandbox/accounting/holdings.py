"""What an organisation holds, counted by the sandbox itself: the ground truth for "fewest possible calls".

Clients report what they think they read; benchmarks, ``make run``'s summary and tests compare against this
instead (``GET /sandbox/records``, ``SandboxAdmin.records()``):

* ``held``: the records a GET returns with every record included (``includeArchived=true`` for Contacts),
  changed since ``modified_since`` where the collection honours If-Modified-Since;
* ``listed``: what a plain GET returns (archived contacts and tracking categories left out), likewise;
* ``paged``: whether Xero pages the collection (then a full read costs ceil(count / pageSize) calls, at least one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import entities, listing

if TYPE_CHECKING:
    from .store import OrgStore

ALL_SPECS = (*entities.TRANSACTIONAL, *entities.SETTINGS, *entities.READ_ONLY)


def _count(org: OrgStore, spec: entities.EntitySpec, params: dict[str, str], since: str | None) -> int:
    extra = None
    if spec is entities.TRACKING_CATEGORIES and params.get("includearchived") != "true":
        extra = lambda record: record.get("Status") == "ACTIVE"  # noqa: E731 (as the route filters)
    return len(listing.list_records(org, spec, params, since, extra=extra, extra_key=("holdings",)).records)


def holdings(org: OrgStore, modified_since: str | None = None) -> dict[str, dict[str, Any]]:
    """Per wire collection: held, listed, paged (see the module docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for spec in ALL_SPECS:
        out[spec.collection] = {
            "held": _count(org, spec, {"includearchived": "true"}, modified_since),
            "listed": _count(org, spec, {}, modified_since),
            "paged": spec.paged,
        }
    out["Organisations"] = {"held": 1, "listed": 1, "paged": False}
    return out


def fewest_calls(
    counts: dict[str, dict[str, Any]], collections: Iterable[str], page_size: int, *, key: str = "held"
) -> int:
    """The fewest GETs that read ``collections`` whole: ceil(count / page_size) per paged collection (at least
    one, to learn that nothing changed), one per unpaged collection."""
    total = 0
    for collection in collections:
        item = counts[collection]
        total += max(1, math.ceil(item[key] / page_size)) if item["paged"] else 1
    return total
