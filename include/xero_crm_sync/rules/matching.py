"""I12/P9: which existing Xero contact a CRM customer (or supplier) already is: one rule, used by both directions.

The import uses it to link the Xero contacts it reads to CRM ledgers that exist but are not linked yet
(`transform.link_existing_ledgers`); the push uses it before creating a Xero contact for a new CRM customer
(`push/run.find_matches`), so a customer matches the same contact whichever way it is looked at.

The rule, per unlinked CRM record, over the Xero contacts not linked to a CRM record yet (`decide`):

1. Xero AccountNumber = the CRM account number;
2. Xero ContactNumber = the CRM record's id (what the push writes there on creation, so a retried or
   half-finished creation is found again);
3. email;
4. name.

Every comparison is on trimmed, case-insensitive values (`norm`: casefold; Xero itself compares strings
case-insensitively, and a contact's name is unique in Xero regardless of case). Email and name (3-4) count only
among ACTIVE contacts: an archived contact is matched by the stable keys 1-2 only, because its email or name may
since belong to someone else (Xero frees an archived contact's name for a new contact). The first level on which
anything matches decides: one contact is a `Match`; several are `Ambiguous` (recorded for a user, nothing linked
and nothing created: a duplicate account number or a shared email is a data problem to show, not to guess
around); nothing at any level is `NoMatch`.

Several records, one contact (`decide_all`): when several CRM records would link the same contact, the one
matching it on the strongest level links and the others are ambiguous; if several tie on that level, all are.

Where each direction uses it, and what differs around it (the candidates, not the rule):

- the import: the candidates are the contacts read in this run that Xero classes as customers (for sales
  ledgers) or suppliers (for purchase ledgers); the outcome is recorded per Xero contact (`match_contacts` ->
  `contact_match`, and `sql/transform/035_record_ambiguous_matches.sql` for the ambiguous ones); a match on a
  ledger flagged do_not_import (S10) is reported as such: neither linked nor created as a duplicate.
- the push: the candidates are first the import's mirror (`sql/push/030_match_customers_mirror.sql`, the same
  four keys set-based, as a pre-filter: it finds every pair that agrees on a key, and `decide_all` applies the
  levels and the ACTIVE condition), then Xero itself for customers the mirror decided nothing for
  (`push/matching.where_clause`: one `where` naming all four keys, Xero comparing case-insensitively). The
  outcome is recorded per CRM customer (`push/run.apply_matches`).

SQLite's LOWER folds ASCII only, so a pair that differs only in the case of a non-ASCII letter is missed by the
mirror pre-filter; `decide` still matches it when Xero returns it to the push's lookup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Level = Literal["account_number", "contact_number", "email", "name"]
LEVELS: tuple[Level, ...] = ("account_number", "contact_number", "email", "name")
# Keys an archived contact can still be matched by: ours (ContactNumber) or the accounts team's (AccountNumber).
STABLE_LEVELS: frozenset[Level] = frozenset({"account_number", "contact_number"})
# Kept for the import's contact_match.match_key and older readers of this module.
MatchKey = Level
KEYS = LEVELS
Outcome = Literal["linked", "ambiguous", "do_not_import"]


@dataclass(frozen=True)
class CrmRecord:
    """An unlinked CRM ledger (customer or supplier) as matching sees it."""

    id: int
    account_number: str | None
    email: str | None
    name: str | None
    do_not_import: bool = False  # S10, used by the import only: a match is reported, never linked


# The import's name for it.
CrmLedger = CrmRecord


@dataclass(frozen=True)
class XeroContact:
    """A Xero contact not linked to a CRM record, as the mirror or a Xero answer describes it."""

    xero_id: str
    account_number: str | None
    contact_number: str | None
    email: str | None
    name: str | None
    status: str | None = "ACTIVE"

    @classmethod
    def from_xero(cls, contact: Mapping[str, object]) -> XeroContact:
        """From a Contact element of Xero's API."""

        def text(key: str) -> str | None:
            value = contact.get(key)
            return None if value is None else str(value)

        return cls(
            xero_id=str(contact["ContactID"]),
            account_number=text("AccountNumber"),
            contact_number=text("ContactNumber"),
            email=text("EmailAddress"),
            name=text("Name"),
            status=text("ContactStatus"),
        )


@dataclass(frozen=True)
class Match:
    xero_id: str
    level: Level


@dataclass(frozen=True)
class Ambiguous:
    level: Level
    xero_ids: tuple[str, ...]  # the contacts that tie at `level`, or the one another record links to


@dataclass(frozen=True)
class NoMatch:
    pass


Decision = Match | Ambiguous | NoMatch
NO_MATCH = NoMatch()


def norm(value: str | None) -> str | None:
    """The compared form of a key: trimmed, casefolded, None when empty."""
    value = (value or "").strip()
    return value.casefold() or None


