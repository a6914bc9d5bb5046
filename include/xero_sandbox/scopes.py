"""Which OAuth2 scopes open which Accounting API endpoints, as Xero documents them (broad and 2026 granular).

Xero grants an endpoint when the token holds *any* scope of the endpoint's family: the read-write scope for any
method, or its `.read` variant for GET. Since 2026-03-02 new apps get granular scopes (accounting.invoices,
accounting.payments, ...) instead of the broad accounting.transactions / accounting.reports.read; older
("legacy") apps may use either until they migrate.
"""

from __future__ import annotations

OPENID_SCOPES = frozenset({"openid", "profile", "email"})
OFFLINE_ACCESS = "offline_access"

# Broad scopes refused to apps registered as granular (created after 2026-03-02).
BROAD_ONLY_SCOPES = frozenset(
    {"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"}
)

_RW_FAMILIES = (
    "accounting.transactions",
    "accounting.contacts",
    "accounting.settings",
    "accounting.attachments",
    "accounting.invoices",
    "accounting.payments",
    "accounting.banktransactions",
    "accounting.manualjournals",
    "accounting.classicexpenses",
)
_READ_ONLY = (
    "accounting.reports.read",
    "accounting.journals.read",
    "accounting.budgets.read",
    "accounting.reports.aged.read",
    "accounting.reports.balancesheet.read",
    "accounting.reports.banksummary.read",
    "accounting.reports.budgetsummary.read",
    "accounting.reports.executivesummary.read",
    "accounting.reports.profitandloss.read",
    "accounting.reports.trialbalance.read",
    "accounting.reports.taxreports.read",
    "accounting.reports.tenninetynine.read",
)
ACCOUNTING_SCOPES = frozenset(
    [*_RW_FAMILIES, *(f"{f}.read" for f in _RW_FAMILIES), *_READ_ONLY, "paymentservices"]
)
KNOWN_SCOPES = ACCOUNTING_SCOPES | OPENID_SCOPES | {OFFLINE_ACCESS}

# Collection (first path segment, lower case) -> the scope families that open it.
_T, _I, _P, _B, _M = (
    "accounting.transactions",
    "accounting.invoices",
    "accounting.payments",
    "accounting.banktransactions",
    "accounting.manualjournals",
)
_COLLECTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "contacts": ("accounting.contacts",),
    "contactgroups": ("accounting.contacts",),
    "invoices": (_T, _I),
    "creditnotes": (_T, _I),
    "linkedtransactions": (_T, _I),
    "purchaseorders": (_T, _I),
    "quotes": (_T, _I),
    "repeatinginvoices": (_T, _I),
    "items": ("accounting.settings", _I),
    "batchpayments": (_T, _P),
    "overpayments": (_T, _P),
    "payments": (_T, _P),
    "prepayments": (_T, _P),
    "banktransactions": (_T, _B),
    "banktransfers": (_T, _B),
    "manualjournals": (_T, _M),
    "receipts": (_T, "accounting.classicexpenses"),
    "expenseclaims": (_T, "accounting.classicexpenses"),
    "accounts": ("accounting.settings",),
    "brandingthemes": ("accounting.settings",),
    "currencies": ("accounting.settings",),
    "organisation": ("accounting.settings",),
    "organisations": ("accounting.settings",),
    "taxrates": ("accounting.settings",),
    "trackingcategories": ("accounting.settings",),
    "users": ("accounting.settings",),
    "invoicereminders": ("accounting.settings",),
    "setup": ("accounting.settings",),
    "paymentservices": ("paymentservices",),
    "journals": ("accounting.journals.read",),
    "budgets": ("accounting.budgets.read",),
}
_SUBRESOURCE_FAMILIES: dict[str, tuple[str, ...]] = {
    "attachments": ("accounting.attachments",),
    "cissettings": ("accounting.settings",),
    "paymentservices": ("paymentservices",),
}
# Report name (lower case) -> its granular scope; every report also opens with accounting.reports.read.
_REPORT_SCOPES: dict[str, str] = {
    "agedpayablesbycontact": "accounting.reports.aged.read",
    "agedreceivablesbycontact": "accounting.reports.aged.read",
    "balancesheet": "accounting.reports.balancesheet.read",
    "banksummary": "accounting.reports.banksummary.read",
    "budgetsummary": "accounting.reports.budgetsummary.read",
    "executivesummary": "accounting.reports.executivesummary.read",
    "profitandloss": "accounting.reports.profitandloss.read",
    "trialbalance": "accounting.reports.trialbalance.read",
    "tenninetynine": "accounting.reports.tenninetynine.read",
}


def _family_scopes(families: tuple[str, ...], method: str) -> frozenset[str]:
    """Read-write families open every method; their `.read` variants (and read-only families) open GET only."""
    reading = method in ("GET", "HEAD")
    scopes: set[str] = set()
    for family in families:
        if family.endswith(".read"):
            if reading:
                scopes.add(family)
            continue
        scopes.add(family)
        if reading:
            scopes.add(f"{family}.read")
    return frozenset(scopes)


def accepted_scopes(method: str, api_path: str) -> frozenset[str] | None:
    """Scopes any one of which lets a token call `method api_path` (path relative to /api.xro/2.0).

    Returns None for a path no scope opens (unknown collections: the router answers 404 for them after the
    scope check is skipped) and an empty set for an operation no scope allows (writing a read-only family).
    """
    method = method.upper()
    parts = [p for p in api_path.strip("/").split("/") if p]
    if not parts:
        return None
    collection = parts[0].lower()
    if collection == "reports":
        if method not in ("GET", "HEAD"):
            return frozenset()
        granular = _REPORT_SCOPES.get(parts[1].lower()) if len(parts) > 1 else None
        return frozenset({"accounting.reports.read", *([granular] if granular else [])})
    # Some sub-resources have their own scope, whatever the parent (attachments, CIS settings, payment services).
    if len(parts) >= 3 and parts[2].lower() in _SUBRESOURCE_FAMILIES:
        return _family_scopes(_SUBRESOURCE_FAMILIES[parts[2].lower()], method)
    families = _COLLECTION_FAMILIES.get(collection)
    if families is None:
        return None
    return _family_scopes(families, method)


def is_allowed(granted: frozenset[str] | set[str], method: str, api_path: str) -> bool:
    """True when the granted scopes open this endpoint (unknown collections pass: the router 404s them)."""
    accepted = accepted_scopes(method, api_path)
    if accepted is None:
        return True
    return bool(accepted & set(granted))


def parse_scope(value: str | None) -> list[str]:
    """Space-separated scope string -> list in request order, duplicates removed."""
    seen: dict[str, None] = {}
    for item in (value or "").split():
        seen.setdefault(item, None)
    return list(seen)


def refused_scopes(requested: list[str], allowed: frozenset[str] | None, granular: bool) -> list[str]:
    """The requested scopes this app may not have: unknown, outside its allowed set, or broad for a granular app."""
    refused = []
    for scope in requested:
        if scope not in KNOWN_SCOPES:
            refused.append(scope)
        elif granular and scope in BROAD_ONLY_SCOPES:
            refused.append(scope)
        elif allowed is not None and scope not in allowed and scope not in OPENID_SCOPES | {OFFLINE_ACCESS}:
            refused.append(scope)
    return refused


def wants_organisation_access(scopes: list[str] | frozenset[str]) -> bool:
    """A flow connects organisations only when it asks for an organisation scope (not for sign-in alone)."""
    return any(s in ACCOUNTING_SCOPES for s in scopes)
