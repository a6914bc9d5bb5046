"""GET collection semantics: If-Modified-Since, where, order, IDs/Statuses/... filters, includeArchived, paging.

Ordering is cached per collection version (see ``Collection.ordered``), so paging through 100,000 contacts costs
one sort, then a filter pass and a slice per page. The default order is Xero's: UpdatedDateUTC ascending, then the
ID (``default_order``); an explicit ``order`` is always tie-broken by the entity's ID.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from . import entities, render, schema
from .entities import EntitySpec
from .query import compile_where, parse_order, sort_records
from .wire import BadDate, parse_if_modified_since

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
Predicate = Callable[["Record"], bool]


@dataclass
class Page:
    records: list[Record]
    view: str
    pagination: dict[str, int] | None


def _csv(value: str | None) -> list[str]:
    if not value:
        return []
    return [
        part.strip().strip('"').strip("'").strip() for part in value.split(",") if part.strip().strip('"')
    ]


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def list_records(
    org: OrgStore,
    spec: EntitySpec,
    params: dict[str, str],
    if_modified_since: str | None,
    extra: Predicate | None = None,
    extra_key: Any = None,
) -> Page:
    """The records a GET on ``spec``'s collection returns for these (lower-cased) query parameters.

    ``extra`` is a route-specific filter and ``extra_key`` what it depends on (part of the cache key).
    Raises QueryError for a ``where``/``order`` Xero would refuse.
    """
    collection = org.collection(spec.collection)
    lookup = org.lookup
    since = _since(if_modified_since) if spec.modified_since else None
    where = params.get("where", "").strip()
    order = params.get("order", "").strip()
    predicate = compile_where(spec.model, where) if where else None  # parse errors surface before any work
    keys = parse_order(spec.model, order) if order else default_order(spec)
    filters = _filters(spec, params, extra)
    if predicate is not None:
        filters.append(lambda record: predicate(record, lookup))

    references = "." in where or any(model is not None for key in keys for model in key.models)
    dependency = (org.contacts.version, org.invoices.version) if references else None
    signature = (
        "query",
        where,
        keys,
        since,
        tuple(
            sorted(
                (k, v) for k, v in params.items() if k not in ("page", "pagesize", "unitdp", "summaryonly")
            )
        ),
        extra_key,
    )

    def ordered_records() -> list[Record]:
        if not keys:
            return collection.values()
        return collection.ordered(
            ("order", keys), dependency, lambda records: sort_records(records, keys, spec.id_field, lookup)
        )

    def compute(_snapshot: list[Record]) -> list[Record]:
        records = ordered_records()
        checks = list(filters)
        if since is not None:
            if keys and keys[0].path == ("UpdatedDateUTC",):
                # Ordered by UpdatedDateUTC: the records modified since the header are one contiguous run.
                records = _cut_since(records, since, descending=keys[0].descending)
            else:
                checks.insert(0, lambda record: (record.get("UpdatedDateUTC") or since) >= since)
        if not checks:
            return records
        if len(checks) == 1:
            only = checks[0]
            return [record for record in records if only(record)]
        return [record for record in records if all(check(record) for check in checks)]

    # Cached until the next write: paging through a filtered set filters it once, not once per page.
    matched = collection.ordered(signature, dependency, compute)

    summary = (
        spec in (entities.CONTACTS, entities.INVOICES) and params.get("summaryonly", "").lower() == "true"
    )
    # summaryOnly=true always pages (100 a page when no page is named): docs/SANDBOX.md.
    paging = spec.paged and ("page" in params or (spec.page_size and "pagesize" in params) or summary)
    if not paging:
        return Page(matched, render.LIST if spec.paged else render.FULL, None)
    page = max(1, _int(params.get("page"), 1))
    size = DEFAULT_PAGE_SIZE
    if spec.page_size:
        size = min(MAX_PAGE_SIZE, max(1, _int(params.get("pagesize"), DEFAULT_PAGE_SIZE)))
    start = (page - 1) * size
    pagination = {
        "page": page,
        "pageSize": size,
        "pageCount": math.ceil(len(matched) / size),
        "itemCount": len(matched),
    }
    return Page(matched[start : start + size], render.SUMMARY if summary else render.PAGE, pagination)


@cache
def default_order(spec: EntitySpec) -> tuple[Any, ...]:
    """Xero's order when the request names none: UpdatedDateUTC ascending, then the ID, for every model that has
    an UpdatedDateUTC (tap-xero relies on it; docs/SANDBOX.md); creation order for the others (currencies...)."""
    if "updateddateutc" not in schema.fields_of(spec.model):
        return ()
    return parse_order(spec.model, "UpdatedDateUTC ASC")


def _filters(spec: EntitySpec, params: dict[str, str], extra: Predicate | None) -> list[Predicate]:
    filters: list[Predicate] = []
    ids = {value.lower() for value in _csv(params.get("ids"))}
    if ids:
        id_field = spec.id_field
        filters.append(lambda record: str(record.get(id_field, "")).lower() in ids)
    if spec is entities.CONTACTS:
        if not ids and params.get("includearchived", "").strip().lower() != "true":
            filters.append(lambda record: record.get("ContactStatus") != "ARCHIVED")
        _search(filters, params, ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress"))
    if spec is entities.INVOICES:
        numbers = {value.casefold() for value in _csv(params.get("invoicenumbers"))}
        if numbers:
            filters.append(lambda record: str(record.get("InvoiceNumber", "")).casefold() in numbers)
        contact_ids = {value.lower() for value in _csv(params.get("contactids"))}
        if contact_ids:
            filters.append(lambda record: record["Contact"]["ContactID"].lower() in contact_ids)
        _search(filters, params, ("InvoiceNumber", "Reference"))
    if spec in (entities.INVOICES, entities.CREDIT_NOTES, entities.PAYMENTS):
        statuses = {value.upper() for value in _csv(params.get("statuses"))}
        if statuses:
            filters.append(lambda record: record.get("Status") in statuses)
    if extra is not None:
        filters.append(extra)
    return filters


def _cut_since(records: list[Record], since: datetime, *, descending: bool) -> list[Record]:
    """The run of records with UpdatedDateUTC >= since in a list sorted by UpdatedDateUTC (binary search)."""
    low, high = 0, len(records)
    while low < high:
        middle = (low + high) // 2
        stamp = records[middle].get("UpdatedDateUTC")
        recent = stamp is not None and stamp >= since
        # descending: recent records come first, so look right while still recent; ascending: the opposite
        if recent == descending:
            low = middle + 1
        else:
            high = middle
    return records[:low] if descending else records[low:]


def _since(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        return parse_if_modified_since(header)
    except BadDate:
        return None  # HTTP says an unparseable If-Modified-Since is ignored


def _search(filters: list[Predicate], params: dict[str, str], fields: tuple[str, ...]) -> None:
    term = params.get("searchterm", "").strip().casefold()
    if not term:
        return

    def matches(record: Any) -> bool:
        return any(term in str(record.get(name, "")).casefold() for name in fields)

    filters.append(matches)
