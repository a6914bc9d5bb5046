"""Which write rules apply to which collection (each builder offers ``match`` and ``build``)."""

from __future__ import annotations

from typing import Any, Protocol

from . import contacts, documents, items, payments


class Builder(Protocol):
    def match(self, store: Any, element: dict[str, Any], *, method: str, path_id: str | None) -> Any: ...

    def build(
        self, store: Any, element: dict[str, Any], existing: Any, *, now: Any, unitdp: int | None = None
    ) -> Any: ...


_BUILDERS: dict[str, Any] = {
    "Contacts": contacts,
    "Items": items,
    "Payments": payments,
    "Invoices": documents.INVOICE_BUILDER,
    "CreditNotes": documents.CREDIT_NOTE_BUILDER,
    "PurchaseOrders": documents.PURCHASE_ORDER_BUILDER,
}


def builder_for(entity: str) -> Builder:
    try:
        return _BUILDERS[entity]
    except KeyError as exc:
        raise KeyError(f"{entity} cannot be written") from exc
