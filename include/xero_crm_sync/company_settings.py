"""Integration settings S1-S9 per operating company (table `integration_settings`), validated when they are set.

A bad setting is refused with a message saying what is wrong and what is allowed, at the moment someone sets
it, instead of surfacing mid-run. An operating company without a row uses the defaults below.

    S1 display_description            'name' (default) | 'account_number': the label of Sales Ledger records
    S2 b2c_mode, b2c_regex            'manual' (default: users set the flag) | 'regex' (RE2 pattern on the name)
    S3 missing_records_mode           'active' (default) | 'all' | 'none'; *_include_suppliers / *_include_b2c
    S4 default_account_manager_id     a CRM user of the same operating company (or none); default: the
                                      "Unassigned" user, which `migrate` and `connect` create (ensure_defaults)
    S5 default_role_code              a role_code of contacts the missing-record process creates (or none)
    S6 default_company_type_id        a company_type id for companies it creates (or none)
    S7 import_currencies              True (default)
    S8 template_ledger                a Xero ContactID, or a CRM sales ledger (id or account number) synced with Xero
    S9 sync_interval_minutes          5 (default), 1..1440
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from xero_crm_sync.rules.b2c import InvalidPattern, compile_b2c

DISPLAY_DESCRIPTIONS = ("account_number", "name")
B2C_MODES = ("regex", "manual")
MISSING_RECORD_MODES = ("none", "active", "all")
SYNC_INTERVAL_RANGE = (1, 1440)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class InvalidSettings(ValueError):
    """One or more settings were refused; `problems` lists each reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class CompanySettings:
    display_description: str = "name"  # S1
    b2c_mode: str = "manual"  # S2
    b2c_regex: str | None = None  # S2
    missing_records_mode: str = "active"  # S3
    missing_records_include_suppliers: bool = False  # S3
    missing_records_include_b2c: bool = False  # S3
    default_account_manager_id: int | None = None  # S4
    default_role_code: str | None = None  # S5
    default_company_type_id: int | None = None  # S6
    import_currencies: bool = True  # S7
    template_ledger: str | None = None  # S8
    sync_interval_minutes: int = 5  # S9


FIELDS = tuple(f.name for f in dataclasses.fields(CompanySettings))

_SELECT = text(
    "SELECT display_description, b2c_mode, b2c_regex, missing_records_mode, missing_records_include_suppliers,"
    " missing_records_include_b2c, default_account_manager_id, default_role_code, default_company_type_id,"
    " import_currencies, template_ledger, sync_interval_minutes"
    " FROM integration_settings WHERE operating_company_id = :company_id"
)
_UPSERT = text(
    """INSERT INTO integration_settings (
        operating_company_id, display_description, b2c_mode, b2c_regex, missing_records_mode,
        missing_records_include_suppliers, missing_records_include_b2c, default_account_manager_id,
        default_role_code, default_company_type_id, import_currencies, template_ledger, sync_interval_minutes,
        updated_at)
    VALUES (:company_id, :display_description, :b2c_mode, :b2c_regex, :missing_records_mode,
        :missing_records_include_suppliers, :missing_records_include_b2c, :default_account_manager_id,
        :default_role_code, :default_company_type_id, :import_currencies, :template_ledger,
        :sync_interval_minutes, CURRENT_TIMESTAMP)
    ON CONFLICT (operating_company_id) DO UPDATE SET
        display_description = excluded.display_description, b2c_mode = excluded.b2c_mode,
        b2c_regex = excluded.b2c_regex, missing_records_mode = excluded.missing_records_mode,
        missing_records_include_suppliers = excluded.missing_records_include_suppliers,
        missing_records_include_b2c = excluded.missing_records_include_b2c,
        default_account_manager_id = excluded.default_account_manager_id,
        default_role_code = excluded.default_role_code, default_company_type_id = excluded.default_company_type_id,
        import_currencies = excluded.import_currencies, template_ledger = excluded.template_ledger,
        sync_interval_minutes = excluded.sync_interval_minutes, updated_at = excluded.updated_at"""
)


UNASSIGNED_USER = (
    "Unassigned"  # S4's default: the CRM user imported ledgers belong to until someone is assigned
)

