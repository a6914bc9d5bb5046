"""The state a campaign compares: the CRM (every synced table) and Xero (the sandbox's organisation), canonical.

Two runs of the same seed must end equal, but some values legitimately differ between them: surrogate keys
(a rolled-back insert still spends a PostgreSQL sequence value), bookkeeping timestamps, and the GUIDs Xero gives
records the push creates (random per run). So:

- CRM rows drop `id` and every TIMESTAMP column; a foreign key becomes the referenced row's own canonical
  content (without its keys), and `record_type`/`record_id` pairs likewise;
- every Xero GUID becomes the record's natural key (contact: ContactNumber or Name; item: Code; invoice: number;
  ...), in CRM values and in Xero records alike; `UpdatedDateUTC` is dropped;
- each table or collection is a sorted list, so rows compare as multisets.

`diff(a, b)` counts the rows in one and not the other, per table. `duplicates(org)` counts Xero records that
share a natural key with another (what a retried create without an Idempotency-Key would leave behind).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlalchemy.types import Boolean, DateTime

# Every CRM table the import or the push writes, and the integration tables whose open rows users see.
CRM_TABLES = (
    "sales_ledger",
    "purchase_ledger",
    "company",
    "division",
    "contact",
    "product",
    "stock_level",
    "sales_order",
    "sales_order_line",
    "sales_invoice",
    "sales_invoice_line",
    "credit_note",
    "credit_note_line",
    "purchase_order",
    "purchase_order_line",
    "payment",
    "tax_rate",
    "currency",
    "notification",
)
# Columns that say when or how often, not what.
BOOKKEEPING = {
    "id",
    "attempts",
    "run_id",
    "last_run_id",
    "decided_at",
    "idempotency_key",  # per attempt by design (it carries the order's creation time)
    "token_blob",  # encrypted with a fresh IV every time
}
XERO_COLLECTIONS = ("Contacts", "Items", "Invoices", "CreditNotes", "PurchaseOrders", "Payments")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VOLATILE_XERO = {"UpdatedDateUTC", "HasValidationErrors"}


# --- Xero ------------------------------------------------------------------------------------------------------


def natural_key(collection: str, record: dict[str, Any]) -> str:
    """How a person finds the record in Xero: by number or code, never by GUID."""
    if collection == "Contacts":
        return f"contact:{record.get('ContactNumber') or record.get('Name')}"
    if collection == "Items":
        return f"item:{record.get('Code')}"
    if collection == "Invoices":
        number = record.get("InvoiceNumber")
        return f"invoice:{record.get('Type')}:{number or record.get('Reference')}"
    if collection == "CreditNotes":
        return f"credit_note:{record.get('CreditNoteNumber')}"
    if collection == "PurchaseOrders":
        return f"purchase_order:{record.get('PurchaseOrderNumber')}"
    if collection == "Payments":
        invoice = (record.get("Invoice") or {}).get("InvoiceNumber") or (record.get("Invoice") or {}).get(
            "InvoiceID"
        )
        return f"payment:{invoice}:{record.get('Date')}:{record.get('Amount')}"
    return f"{collection}:{record}"


def id_names(org: Any) -> dict[str, str]:
    """Every GUID of the organisation's records -> the record's natural key."""
    names: dict[str, str] = {}
    id_fields = {
        "Contacts": "ContactID",
        "Items": "ItemID",
        "Invoices": "InvoiceID",
        "CreditNotes": "CreditNoteID",
        "PurchaseOrders": "PurchaseOrderID",
        "Payments": "PaymentID",
    }
    for collection, id_field in id_fields.items():
        for record in org.collection(collection).values():
            names[str(record[id_field]).lower()] = natural_key(collection, record)
            for number, line in enumerate(record.get("LineItems") or [], start=1):
                if line.get("LineItemID"):
                    names[str(line["LineItemID"]).lower()] = f"{natural_key(collection, record)}#line{number}"
    return names


def _rename_guids(value: str, names: dict[str, str]) -> str:
    return _GUID.sub(lambda m: names.get(m.group().lower(), m.group()), value)


def _canonical(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v, names) for k, v in sorted(value.items()) if k not in _VOLATILE_XERO}
    if isinstance(value, list | tuple):
        return [_canonical(v, names) for v in value]
    if isinstance(value, str):
        return _rename_guids(value, names)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def xero_state(org: Any) -> dict[str, list[str]]:
    """The organisation's records, canonical, per collection."""
    names = id_names(org)
    return {
        collection: sorted(
            json.dumps(_canonical(dict(r), names), sort_keys=True, default=str)
            for r in org.collection(collection).values()
        )
        for collection in XERO_COLLECTIONS
    }


def duplicates(org: Any) -> dict[str, int]:
    """Per collection, how many records share their natural key with an earlier one (0 is the only good answer).
    Contacts also count by name among active contacts (a second "Acme Ltd" is a duplicate whatever its number)."""
    out: dict[str, int] = {}
    for collection in ("Contacts", "Items", "Invoices"):
        records = list(org.collection(collection).values())
        keys = Counter(natural_key(collection, r) for r in records if r.get("Status") != "DELETED")
        extra = sum(n - 1 for n in keys.values())
        if collection == "Contacts":
            names = Counter(r.get("Name") for r in records if r.get("ContactStatus") == "ACTIVE")
            extra = max(extra, sum(n - 1 for n in names.values()))
        if collection == "Invoices":
            # Pushed invoices: one per order, found by the order's reference on the customer.
            refs = Counter(
                (r.get("Reference"), (r.get("Contact") or {}).get("ContactID"))
                for r in records
                if r.get("Type") == "ACCREC" and str(r.get("Reference") or "").startswith("CHAOS-")
            )
            extra += sum(n - 1 for n in refs.values())
        out[collection] = extra
    return out


