"""P9: link a new CRM customer to the Xero contact it already is, instead of creating a duplicate (pure rules).

Keys, in order: ContactNumber = the CRM id (what the push writes on creation, so a retried creation is found),
then email (case-insensitive), then name (case-insensitive, as Xero's uniqueness is), email and name among
active contacts only. The first key on which anything matches decides: one contact links; several are
ambiguous (reported, nothing created, nothing guessed). A contact already linked to another CRM customer is no
candidate; two customers claiming the same contact are both ambiguous.

Candidates come from the import's mirror first (free), then one `where` query per chunk of the rest
(`where_clause`), so matching costs ceil(unmatched / MATCH_QUERY_CHUNK) calls at most.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

MatchKey = Literal["contact_number", "email", "name"]
KEYS: tuple[MatchKey, ...] = ("contact_number", "email", "name")
# Three conditions per customer keep a chunk's query string near 4 KB, well inside what proxies accept.
MATCH_QUERY_CHUNK = 25


@dataclass(frozen=True)
class Candidate:
    """An existing Xero contact, as the mirror or a Xero answer describes it."""

    xero_id: str
    contact_number: str | None
    email: str | None
    name: str | None
    status: str | None

    @classmethod
    def from_xero(cls, contact: Mapping[str, Any]) -> Candidate:
        return cls(
            xero_id=str(contact["ContactID"]),
            contact_number=contact.get("ContactNumber"),
            email=contact.get("EmailAddress"),
            name=contact.get("Name"),
            status=contact.get("ContactStatus"),
        )


@dataclass(frozen=True)
class NewCustomer:
    id: int
    email: str | None
    name: str | None


@dataclass(frozen=True)
class MatchDecision:
    ledger_id: int
    xero_id: str | None = None  # set: link to this contact
    key: MatchKey | None = None
    ambiguous: tuple[str, ...] = ()  # set: several contacts matched on `key`; report, do not create

    @property
    def linked(self) -> bool:
        return self.xero_id is not None


def _norm(value: str | None) -> str | None:
    value = (value or "").strip()
    return value.casefold() or None


def _key_of(key: MatchKey, customer: NewCustomer) -> str | None:
    if key == "contact_number":
        return str(customer.id)
    return _norm(customer.email if key == "email" else customer.name)


def _candidate_key(key: MatchKey, candidate: Candidate) -> str | None:
    if key == "contact_number":
        return _norm(candidate.contact_number)
    if candidate.status != "ACTIVE":
        return None
    return _norm(candidate.email if key == "email" else candidate.name)


def match_customers(
    customers: Iterable[NewCustomer],
    candidates: Iterable[Candidate],
    taken: set[str] | frozenset[str] = frozenset(),
) -> dict[int, MatchDecision]:
    """A decision per customer that matched something; customers absent from the result are to be created."""
    index: dict[MatchKey, dict[str, set[str]]] = {key: defaultdict(set) for key in KEYS}
    for candidate in candidates:
        if candidate.xero_id in taken:
            continue
        for key in KEYS:
            value = _candidate_key(key, candidate)
            if value is not None:
                index[key][value].add(candidate.xero_id)

    proposals: dict[int, MatchDecision] = {}
    for customer in customers:
        for key in KEYS:
            value = _key_of(key, customer)
            found = sorted(index[key].get(value, ())) if value is not None else []
            if not found:
                continue
            if len(found) == 1:
                proposals[customer.id] = MatchDecision(customer.id, found[0], key)
            else:
                proposals[customer.id] = MatchDecision(customer.id, key=key, ambiguous=tuple(found))
            break

    claims: dict[str, list[int]] = defaultdict(list)
    for decision in proposals.values():
        if decision.linked:
            claims[decision.xero_id].append(decision.ledger_id)  # type: ignore[index]
    for xero_id, ledger_ids in claims.items():
        if len(ledger_ids) > 1:
            for ledger_id in ledger_ids:
                key = proposals[ledger_id].key
                proposals[ledger_id] = MatchDecision(ledger_id, key=key, ambiguous=(xero_id,))
    return proposals


def where_literal(value: str) -> str:
    """A string literal for Xero's where filter (.NET style: backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def where_clause(customers: Iterable[NewCustomer]) -> str:
    """One `where` that finds every Xero contact any of these customers could match (Xero compares strings
    case-insensitively)."""
    terms: list[str] = []
    for customer in customers:
        terms.append(f"ContactNumber=={where_literal(str(customer.id))}")
        if _norm(customer.email):
            terms.append(f"EmailAddress=={where_literal(customer.email.strip())}")  # type: ignore[union-attr]
        if _norm(customer.name):
            terms.append(f"Name=={where_literal(customer.name.strip())}")  # type: ignore[union-attr]
    return " OR ".join(dict.fromkeys(terms))
