"""The Accounting API routes (mounted by the platform under ``/api.xro/2.0``).

Handlers read the organisation from ``request.state.org`` (set by the platform's middleware after
authentication, tenant lookup, scopes, limits and idempotency), set ``request.state.records_returned``, and
answer with pre-encoded orjson bytes. ``request.state.provider_name`` (the calling app's name), when the
platform sets it, becomes the envelope's ProviderName.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from . import entities, listing, render
from .collection import Record
from .entities import EntitySpec
from .query import QueryError
from .store import ElementResult, NotFound, OrgStore
from .validation import ZERO_GUID, is_guid
from .wire import (
    BadDate,
    envelope,
    json_response,
    not_found_response,
    parse_date_input,
    post_data_invalid_body,
    query_parse_exception_body,
    strip_nulls,
    validation_exception_body,
)

router = APIRouter()


# ----------------------------------------------------------------------------------------------- helpers
def _org(request: Request) -> OrgStore:
    return request.state.org


def _provider(request: Request) -> str | None:
    return getattr(request.state, "provider_name", None) or getattr(request.state, "app_name", None)


def _params(request: Request) -> dict[str, str]:
    """Query parameters by lower-cased name (Xero's are case-insensitive)."""
    return {key.lower(): value for key, value in request.query_params.items()}


def _flag(params: dict[str, str], name: str, default: bool = False) -> bool:
    value = params.get(name.lower())
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


def _unitdp(params: dict[str, str]) -> int | None:
    return 4 if params.get("unitdp", "").strip() == "4" else None


def _respond(
    request: Request,
    collection: str,
    items: list[dict[str, Any]],
    pagination: dict[str, int] | None = None,
    status_code: int = 200,
) -> Response:
    request.state.records_returned = len(items)
    org = _org(request)
    body = envelope(collection, items, now=org.now(), provider_name=_provider(request), pagination=pagination)
    return json_response(body, status_code)


def _query_error(request: Request, exc: QueryError) -> Response:
    request.state.records_returned = 0
    return json_response(query_parse_exception_body(str(exc)), 400)


def _not_found(request: Request) -> Response:
    request.state.records_returned = 0
    return not_found_response()


def _find(org: OrgStore, spec: EntitySpec, key: str, number_index: str | None = None) -> Record | None:
    collection = org.collection(spec.collection)
    record = collection.get(key) if is_guid(key) else None
    if record is None and number_index:
        record = collection.by(number_index, key)
        if record is None and number_index == "accrec_number":
            matches = collection.all_by("number", key)
            record = matches[0] if matches else None
    return record


def _get_one(request: Request, spec: EntitySpec, key: str, number_index: str | None = None) -> Response:
    org = _org(request)
    record = _find(org, spec, key, number_index)
    if record is None:
        return _not_found(request)
    renderer = render.RENDERERS[spec.collection]
    return _respond(request, spec.collection, [renderer(record, org, render.FULL, _unitdp(_params(request)))])


def _list(request: Request, spec: EntitySpec, **options: Any) -> Response:
    org = _org(request)
    params = _params(request)
    try:
        page = listing.list_records(org, spec, params, request.headers.get("if-modified-since"), **options)
    except QueryError as exc:
        return _query_error(request, exc)
    renderer = render.RENDERERS[spec.collection]
    unitdp = _unitdp(params)
    items = [renderer(record, org, page.view, unitdp) for record in page.records]
    return _respond(request, spec.collection, items, page.pagination)


# ------------------------------------------------------------------------------------------------ writes
class _BadBody(Exception):
    def __init__(self, response_body: dict[str, Any]) -> None:
        super().__init__(response_body.get("Message"))
        self.response_body = response_body


def _elements(raw: bytes, collection: str, model_label: str) -> list[dict[str, Any]]:
    """The elements of a write body: ``{"Contacts": [...]}``, a bare ``[...]`` or a single object."""
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise _BadBody(post_data_invalid_body("JSON for post data was invalid")) from exc
    if isinstance(payload, dict):
        wrapped = next((value for key, value in payload.items() if key.lower() == collection.lower()), None)
        if wrapped is not None:
            payload = wrapped
        else:
            payload = [payload] if payload else []
    if not isinstance(payload, list) or not all(isinstance(element, dict) for element in payload):
        raise _BadBody(post_data_invalid_body("JSON for post data was invalid"))
    elements = [strip_nulls(element) for element in payload]
    if not elements:
        raise _BadBody(
            {
                "ErrorNumber": 17,
                "Type": "NoDataProcessedException",
                "Message": "No data has been processed for this endpoint. This endpoint is expecting "
                f"{model_label} data to be specified in the request body.",
            }
        )
    return elements


def _failed(spec: EntitySpec, result: ElementResult) -> dict[str, Any]:
    echo = render.echo_element(spec.model, result.element)
    if spec.id_field not in echo:
        echo[spec.id_field] = ZERO_GUID
    if spec.error_flag:
        echo[spec.error_flag] = True
    echo["StatusAttributeString"] = "ERROR"
    echo["ValidationErrors"] = [{"Message": message} for message in result.errors]
    return echo


def _write_response(
    request: Request,
    spec: EntitySpec,
    results: list[ElementResult],
    *,
    summarize: bool,
    collection: str | None = None,
) -> Response:
    org = _org(request)
    collection = collection or spec.collection
    renderer = render.RENDERERS[collection]
    unitdp = _unitdp(_params(request))
    failures = [result for result in results if not result.ok]
    if failures and summarize:
        # Xero's default: a 400 naming only the failed elements; the valid ones were saved all the same.
        request.state.records_returned = 0
        return json_response(validation_exception_body([_failed(spec, result) for result in failures]), 400)
    items = []
    for result in results:
        if result.ok:
            item = renderer(result.record, org, render.FULL, unitdp)
            if not summarize:
                item["StatusAttributeString"] = "OK"
            items.append(item)
        else:
            items.append(_failed(spec, result))
    return _respond(request, collection, items)


async def _write(request: Request, spec: EntitySpec, method: str, path_id: str | None = None) -> Response:
    org = _org(request)
    params = _params(request)
    try:
        elements = _elements(await request.body(), spec.collection, spec.model)
    except _BadBody as exc:
        request.state.records_returned = 0
        return json_response(exc.response_body, 400)
    if path_id is not None:
        elements = elements[:1]
    summarize = path_id is not None or _flag(params, "summarizeErrors", default=True)
    try:
        results = await run_in_threadpool(
            org.write, spec.collection, elements, method=method, path_id=path_id, unitdp=_unitdp(params)
        )
    except NotFound:
        return _not_found(request)
    return _write_response(request, spec, results, summarize=summarize)


# --------------------------------------------------------------------------------------------- settings
@router.get("/Organisation")
@router.get("/Organisations")  # documented singular; Xero answers the plural too (tap-xero reads it)
def get_organisation(request: Request) -> Response:
    org = _org(request)
    return _respond(request, "Organisations", [render.plain(org.organisation, org)])


@router.get("/Currencies")
def get_currencies(request: Request) -> Response:
    return _list(request, entities.CURRENCIES)


@router.put("/Currencies")
async def put_currency(request: Request) -> Response:
    """Enable a currency (Xero's ``PUT /Currencies`` with ``{"Code": "USD"}``)."""
    from xero_python.accounting.models import CurrencyCode

    org = _org(request)
    try:
        elements = _elements(await request.body(), "Currencies", "Currency")
    except _BadBody as exc:
        request.state.records_returned = 0
        return json_response(exc.response_body, 400)
    results = []
    for element in elements:
        code = str(element.get("Code", "")).upper()
        try:
            CurrencyCode(code)
        except ValueError:
            results.append(ElementResult(element, None, [f"The currency code '{code}' is not valid."]))
            continue
        results.append(ElementResult(element, org.add_currency(code)))
    return _write_response(request, entities.CURRENCIES, results, summarize=True)


@router.get("/TaxRates")
def get_tax_rates(request: Request) -> Response:
    return _list(request, entities.TAX_RATES)


@router.get("/TaxRates/{TaxType}")
def get_tax_rate(request: Request, TaxType: str) -> Response:
    org = _org(request)
    record = org.tax_rate(TaxType)
    if record is None:
        return _not_found(request)
    return _respond(request, "TaxRates", [render.plain(record, org)])


@router.get("/Accounts")
def get_accounts(request: Request) -> Response:
    return _list(request, entities.ACCOUNTS)


@router.get("/Accounts/{AccountID}")
def get_account(request: Request, AccountID: str) -> Response:
    return _get_one(request, entities.ACCOUNTS, AccountID)


@router.get("/BrandingThemes")
def get_branding_themes(request: Request) -> Response:
    return _list(request, entities.BRANDING_THEMES)


@router.get("/BrandingThemes/{BrandingThemeID}")
def get_branding_theme(request: Request, BrandingThemeID: str) -> Response:
    return _get_one(request, entities.BRANDING_THEMES, BrandingThemeID)


@router.get("/TrackingCategories")
def get_tracking_categories(request: Request) -> Response:
    include_archived = _flag(_params(request), "includeArchived")
    return _list(
        request,
        entities.TRACKING_CATEGORIES,
        extra=None if include_archived else (lambda record: record.get("Status") == "ACTIVE"),
        extra_key=("includeArchived", include_archived),
    )


@router.get("/TrackingCategories/{TrackingCategoryID}")
def get_tracking_category(request: Request, TrackingCategoryID: str) -> Response:
    return _get_one(request, entities.TRACKING_CATEGORIES, TrackingCategoryID)


# --------------------------------------------------------------------------------------------- contacts
@router.get("/Contacts")
def get_contacts(request: Request) -> Response:
    return _list(request, entities.CONTACTS)


@router.put("/Contacts")
async def put_contacts(request: Request) -> Response:
    return await _write(request, entities.CONTACTS, "PUT")


@router.post("/Contacts")
async def post_contacts(request: Request) -> Response:
    return await _write(request, entities.CONTACTS, "POST")


@router.get("/Contacts/{ContactID}")
def get_contact(request: Request, ContactID: str) -> Response:
    """By ContactID, or by ContactNumber (Xero serves both on this path)."""
    return _get_one(request, entities.CONTACTS, ContactID, number_index="number")


@router.post("/Contacts/{ContactID}")
async def post_contact(request: Request, ContactID: str) -> Response:
    return await _write(request, entities.CONTACTS, "POST", path_id=ContactID)


# ------------------------------------------------------------------------------------------------ items
@router.get("/Items")
def get_items(request: Request) -> Response:
    return _list(request, entities.ITEMS)


@router.put("/Items")
async def put_items(request: Request) -> Response:
    return await _write(request, entities.ITEMS, "PUT")


@router.post("/Items")
async def post_items(request: Request) -> Response:
    return await _write(request, entities.ITEMS, "POST")


@router.get("/Items/{ItemID}")
def get_item(request: Request, ItemID: str) -> Response:
    """By ItemID or by Code."""
    return _get_one(request, entities.ITEMS, ItemID, number_index="code")


@router.post("/Items/{ItemID}")
async def post_item(request: Request, ItemID: str) -> Response:
    return await _write(request, entities.ITEMS, "POST", path_id=ItemID)


@router.delete("/Items/{ItemID}")
def delete_item(request: Request, ItemID: str) -> Response:
    try:
        _org(request).delete_item(ItemID)
    except NotFound:
        return _not_found(request)
    request.state.records_returned = 0
    return Response(status_code=204)


# -------------------------------------------------------------------------------------------- documents
@router.get("/Invoices")
def get_invoices(request: Request) -> Response:
    return _list(request, entities.INVOICES)


@router.put("/Invoices")
async def put_invoices(request: Request) -> Response:
    return await _write(request, entities.INVOICES, "PUT")


@router.post("/Invoices")
async def post_invoices(request: Request) -> Response:
    return await _write(request, entities.INVOICES, "POST")


@router.get("/Invoices/{InvoiceID}")
def get_invoice(request: Request, InvoiceID: str) -> Response:
    """By InvoiceID or InvoiceNumber."""
    return _get_one(request, entities.INVOICES, InvoiceID, number_index="accrec_number")


@router.post("/Invoices/{InvoiceID}")
async def post_invoice(request: Request, InvoiceID: str) -> Response:
    return await _write(request, entities.INVOICES, "POST", path_id=InvoiceID)


@router.get("/CreditNotes")
def get_credit_notes(request: Request) -> Response:
    return _list(request, entities.CREDIT_NOTES)


@router.put("/CreditNotes")
async def put_credit_notes(request: Request) -> Response:
    return await _write(request, entities.CREDIT_NOTES, "PUT")


@router.post("/CreditNotes")
async def post_credit_notes(request: Request) -> Response:
    return await _write(request, entities.CREDIT_NOTES, "POST")


@router.get("/CreditNotes/{CreditNoteID}")
def get_credit_note(request: Request, CreditNoteID: str) -> Response:
    return _get_one(request, entities.CREDIT_NOTES, CreditNoteID, number_index="accrec_number")


@router.post("/CreditNotes/{CreditNoteID}")
async def post_credit_note(request: Request, CreditNoteID: str) -> Response:
    return await _write(request, entities.CREDIT_NOTES, "POST", path_id=CreditNoteID)


@router.put("/CreditNotes/{CreditNoteID}/Allocations")
async def put_credit_note_allocations(request: Request, CreditNoteID: str) -> Response:
    org = _org(request)
    try:
        elements = _elements(await request.body(), "Allocations", "Allocation")
    except _BadBody as exc:
        request.state.records_returned = 0
        return json_response(exc.response_body, 400)
    try:
        results = await run_in_threadpool(org.allocate_credit_note, CreditNoteID, elements)
    except NotFound:
        return _not_found(request)
    summarize = _flag(_params(request), "summarizeErrors", default=True)
    allocation_spec = EntitySpec("Allocations", "Allocation", "AllocationID")
    return _write_response(request, allocation_spec, results, summarize=summarize, collection="Allocations")


@router.get("/PurchaseOrders")
def get_purchase_orders(request: Request) -> Response:
    params = _params(request)
    status = params.get("status", "").strip().upper()
    try:
        date_from = parse_date_input(params["datefrom"]) if params.get("datefrom") else None
        date_to = parse_date_input(params["dateto"]) if params.get("dateto") else None
    except BadDate:
        return _query_error(request, QueryError("String was not recognized as a valid DateTime."))
    return _list(
        request,
        entities.PURCHASE_ORDERS,
        extra=_purchase_order_filter(status, date_from, date_to),
        extra_key=("po", status, date_from, date_to),
    )


def _purchase_order_filter(
    status: str, date_from: date | None, date_to: date | None
) -> Callable[[Record], bool] | None:
    if not (status or date_from or date_to):
        return None

    def keep(record: Record) -> bool:
        if status and record.get("Status") != status:
            return False
        issued = record.get("Date")
        if date_from and (issued is None or issued < date_from):
            return False
        return not (date_to and (issued is None or issued > date_to))

    return keep


@router.put("/PurchaseOrders")
async def put_purchase_orders(request: Request) -> Response:
    return await _write(request, entities.PURCHASE_ORDERS, "PUT")


@router.post("/PurchaseOrders")
async def post_purchase_orders(request: Request) -> Response:
    return await _write(request, entities.PURCHASE_ORDERS, "POST")


@router.get("/PurchaseOrders/{PurchaseOrderID}")
def get_purchase_order(request: Request, PurchaseOrderID: str) -> Response:
    """By PurchaseOrderID or PurchaseOrderNumber."""
    return _get_one(request, entities.PURCHASE_ORDERS, PurchaseOrderID, number_index="number")


@router.post("/PurchaseOrders/{PurchaseOrderID}")
async def post_purchase_order(request: Request, PurchaseOrderID: str) -> Response:
    return await _write(request, entities.PURCHASE_ORDERS, "POST", path_id=PurchaseOrderID)


# ---------------------------------------------------------------------------------------------- payments
@router.get("/Payments")
def get_payments(request: Request) -> Response:
    return _list(request, entities.PAYMENTS)


@router.put("/Payments")
async def put_payments(request: Request) -> Response:
    return await _write(request, entities.PAYMENTS, "PUT")


@router.post("/Payments")
async def post_payments(request: Request) -> Response:
    return await _write(request, entities.PAYMENTS, "POST")


@router.get("/Payments/{PaymentID}")
def get_payment(request: Request, PaymentID: str) -> Response:
    return _get_one(request, entities.PAYMENTS, PaymentID)


@router.post("/Payments/{PaymentID}")
async def post_payment(request: Request, PaymentID: str) -> Response:
    """Delete a payment: Xero's body is ``{"Status": "DELETED"}`` (the only change a payment accepts)."""
    return await _write(request, entities.PAYMENTS, "POST", path_id=PaymentID)
