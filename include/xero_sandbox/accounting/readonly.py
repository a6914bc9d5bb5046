"""Read-only collections that extractors read (Singer's tap-xero, Airbyte's source-xero), with Xero's semantics.

Each answers ``GET /<Collection>`` (and ``GET /<Collection>/{id}``) as the spec describes it: If-Modified-Since
where the spec takes it, ``where``/``order``, paging where the spec pages it (100 a page; ``pageSize`` only where
the spec has it). The records live in the organisation's store (``org.collection("BankTransactions")``); Users
holds the sandbox users who may connect the organisation, the others start empty (docs/SANDBOX.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from . import entities, listing
from .entities import EntitySpec
from .query import QueryError
from .routes import _get_one, _list, _org, _params, _query_error, _respond

router = APIRouter()
JOURNALS_PAGE = 100  # https://developer.xero.com/documentation/api/accounting/journals: 100 per call


def _register(spec: EntitySpec) -> None:
    collection, id_field = spec.collection, spec.id_field

    def get_collection(request: Request) -> Response:
        return _list(request, spec)

    if spec is entities.JOURNALS:
        get_collection = get_journals

    def get_one(request: Request) -> Response:
        return _get_one(request, spec, request.path_params[id_field])

    get_collection.__name__ = f"get_{collection}"
    get_one.__name__ = f"get_{collection}_one"
    router.add_api_route(f"/{collection}", get_collection, methods=["GET"])
    router.add_api_route(f"/{collection}/{{{id_field}}}", get_one, methods=["GET"])


def get_journals(request: Request) -> Response:
    """Journals are read by number, not page: ``offset=N`` returns the next 100 with JournalNumber > N."""
    org = _org(request)
    params = _params(request)
    offset = listing._int(params.get("offset"), 0)
    payments_only = params.get("paymentsonly", "").strip().lower() == "true"
    try:
        page = listing.list_records(
            org,
            entities.JOURNALS,
            {},
            request.headers.get("if-modified-since"),
            extra=lambda record: (record.get("JournalNumber") or 0) > offset,
            extra_key=("offset", offset),
        )
    except QueryError as exc:
        return _query_error(request, exc)
    records = page.records
    if payments_only:
        records = [record for record in records if record.get("SourceType", "").endswith("PAYMENT")]
    records = sorted(records, key=lambda record: record.get("JournalNumber") or 0)[:JOURNALS_PAGE]
    return _respond(request, "Journals", records)


for _spec in entities.READ_ONLY:
    _register(_spec)
