"""I12/P9: match Xero contacts to existing CRM ledgers that are not linked to Xero yet, so they are linked, not
duplicated.

Keys, in order: account number; ContactNumber = the CRM ledger id (what the push writes there); email
(case-insensitive); exact name (surrounding spaces ignored). The first key on which a contact matches anything
decides: one ledger is a match, several are ambiguous (a later key is not tried: a duplicate account number is
a data problem to show, not to guess around). Two contacts matching the same ledger are both ambiguous. A match
on a ledger flagged do_not_import (S10) is reported as such: neither linked nor created as a duplicate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

MatchKey = Literal["account_number", "contact_number", "email", "name"]
Outcome = Literal["linked", "ambiguous", "do_not_import"]
KEYS: tuple[MatchKey, ...] = ("account_number", "contact_number", "email", "name")


@dataclass(frozen=True)
class XeroContact:
    xero_id: str
    account_number: str | None
    contact_number: str | None
    email: str | None
    name: str | None


@dataclass(frozen=True)
class CrmLedger:
    id: int
    account_number: str | None
    email: str | None
    name: str | None
    do_not_import: bool = False


@dataclass(frozen=True)
class Match:
    xero_id: str
    outcome: Outcome
    match_key: MatchKey
    ledger_ids: tuple[int, ...]  # the one linked, or every candidate

    @property
    def ledger_id(self) -> int | None:
        return self.ledger_ids[0] if len(self.ledger_ids) == 1 else None


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _email(value: str | None) -> str | None:
    value = _text(value)
    return value.casefold() if value else None


_CONTACT_KEY: dict[MatchKey, Callable[[XeroContact], str | None]] = {
    "account_number": lambda c: _text(c.account_number),
    "contact_number": lambda c: _text(c.contact_number),
    "email": lambda c: _email(c.email),
    "name": lambda c: _text(c.name),
}
_LEDGER_KEY: dict[MatchKey, Callable[[CrmLedger], str | None]] = {
    "account_number": lambda ledger: _text(ledger.account_number),
    "contact_number": lambda ledger: str(ledger.id),
    "email": lambda ledger: _email(ledger.email),
    "name": lambda ledger: _text(ledger.name),
}


def match_contacts(contacts: Iterable[XeroContact], ledgers: Iterable[CrmLedger]) -> list[Match]:
    """One Match per contact that matched something (contacts matching nothing are absent)."""
    ledgers = list(ledgers)
    by_id = {ledger.id: ledger for ledger in ledgers}
    index: dict[MatchKey, dict[str, list[int]]] = {key: defaultdict(list) for key in KEYS}
    for ledger in ledgers:
        for key in KEYS:
            value = _LEDGER_KEY[key](ledger)
            if value is not None:
                index[key][value].append(ledger.id)

    proposals: list[Match] = []
    for contact in contacts:
        for key in KEYS:
            value = _CONTACT_KEY[key](contact)
            ids = index[key].get(value) if value is not None else None
            if not ids:
                continue
            outcome: Outcome = "ambiguous" if len(ids) > 1 else "linked"
            proposals.append(Match(contact.xero_id, outcome, key, tuple(sorted(ids))))
            break

    claims: dict[int, int] = defaultdict(int)
    for proposal in proposals:
        if proposal.outcome == "linked":
            claims[proposal.ledger_ids[0]] += 1
    results: list[Match] = []
    for proposal in proposals:
        if proposal.outcome == "linked":
            ledger_id = proposal.ledger_ids[0]
            if claims[ledger_id] > 1:
                proposal = Match(proposal.xero_id, "ambiguous", proposal.match_key, proposal.ledger_ids)
            elif by_id[ledger_id].do_not_import:
                proposal = Match(proposal.xero_id, "do_not_import", proposal.match_key, proposal.ledger_ids)
        results.append(proposal)
    return results
