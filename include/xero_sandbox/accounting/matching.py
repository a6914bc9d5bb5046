"""Which stored record a write element targets: by URL, by ID in the element, then (POST) by number or code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .entities import EntitySpec
from .validation import Invalid, is_guid, not_found, put_existing

if TYPE_CHECKING:
    from .collection import Collection, Record
    from .store import OrgStore


def match_record(
    store: OrgStore,
    spec: EntitySpec,
    collection: Collection,
    element: dict[str, Any],
    *,
    method: str,
    path_id: str | None,
    number_index: str | None = None,
) -> Record | None:
    """The existing record an element updates, or None to create.

    ``POST /X/{id}`` targets the URL's record (by ID, or by number/code where Xero allows it). Otherwise an ID
    in the element must exist; a POST without an ID updates the record with the same number/code (as Xero does
    for ContactNumber, Item Code, InvoiceNumber and PurchaseOrderNumber) and a PUT always creates: a PUT naming
    an existing record's ID is refused.
    """
    from .store import NotFound

    if path_id:
        record = collection.get(path_id) if is_guid(path_id) else None
        if record is None and number_index:
            record = collection.by(number_index, path_id)
        if record is None:
            raise NotFound(path_id)
        return record
    record_id = element.get(spec.id_field)
    if record_id:
        record = collection.get(str(record_id)) if is_guid(str(record_id)) else None
        if record is None:
            raise Invalid([not_found(spec.label, spec.id_field, str(record_id))])
        if method == "PUT":
            # "A PUT method will create new data in Xero, whereas a POST will either create new data or update
            # existing data" (Xero, HTTP PUT and POST): a PUT naming an existing record is refused, not applied
            # (Xero does not document the answer; refusing is the stricter reading, docs/SANDBOX.md).
            raise Invalid([put_existing(spec.label, spec.id_field, str(record_id))])
        return record
    if method == "POST" and number_index and spec.number_field:
        number = element.get(spec.number_field)
        if isinstance(number, str | int) and str(number).strip():
            return collection.by(number_index, str(number))
    return None