# Records the defaults name, created for every operating company (or one), idempotently: the "Unassigned" CRM
# user, and a settings row whose S4 points at it. A company that already has settings keeps them (S4 set to none
# on purpose stays none); migration 0240 gave companies created before this their Unassigned manager once.
_ENSURE_USER = (
    "INSERT INTO crm_user (operating_company_id, name) SELECT id, :user FROM operating_company WHERE {where}"
    " ON CONFLICT (operating_company_id, name) DO NOTHING"
)
_ENSURE_SETTINGS = (
    "INSERT INTO integration_settings (operating_company_id, default_account_manager_id)"
    " SELECT oc.id, u.id FROM operating_company oc"
    " JOIN crm_user u ON u.operating_company_id = oc.id AND u.name = :user WHERE {where}"
    " ON CONFLICT (operating_company_id) DO NOTHING"
)


def ensure_defaults(conn: Connection, operating_company_id: int | None = None) -> None:
    """Create what the settings' defaults need (see above) for one operating company, or for all of them."""
    params: dict[str, Any] = {"user": UNASSIGNED_USER}
    where, where_oc = "TRUE", "TRUE"
    if operating_company_id is not None:
        where, where_oc = "id = :company_id", "oc.id = :company_id"
        params["company_id"] = operating_company_id
    conn.execute(text(_ENSURE_USER.format(where=where)), params)
    conn.execute(text(_ENSURE_SETTINGS.format(where=where_oc)), params)


def get_company_settings(conn: Connection, operating_company_id: int) -> CompanySettings:
    """The operating company's settings (the defaults where it has never saved any)."""
    row = conn.execute(_SELECT, {"company_id": operating_company_id}).mappings().first()
    if row is None:
        return CompanySettings()
    values = dict(row)
    for flag in ("missing_records_include_suppliers", "missing_records_include_b2c", "import_currencies"):
        values[flag] = bool(values[flag])
    return CompanySettings(**values)


