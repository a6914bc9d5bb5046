"""P9: finding the Xero contacts a new CRM customer could already be, before the push creates one.

The rule that decides among them is the import's too: `rules/matching.py` (account number, ContactNumber = the
CRM id, email, name; trimmed and case-insensitive; email and name among active contacts only). This module only
builds the lookup: candidates come from the import's mirror first (free,
`sql/push/030_match_customers_mirror.sql`), then one `where` query per chunk of the customers the mirror decided
nothing for (`where_clause`), so matching costs ceil(unmatched / MATCH_QUERY_CHUNK) calls at most.
"""

from __future__ import annotations

from collections.abc import Iterable

from xero_crm_sync.rules.matching import CrmRecord, norm

# Up to four conditions per customer keep a chunk's query string near 5 KB, well inside what proxies accept.
MATCH_QUERY_CHUNK = 25


def where_literal(value: str) -> str:
    """A string literal for Xero's where filter (.NET style: backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def where_clause(records: Iterable[CrmRecord]) -> str:
    """One `where` that finds every Xero contact any of these records could match on any level (Xero compares
    strings case-insensitively; `decide_all` then applies the levels and the ACTIVE condition)."""
    terms: list[str] = []
    for record in records:
        if norm(record.account_number):
            terms.append(f"AccountNumber=={where_literal(record.account_number.strip())}")  # type: ignore[union-attr]
        terms.append(f"ContactNumber=={where_literal(str(record.id))}")
        if norm(record.email):
            terms.append(f"EmailAddress=={where_literal(record.email.strip())}")  # type: ignore[union-attr]
        if norm(record.name):
            terms.append(f"Name=={where_literal(record.name.strip())}")  # type: ignore[union-attr]
    return " OR ".join(dict.fromkeys(terms))
