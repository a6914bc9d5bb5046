"""The 1% of changes between runs: made in Xero by the accounts team (for the incremental import) and in the CRM
by its users (for the push).

Xero side: the sandbox runs in its own process, so its store is changed the way a user would change it: over
HTTP with its demo app's login, in a few large batches (these calls are the accounts team's, not ours, and are
not counted against the pipeline). Records are picked deterministically from the CRM's mirror of Xero (every
Nth id), only among records Xero lets one edit.

CRM side: plain UPDATEs of fields the push sends (a customer's email, a product's sell price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, text

WRITE_BATCH = 500  # elements per accounts-team request


def one_percent(total: int) -> int:
    return max(1, math.ceil(total / 100))


def pick_every(ids: list[Any], count: int) -> list[Any]:
    """`count` ids spread evenly over `ids` (sorted input gives a deterministic pick)."""
    if count <= 0 or not ids:
        return []
    if count >= len(ids):
        return list(ids)
    step = len(ids) / count
    return [ids[int(i * step)] for i in range(count)]


@dataclass(frozen=True)
class XeroChanges:
    contacts: int
    invoices: int

    @property
    def total(self) -> int:
        return self.contacts + self.invoices


class AccountsTeam:
    """The accounts team's own Xero login (the sandbox's demo app), writing through the Accounting API."""

    def __init__(self, sandbox_url: str, tenant_id: str) -> None:
        from xero_sandbox.oauth_client import authorize_headless

        token = authorize_headless(sandbox_url)
        self._http = httpx.Client(
            base_url=f"{sandbox_url}/api.xro/2.0",
            headers={"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": tenant_id},
            timeout=300,
        )

    def post(self, path: str, collection: str, elements: list[dict[str, Any]]) -> None:
        for start in range(0, len(elements), WRITE_BATCH):
            batch = elements[start : start + WRITE_BATCH]
            response = self._http.post(path, params={"summarizeErrors": "true"}, json={collection: batch})
            if response.status_code != 200:
                raise RuntimeError(
                    f"accounts team POST {path} failed: {response.status_code} {response.text[:500]}"
                )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AccountsTeam:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def change_xero(engine: Engine, connection_id: int, team: AccountsTeam, marker: str) -> XeroChanges:
    """Change 1% of the organisation's contacts (email) and 1% of its invoices (reference), as Xero allows."""
    with engine.connect() as conn:
        total_contacts = conn.execute(
            text("SELECT COUNT(*) FROM val_contacts WHERE connection_id = :c"), {"c": connection_id}
        ).scalar_one()
        contacts = list(
            conn.execute(
                text(
                    "SELECT xero_id FROM val_contacts WHERE connection_id = :c AND contact_status = 'ACTIVE' "
                    "ORDER BY xero_id"
                ),
                {"c": connection_id},
            ).scalars()
        )
        total_invoices = conn.execute(
            text("SELECT COUNT(*) FROM val_invoices WHERE connection_id = :c"), {"c": connection_id}
        ).scalar_one()
        # Paid, voided and deleted invoices are final in Xero: no edits at all.
        invoices = list(
            conn.execute(
                text(
                    "SELECT xero_id FROM val_invoices WHERE connection_id = :c "
                    "AND status IN ('DRAFT', 'SUBMITTED', 'AUTHORISED') ORDER BY xero_id"
                ),
                {"c": connection_id},
            ).scalars()
        )
    contact_ids = pick_every(contacts, one_percent(total_contacts))
    invoice_ids = pick_every(invoices, one_percent(total_invoices))
    team.post(
        "Contacts",
        "Contacts",
        [
            {"ContactID": cid, "EmailAddress": f"{marker}-{n}@bench.example.com"}
            for n, cid in enumerate(contact_ids)
        ],
    )
    team.post(
        "Invoices",
        "Invoices",
        [{"InvoiceID": iid, "Reference": f"{marker}-{n}"} for n, iid in enumerate(invoice_ids)],
    )
    return XeroChanges(contacts=len(contact_ids), invoices=len(invoice_ids))


@dataclass(frozen=True)
class CrmChanges:
    customers: int
    products: int


def change_crm(engine: Engine, operating_company_id: int, marker: str) -> CrmChanges:
    """Change 1% of the CRM's linked customers (email) and products (sell price): what a push must send."""
    with engine.begin() as conn:
        customers = list(
            conn.execute(
                text(
                    "SELECT id FROM sales_ledger WHERE operating_company_id = :oc AND accounting_code IS NOT NULL "
                    "AND do_not_export = FALSE ORDER BY id"
                ),
                {"oc": operating_company_id},
            ).scalars()
        )
        products = list(
            conn.execute(
                text(
                    "SELECT id FROM product WHERE operating_company_id = :oc AND accounting_code IS NOT NULL "
                    "AND do_not_export = FALSE ORDER BY id"
                ),
                {"oc": operating_company_id},
            ).scalars()
        )
        customer_ids = pick_every(customers, one_percent(len(customers)))
        product_ids = pick_every(products, one_percent(len(products)))
        if customer_ids:
            conn.execute(
                text("UPDATE sales_ledger SET email = :email WHERE id = :id"),
                [{"id": i, "email": f"{marker}-{i}@crm.example.com"} for i in customer_ids],
            )
        if product_ids:
            conn.execute(
                text("UPDATE product SET sell_price = COALESCE(sell_price, 0) + 1 WHERE id = :id"),
                [{"id": i} for i in product_ids],
            )
    return CrmChanges(customers=len(customer_ids), products=len(product_ids))