def record_keys(record: CrmRecord) -> dict[Level, str | None]:
    return {
        "account_number": norm(record.account_number),
        "contact_number": str(record.id),
        "email": norm(record.email),
        "name": norm(record.name),
    }


def contact_keys(contact: XeroContact) -> dict[Level, str | None]:
    active = contact.status == "ACTIVE"
    return {
        "account_number": norm(contact.account_number),
        "contact_number": norm(contact.contact_number),
        "email": norm(contact.email) if active else None,
        "name": norm(contact.name) if active else None,
    }


class _Index:
    """The candidates by level and compared value."""

    def __init__(self, candidates: Iterable[XeroContact], taken: frozenset[str] | set[str] = frozenset()):
        self.by: dict[Level, dict[str, set[str]]] = {level: defaultdict(set) for level in LEVELS}
        for contact in candidates:
            if contact.xero_id in taken:
                continue
            for level, value in contact_keys(contact).items():
                if value is not None:
                    self.by[level][value].add(contact.xero_id)

    def decide(self, record: CrmRecord) -> Decision:
        keys = record_keys(record)
        for level in LEVELS:
            value = keys[level]
            found = sorted(self.by[level].get(value, ())) if value is not None else []
            if len(found) == 1:
                return Match(found[0], level)
            if found:
                return Ambiguous(level, tuple(found))
        return NO_MATCH


def decide(record: CrmRecord, candidates: Iterable[XeroContact]) -> Decision:
    """The rule for one CRM record (see the module docstring); `candidates` are contacts not linked yet."""
    return _Index(candidates).decide(record)


def decide_all(
    records: Iterable[CrmRecord],
    candidates: Iterable[XeroContact],
    taken: frozenset[str] | set[str] = frozenset(),
) -> dict[int, Decision]:
    """`decide` for each record (by id), then one contact claimed by several records: the strongest level wins
    alone, or every claimant is ambiguous. `taken`: contacts already linked to a CRM record (no candidates)."""
    index = _Index(candidates, taken)
    decisions = {record.id: index.decide(record) for record in records}
    claims: dict[str, list[tuple[int, int]]] = defaultdict(list)  # xero_id -> [(level rank, record id)]
    for record_id, decision in decisions.items():
        if isinstance(decision, Match):
            claims[decision.xero_id].append((LEVELS.index(decision.level), record_id))
    for xero_id, claimants in claims.items():
        if len(claimants) < 2:
            continue
        claimants.sort()
        best = claimants[0][0]
        winner = claimants[0][1] if claimants[1][0] > best else None
        for _rank, record_id in claimants:
            if record_id != winner:
                decisions[record_id] = Ambiguous(decisions[record_id].level, (xero_id,))  # type: ignore[union-attr]
    return decisions


# --- the import's view: one outcome per Xero contact ------------------------------------------------------


@dataclass(frozen=True)
class ContactOutcome:
    """What the import does with one unlinked Xero contact (absent: it matched nothing, import it as new)."""

    xero_id: str
    outcome: Outcome
    match_key: Level
    ledger_ids: tuple[int, ...]  # the one linked, or every candidate ledger

    @property
    def ledger_id(self) -> int | None:
        return self.ledger_ids[0] if len(self.ledger_ids) == 1 else None


def match_contacts(contacts: Iterable[XeroContact], ledgers: Iterable[CrmRecord]) -> list[ContactOutcome]:
    """The import's outcomes, from `decide_all` over the unlinked ledgers: a contact some ledger links to is
    linked (or do_not_import when that ledger is flagged); a contact named by an ambiguous decision is ambiguous,
    with the ledgers whose decision names it. Contacts matching nothing are absent."""
    contacts = list(contacts)
    ledgers = list(ledgers)
    by_id = {ledger.id: ledger for ledger in ledgers}
    decisions = decide_all(ledgers, contacts)
    linked: dict[str, ContactOutcome] = {}
    ambiguous: dict[str, tuple[Level, set[int]]] = {}
    for ledger_id, decision in decisions.items():
        if isinstance(decision, Match):
            outcome: Outcome = "do_not_import" if by_id[ledger_id].do_not_import else "linked"
            linked[decision.xero_id] = ContactOutcome(decision.xero_id, outcome, decision.level, (ledger_id,))
        elif isinstance(decision, Ambiguous):
            for xero_id in decision.xero_ids:
                level, ids = ambiguous.setdefault(xero_id, (decision.level, set()))
                ids.add(ledger_id)
                if LEVELS.index(decision.level) < LEVELS.index(level):
                    ambiguous[xero_id] = (decision.level, ids)
    results = list(linked.values())
    results += [
        ContactOutcome(xero_id, "ambiguous", level, tuple(sorted(ids)))
        for xero_id, (level, ids) in ambiguous.items()
        if xero_id not in linked
    ]
    return sorted(results, key=lambda r: r.xero_id)