def set_company_settings(conn: Connection, operating_company_id: int, **changes: Any) -> CompanySettings:
    """Change some settings; all are validated together and nothing is saved if any is refused."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidSettings([f"unknown setting {name!r}; known: {', '.join(FIELDS)}" for name in unknown])
    _require_company(conn, operating_company_id)
    updated = dataclasses.replace(get_company_settings(conn, operating_company_id), **changes)
    problems = validate(conn, operating_company_id, updated)
    if problems:
        raise InvalidSettings(problems)
    conn.execute(_UPSERT, {"company_id": operating_company_id, **dataclasses.asdict(updated)})
    return updated


def _require_company(conn: Connection, operating_company_id: int) -> None:
    found = conn.execute(
        text("SELECT 1 FROM operating_company WHERE id = :id"), {"id": operating_company_id}
    ).first()
    if found is None:
        raise InvalidSettings([f"operating company {operating_company_id} does not exist"])


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> list[str]:
    if value in allowed:
        return []
    return [f"{name} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}"]


def _flag(name: str, value: Any) -> list[str]:
    return [] if isinstance(value, bool) else [f"{name} must be true or false, not {value!r}"]


def validate(conn: Connection, operating_company_id: int, s: CompanySettings) -> list[str]:
    """Every reason `s` cannot be saved for this operating company (empty when it can)."""
    problems = _choice("display_description (S1)", s.display_description, DISPLAY_DESCRIPTIONS)
    problems += _choice("b2c_mode (S2)", s.b2c_mode, B2C_MODES)
    if s.b2c_mode == "regex" and not s.b2c_regex:
        problems.append("b2c_mode 'regex' (S2) needs a b2c_regex")
    if s.b2c_regex is not None:
        try:
            compile_b2c(s.b2c_regex)
        except InvalidPattern as exc:
            problems.append(f"b2c_regex (S2): {exc}")
    problems += _choice("missing_records_mode (S3)", s.missing_records_mode, MISSING_RECORD_MODES)
    problems += _flag("missing_records_include_suppliers (S3)", s.missing_records_include_suppliers)
    problems += _flag("missing_records_include_b2c (S3)", s.missing_records_include_b2c)
    problems += _flag("import_currencies (S7)", s.import_currencies)
    problems += _check_references(conn, operating_company_id, s)
    low, high = SYNC_INTERVAL_RANGE
    interval = s.sync_interval_minutes
    if isinstance(interval, bool) or not isinstance(interval, int) or not low <= interval <= high:
        problems.append(
            f"sync_interval_minutes (S9) must be a whole number from {low} to {high}, not {interval!r}"
        )
    if s.template_ledger is not None:
        problems += _check_template_ledger(conn, operating_company_id, s.template_ledger)
    return problems


def _check_references(conn: Connection, operating_company_id: int, s: CompanySettings) -> list[str]:
    problems: list[str] = []
    manager = s.default_account_manager_id
    if manager is not None:
        if isinstance(manager, bool) or not isinstance(manager, int):
            problems.append(f"default_account_manager_id (S4) must be a CRM user id, not {manager!r}")
        else:
            found = conn.execute(
                text("SELECT is_active FROM crm_user WHERE id = :id AND operating_company_id = :company_id"),
                {"id": manager, "company_id": operating_company_id},
            ).first()
            if found is None:
                problems.append(
                    f"default_account_manager_id (S4): CRM user {manager} does not exist in this operating company"
                )
            elif not found[0]:
                problems.append(f"default_account_manager_id (S4): CRM user {manager} is not active")
    if s.default_role_code is not None:
        found = conn.execute(
            text("SELECT 1 FROM role_code WHERE code = :code"), {"code": s.default_role_code}
        ).first()
        if found is None:
            codes = conn.execute(text("SELECT code FROM role_code ORDER BY code")).scalars().all()
            problems.append(
                f"default_role_code (S5): unknown role code {s.default_role_code!r}; known: {', '.join(codes)}"
            )
    type_id = s.default_company_type_id
    if type_id is not None:
        found = (
            None
            if isinstance(type_id, bool) or not isinstance(type_id, int)
            else conn.execute(text("SELECT 1 FROM company_type WHERE id = :id"), {"id": type_id}).first()
        )
        if found is None:
            problems.append(f"default_company_type_id (S6): unknown company type {type_id!r}")
    return problems


def _check_template_ledger(conn: Connection, operating_company_id: int, reference: str) -> list[str]:
    if not isinstance(reference, str) or not reference.strip():
        return ["template_ledger (S8) must be a Xero ContactID or a CRM sales ledger id/account number"]
    reference = reference.strip()
    if _GUID.match(reference):
        contact_id = reference.lower()
        known = conn.execute(
            text(
                "SELECT"
                " (SELECT COUNT(*) FROM sales_ledger WHERE operating_company_id = :company_id"
                "  AND accounting_code = :contact_id)"
                " + (SELECT COUNT(*) FROM val_contacts v JOIN xero_connection x ON x.id = v.connection_id"
                "  WHERE x.operating_company_id = :company_id AND x.role = 'primary' AND v.xero_id = :contact_id),"
                " (SELECT COUNT(*) FROM val_contacts v JOIN xero_connection x ON x.id = v.connection_id"
                "  WHERE x.operating_company_id = :company_id AND x.role = 'primary')"
            ),
            {"company_id": operating_company_id, "contact_id": contact_id},
        ).one()
        found, imported = known
        # Before the first import there is nothing to check against: accept, the push reports it if wrong.
        if not found and imported:
            return [
                f"template_ledger (S8): no Xero contact {contact_id} in this organisation's imported contacts"
            ]
        return []
    problems: list[str] = []
    _ledger_contact_id(conn, operating_company_id, reference, problems)
    return problems


def _ledger_contact_id(
    conn: Connection, operating_company_id: int, reference: str, problems: list[str]
) -> str | None:
    rows = conn.execute(
        text(
            "SELECT id, accounting_code FROM sales_ledger WHERE operating_company_id = :company_id"
            " AND (CAST(id AS TEXT) = :ref OR account_number = :ref)"
        ),
        {"company_id": operating_company_id, "ref": reference},
    ).all()
    if not rows:
        problems.append(f"template_ledger (S8): no sales ledger with id or account number {reference!r}")
        return None
    if len(rows) > 1:
        problems.append(f"template_ledger (S8): {reference!r} names {len(rows)} sales ledgers; use its id")
        return None
    if rows[0][1] is None:
        problems.append(
            f"template_ledger (S8): sales ledger {reference!r} is not synced with Xero yet (no accounting code)"
        )
        return None
    return rows[0][1]


def template_contact_id(conn: Connection, operating_company_id: int) -> str | None:
    """The Xero ContactID whose defaults new Xero contacts copy (S8, P2), or None when unset or unresolvable."""
    reference = get_company_settings(conn, operating_company_id).template_ledger
    if not reference:
        return None
    reference = reference.strip()
    if _GUID.match(reference):
        return reference.lower()
    return _ledger_contact_id(conn, operating_company_id, reference, [])
