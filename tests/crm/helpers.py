"""Test helpers for the CRM side: Xero records in wire shape, and a Crm handle that stages, validates, promotes
and transforms them exactly as the pipeline does (staging.stage_page + write_page, validated.promote,
transform.run_import), then reads CRM rows back."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text

from xero_crm_sync import staging, transform, validated
from xero_crm_sync.company_settings import set_company_settings
from xero_crm_sync.entities import entity

T0 = datetime(2026, 3, 1, 12, 0, 0)


def gid(name: str) -> str:
    """A stable Xero-style GUID for a readable name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero:{name}"))


def xero_date(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    millis = int(value.replace(tzinfo=UTC).timestamp() * 1000)
    return f"/Date({millis}+0000)/"


def contact(
    key: str,
    name: str | None = None,
    *,
    status: str = "ACTIVE",
    customer: bool = True,
    supplier: bool = False,
    updated: datetime = T0,
    **fields: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ContactID": gid(key),
        "Name": name or key,
        "ContactStatus": status,
        "IsCustomer": customer,
        "IsSupplier": supplier,
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


def item(key: str, *, code: str | None = None, updated: datetime = T0, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ItemID": gid(key),
        "Code": code or key,
        "Name": f"{key} name",
        "Description": f"{key} description",
        "SalesDetails": {"UnitPrice": 10.5, "AccountCode": "200", "TaxType": "OUTPUT2"},
        "PurchaseDetails": {"UnitPrice": 4.25, "AccountCode": "300", "TaxType": "INPUT2"},
        "IsTrackedAsInventory": False,
        "IsSold": True,
        "IsPurchased": True,
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


def line(
    item_code: str | None = None, quantity: float = 1, unit: float = 100, **fields: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Description": f"{item_code or 'service'} line",
        "Quantity": quantity,
        "UnitAmount": unit,
        "LineAmount": quantity * unit,
        "AccountCode": "200",
        "TaxType": "OUTPUT2",
        "TaxAmount": 0,
    }
    if item_code:
        record["ItemCode"] = item_code
    record.update(fields)
    return record


def invoice(
    key: str,
    contact_key: str,
    *,
    type: str = "ACCREC",
    status: str = "AUTHORISED",
    total: float = 100,
    paid: float = 0,
    due: date = date(2026, 3, 31),
    lines: list[dict[str, Any]] | None = None,
    updated: datetime = T0,
    **fields: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "InvoiceID": gid(key),
        "InvoiceNumber": key,
        "Type": type,
        "Contact": {"ContactID": gid(contact_key)},
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "Date": xero_date(date(2026, 2, 1)),
        "DueDate": xero_date(due),
        "CurrencyCode": "GBP",
        "SubTotal": total,
        "TotalTax": 0,
        "Total": total,
        "AmountDue": total - paid,
        "AmountPaid": paid,
        "AmountCredited": 0,
        "LineItems": lines if lines is not None else [line(unit=total)],
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


def credit_note(key: str, contact_key: str, *, type: str = "ACCRECCREDIT", status: str = "AUTHORISED",
                total: float = 20, updated: datetime = T0, **fields: Any) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "CreditNoteID": gid(key),
        "CreditNoteNumber": key,
        "Type": type,
        "Contact": {"ContactID": gid(contact_key)},
        "Status": status,
        "Date": xero_date(date(2026, 2, 2)),
        "Total": total,
        "SubTotal": total,
        "TotalTax": 0,
        "RemainingCredit": total,
        "LineItems": [line(unit=total)],
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


def purchase_order(key: str, contact_key: str, *, status: str = "AUTHORISED", updated: datetime = T0,
                   lines: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "PurchaseOrderID": gid(key),
        "PurchaseOrderNumber": key,
        "Contact": {"ContactID": gid(contact_key)},
        "Status": status,
        "Date": xero_date(date(2026, 2, 3)),
        "DeliveryDate": xero_date(date(2026, 2, 10)),
        "Total": 50,
        "LineItems": lines if lines is not None else [line(unit=50)],
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


def payment(key: str, invoice_key: str, amount: float, *, status: str = "AUTHORISED", updated: datetime = T0,
            **fields: Any) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "PaymentID": gid(key),
        "Invoice": {"InvoiceID": gid(invoice_key)},
        "Date": xero_date(date(2026, 2, 20)),
        "Amount": amount,
        "PaymentType": "ACCRECPAYMENT",
        "Status": status,
        "UpdatedDateUTC": xero_date(updated),
    }
    record.update(fields)
    return record


_SQLITE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")


def plain(value: Any) -> Any:
    """Database values made comparable across SQLite and PostgreSQL (numbers, booleans, dates, JSON text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _SQLITE_TIMESTAMP.match(value):
        return value[:19]  # SQLite keeps timestamps as text with microseconds
    return value


@dataclass
class Crm:
    """One operating company with its primary Xero connection, in a migrated CRM database."""

    engine: Engine
    company_id: int
    connection_id: int
    manager_id: int  # "Alice", an account manager
    tag: str
    runs: int = 0
    secondary_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def execute(self, sql: str, **params: Any) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                text(sql), {"company_id": self.company_id, "conn": self.connection_id, **params}
            ).rowcount

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            result = conn.execute(
                text(sql), {"company_id": self.company_id, "conn": self.connection_id, **params}
            )
            return [{k: plain(v) for k, v in row.items()} for row in result.mappings()]

    def one(self, sql: str, **params: Any) -> dict[str, Any]:
        found = self.rows(sql, **params)
        assert len(found) == 1, f"expected one row, got {len(found)}: {found}"
        return found[0]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return plain(
                conn.execute(
                    text(sql), {"company_id": self.company_id, "conn": self.connection_id, **params}
                ).scalar()
            )

    def settings(self, **changes: Any) -> None:
        with self.engine.begin() as conn:
            set_company_settings(conn, self.company_id, **changes)

    def add_secondary(self) -> int:
        with self.engine.begin() as conn:
            self.secondary_id = conn.execute(
                text(
                    "INSERT INTO xero_connection (operating_company_id, role, tenant_id, tenant_name)"
                    " VALUES (:c, 'secondary', :t, 'Secondary org') RETURNING id"
                ),
                {"c": self.company_id, "t": f"tenant-2-{self.tag}"},
            ).scalar_one()
        return self.secondary_id

    def stage(
        self, conn: Any, run_id: str, connection_id: int, records: dict[str, list[dict[str, Any]]]
    ) -> None:
        ctx = staging.RunContext(run_id=run_id, connection_id=connection_id, extracted_at=T0)
        for name, batch in records.items():
            spec = entity(name)
            staging.write_page(conn, spec, staging.stage_page(spec, batch, ctx))
            conn.execute(
                text(
                    f"UPDATE {spec.staging_table} SET validation_status = 'valid'"
                    " WHERE run_id = :r AND connection_id = :c"
                ),
                {"r": run_id, "c": connection_id},
            )
            validated.promote(conn, spec, run_id, connection_id)

    def run(
        self,
        records: dict[str, list[dict[str, Any]]] | None = None,
        *,
        now: datetime = T0,
        run_id: str | None = None,
        connection_id: int | None = None,
        full: bool = False,
    ) -> dict[str, int]:
        """Stage + validate + promote `records` (entity name -> Xero records) as one run, then transform it.
        Rerun an earlier run by passing its run_id and no records."""
        connection_id = connection_id or self.connection_id
        if run_id is None:
            self.runs += 1
            run_id = f"run-{self.tag}-{self.runs}"
        self.last_run_id = run_id
        with self.engine.begin() as conn:
            if records:
                self.stage(conn, run_id, connection_id, records)
            return transform.run_import(conn, run_id=run_id, connection_id=connection_id, now=now, full=full)

    def ledger(self, key: str, table: str = "sales_ledger") -> dict[str, Any]:
        return self.one(
            f"SELECT * FROM {table} WHERE operating_company_id = :company_id AND accounting_code = :code",
            code=gid(key),
        )

    def ledgers(self, table: str = "sales_ledger") -> dict[str, dict[str, Any]]:
        """Ledgers of this company by name."""
        return {
            r["name"]: r
            for r in self.rows(f"SELECT * FROM {table} WHERE operating_company_id = :company_id ORDER BY id")
        }
