"""Items: unique Code, sales and purchase details, tracked inventory (QuantityOnHand moves with invoices)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from . import validation as v
from .entities import ITEMS
from .matching import match_record
from .store import Changes
from .totals import dec

if TYPE_CHECKING:
    from .collection import Record
    from .store import OrgStore

TEXT_FIELDS = ("Name", "Description", "PurchaseDescription")


def match(store: OrgStore, element: dict[str, Any], *, method: str, path_id: str | None) -> Record | None:
    return match_record(
        store, ITEMS, store.items, element, method=method, path_id=path_id, number_index="code"
    )


def unit_price(value: float, unitdp: int | None) -> float:
    """Unit prices keep 2 decimal places unless the client opted into 4 with ``unitdp=4``."""
    places = Decimal("0.0001") if unitdp == 4 else Decimal("0.01")
    return float(dec(value).quantize(places, rounding=ROUND_HALF_UP))


def build(
    store: OrgStore,
    element: dict[str, Any],
    existing: Record | None,
    *,
    now: datetime,
    unitdp: int | None = None,
) -> Changes:
    errors: list[str] = []
    if existing is None:
        record: Record = {
            "ItemID": store.new_id(),
            "IsSold": True,
            "IsPurchased": True,
            "IsTrackedAsInventory": False,
        }
    else:
        record = dict(existing)

    if "Code" in element:
        code = _text(element["Code"], "Code", errors)
        if code:
            record["Code"] = code.strip()
    code = record.get("Code")
    if not code:
        errors.append(v.item_code_required())
    else:
        other = store.items.by("code", code)
        if other is not None and other["ItemID"] != record["ItemID"]:
            errors.append(v.item_code_taken(code))
    for name in TEXT_FIELDS:
        if name in element:
            text = _text(element[name], name, errors)
            if text is not None:
                record[name] = text
    for name in ("IsSold", "IsPurchased"):
        if name in element:
            try:
                flag = v.as_bool(element[name])
            except TypeError:
                errors.append(v.bad_value(name, element[name]))
            else:
                if flag is not None:
                    record[name] = flag
    for name in ("SalesDetails", "PurchaseDetails"):
        if name in element:
            record[name] = _details(store, record.get(name), element[name], name, unitdp, errors)
    if "InventoryAssetAccountCode" in element:
        code_value = _text(element["InventoryAssetAccountCode"], "InventoryAssetAccountCode", errors)
        account = store.account_by_code(code_value) if code_value else None
        if code_value and (account is None or account["Type"] != "INVENTORY"):
            errors.append(v.account_code_invalid(code_value))
        elif code_value:
            record["InventoryAssetAccountCode"] = code_value
    if record.get("InventoryAssetAccountCode"):
        # Giving an inventory asset account is what makes an item tracked in Xero; stock starts at zero.
        if not (record.get("PurchaseDetails") or {}).get("COGSAccountCode"):
            errors.append(
                "A cost of goods sold account (PurchaseDetails.COGSAccountCode) must be specified for tracked items."
            )
        if not record.get("IsTrackedAsInventory"):
            record["IsTrackedAsInventory"] = True
            record.setdefault("QuantityOnHand", 0.0)
            record.setdefault("TotalCostPool", 0.0)
    if errors:
        raise v.Invalid(errors)
    if existing is None or record != existing:
        record["UpdatedDateUTC"] = now
    return Changes([("Items", record)])


def _text(value: Any, name: str, errors: list[str]) -> str | None:
    try:
        return v.as_text(value)
    except TypeError:
        errors.append(v.bad_value(name, value))
        return None


def _details(
    store: OrgStore,
    current: dict[str, Any] | None,
    incoming: Any,
    name: str,
    unitdp: int | None,
    errors: list[str],
) -> dict[str, Any] | None:
    if not isinstance(incoming, dict):
        errors.append(v.bad_value(name, incoming))
        return current
    details = dict(current or {})
    if "UnitPrice" in incoming:
        try:
            price = v.as_number(incoming["UnitPrice"])
        except (TypeError, ValueError):
            errors.append(v.bad_value(f"{name}.UnitPrice", incoming["UnitPrice"]))
        else:
            if price is not None:
                details["UnitPrice"] = unit_price(price, unitdp)
    for field in ("AccountCode", "COGSAccountCode"):
        if field in incoming:
            code = _text(incoming[field], field, errors)
            account = store.account_by_code(code) if code else None
            if code and (account is None or account.get("SystemAccount")):
                errors.append(v.account_code_invalid(code))
            elif code:
                details[field] = code
    if "TaxType" in incoming:
        tax_type = _text(incoming["TaxType"], "TaxType", errors)
        rate = store.tax_rate(tax_type)
        if tax_type and rate is None:
            errors.append(v.tax_type_invalid(tax_type))
        elif rate is not None:
            details["TaxType"] = rate["TaxType"]
    return details
