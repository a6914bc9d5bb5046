"""I13: what the secondary Xero organisation contributes to existing CRM customers.

The secondary organisation only enriches (C2): it never creates or updates ledgers, products or documents. Its
contacts are matched to existing CRM sales ledgers by account number, else by exact name (a key shared by
several ledgers matches none), and give them their analysis codes: the options of the contact's
SalesTrackingCategories, in Xero's order (Xero allows two tracking categories), plus the whole set as
{category: option}.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SecondaryContact:
    xero_id: str
    account_number: str | None
    name: str | None
    sales_tracking_categories: Any  # JSON text or the parsed list, as the database returns it


@dataclass(frozen=True)
class LedgerValues:
    id: int
    account_number: str | None
    name: str | None
    secondary_accounting_code: str | None = None
    analysis_code_1: str | None = None
    analysis_code_2: str | None = None
    tracking_codes: Any = None


@dataclass(frozen=True)
class Enrichment:
    ledger_id: int
    secondary_accounting_code: str
    analysis_code_1: str | None
    analysis_code_2: str | None
    tracking_codes: str | None  # JSON text, keys sorted


def tracking_options(value: Any) -> list[tuple[str, str]]:
    """(category, option) pairs of a SalesTrackingCategories value, in order; malformed entries are skipped."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        category, option = item.get("TrackingCategoryName"), item.get("TrackingOptionName")
        if isinstance(category, str) and isinstance(option, str) and category.strip() and option.strip():
            pairs.append((category.strip(), option.strip()))
    return pairs


def _canonical_json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _unique_index(ledgers: list[LedgerValues], attr: str) -> dict[str, LedgerValues]:
    groups: dict[str, list[LedgerValues]] = defaultdict(list)
    for ledger in ledgers:
        key = (getattr(ledger, attr) or "").strip()
        if key:
            groups[key].append(ledger)
    return {key: group[0] for key, group in groups.items() if len(group) == 1}


def enrich(contacts: Iterable[SecondaryContact], ledgers: Iterable[LedgerValues]) -> list[Enrichment]:
    """The changes to write: one per matched ledger whose values differ from what the secondary says."""
    ledgers = list(ledgers)
    by_account = _unique_index(ledgers, "account_number")
    by_name = _unique_index(ledgers, "name")
    seen: set[int] = set()
    changes: list[Enrichment] = []
    for contact in contacts:
        ledger = by_account.get((contact.account_number or "").strip()) or by_name.get(
            (contact.name or "").strip()
        )
        if ledger is None or ledger.id in seen:
            continue  # unmatched, or a second secondary contact on the same ledger: the first one wins
        seen.add(ledger.id)
        pairs = tracking_options(contact.sales_tracking_categories)
        wanted = Enrichment(
            ledger_id=ledger.id,
            secondary_accounting_code=contact.xero_id,
            analysis_code_1=pairs[0][1] if pairs else None,
            analysis_code_2=pairs[1][1] if len(pairs) > 1 else None,
            tracking_codes=json.dumps(dict(pairs), sort_keys=True, ensure_ascii=False) if pairs else None,
        )
        current = (
            ledger.secondary_accounting_code,
            ledger.analysis_code_1,
            ledger.analysis_code_2,
            _canonical_json(ledger.tracking_codes),
        )
        if current != (
            wanted.secondary_accounting_code,
            wanted.analysis_code_1,
            wanted.analysis_code_2,
            wanted.tracking_codes,
        ):
            changes.append(wanted)
    return changes