# --- CRM -------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Values as text the same way on both databases (SQLite answers 1 where PostgreSQL answers 1.000000)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value else "NaN"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and value[:1] in "{[":
        try:  # JSON text (SQLite): re-serialised so key order and spacing do not matter
            return json.dumps(json.loads(value), sort_keys=True, default=str)
        except ValueError:
            return value
    if isinstance(value, date):
        return value.isoformat()
    return value


class CrmSnapshot:
    """Reads one CRM database into canonical rows (see module docs)."""

    def __init__(self, engine: Engine, names: dict[str, str]) -> None:
        self.engine = engine
        self.names = names
        inspector = inspect(engine)
        self.columns: dict[str, list[str]] = {}
        self.timestamps: dict[str, set[str]] = {}
        self.booleans: dict[str, set[str]] = {}  # SQLite answers 0/1: compared as booleans, so backends agree
        self.foreign: dict[str, dict[str, str]] = {}
        self.rows: dict[str, dict[Any, dict[str, Any]]] = {}
        for table in inspector.get_table_names():
            cols = inspector.get_columns(table)
            self.columns[table] = [c["name"] for c in cols]
            self.timestamps[table] = {c["name"] for c in cols if isinstance(c["type"], DateTime)}
            self.booleans[table] = {c["name"] for c in cols if isinstance(c["type"], Boolean)}
            self.foreign[table] = {
                fk["constrained_columns"][0]: fk["referred_table"]
                for fk in inspector.get_foreign_keys(table)
                if len(fk["constrained_columns"]) == 1
            }

    def _table(self, table: str) -> dict[Any, dict[str, Any]]:
        if table not in self.rows:
            with self.engine.connect() as conn:
                result = conn.execute(text(f"SELECT * FROM {table}")).mappings().all()
            self.rows[table] = {
                (row["id"] if "id" in row else index): dict(row) for index, row in enumerate(result)
            }
        return self.rows[table]

    def _value(self, value: Any) -> Any:
        value = _plain(value)
        return _rename_guids(value, self.names) if isinstance(value, str) else value

    def own(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """The row's own content: no keys, no timestamps, no references."""
        skip = BOOKKEEPING | self.timestamps.get(table, set()) | set(self.foreign.get(table, {}))
        flags = self.booleans.get(table, set())
        return {
            k: (None if v is None else bool(v)) if k in flags else self._value(v)
            for k, v in row.items()
            if k not in skip and k != "record_id"
        }

    def ref(self, table: str, key: Any) -> Any:
        if key is None:
            return None
        row = self._table(table).get(key)
        if row is None:
            return f"{table}:{key}?"  # a dangling reference is itself a difference
        return f"{table}:" + json.dumps(self.own(table, row), sort_keys=True, default=str)

    def canonical(self, table: str, row: dict[str, Any]) -> str:
        out = self.own(table, row)
        for column, referred in self.foreign.get(table, {}).items():
            out[column] = self.ref(referred, row.get(column))
        if "record_type" in row and "record_id" in row:
            target = row["record_type"]
            out["record"] = self.ref(target, row["record_id"]) if target in self.columns else row["record_id"]
        return json.dumps(out, sort_keys=True, default=str)

    def table(self, table: str, where: Any = None) -> list[str]:
        rows = self._table(table).values()
        return sorted(self.canonical(table, r) for r in rows if where is None or where(r))


def crm_state(engine: Engine, names: dict[str, str]) -> dict[str, list[str]]:
    """Every synced CRM table, plus what users see as open problems: unresolved errors and quarantined records."""
    snap = CrmSnapshot(engine, names)
    state = {table: snap.table(table) for table in CRM_TABLES if table in snap.columns}
    state["sync_error (open)"] = snap.table(
        "sync_error", lambda r: r["status"] in ("open", "retrying") and r["direction"] == "export"
    )
    # Quarantine rows are per run (a rerun adds one): what matters is which record is held back and why.
    quarantined = {
        json.dumps([r["entity"], snap._value(r["xero_id"]), snap._value(r["reasons"])])
        for r in snap._table("quarantined_record").values()
        if r["resolved_at"] is None
    }
    state["quarantined_record (distinct)"] = sorted(quarantined)
    state["order_outbox"] = snap.table("order_outbox")
    return state


def diff(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> dict[str, int]:
    """Per table, rows missing from `actual` plus rows `actual` has in excess (0 everywhere: equal)."""
    out: dict[str, int] = {}
    for table in sorted(expected.keys() | actual.keys()):
        want, got = Counter(expected.get(table, [])), Counter(actual.get(table, []))
        difference = sum(((want - got) + (got - want)).values())
        if difference:
            out[table] = difference
    return out


def explain(expected: dict[str, list[str]], actual: dict[str, list[str]], limit: int = 6) -> str:
    """The differing rows, for a failing test's message."""
    lines: list[str] = []
    for table in diff(expected, actual):
        want, got = Counter(expected.get(table, [])), Counter(actual.get(table, []))
        for row in list((want - got).elements())[:limit]:
            lines.append(f"{table}: missing  {row[:600]}")
        for row in list((got - want).elements())[:limit]:
            lines.append(f"{table}: extra    {row[:600]}")
    return "\n".join(lines)


def total(counts: Iterable[int] | dict[str, int]) -> int:
    return sum(counts.values() if isinstance(counts, dict) else counts)
