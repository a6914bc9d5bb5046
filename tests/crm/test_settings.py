"""S1-S9: documented defaults, and bad settings refused with a clear message when set (nothing saved)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from xero_crm_sync.company_settings import (
    CompanySettings,
    InvalidSettings,
    get_company_settings,
    template_contact_id,
)

from .helpers import contact, gid


def _get(crm) -> CompanySettings:
    with crm.engine.connect() as conn:
        return get_company_settings(conn, crm.company_id)


def test_defaults_then_saved_values(crm):
    assert _get(crm) == CompanySettings()
    assert (_get(crm).missing_records_mode, _get(crm).import_currencies, _get(crm).sync_interval_minutes) == (
        "active", True, 5
    )  # fmt: skip
    crm.settings(b2c_mode="regex", b2c_regex="(?i)^mrs? ", default_account_manager_id=crm.manager_id,
                 default_role_code="ACC", default_company_type_id=3, sync_interval_minutes=15,
                 display_description="account_number", missing_records_mode="all")  # fmt: skip
    saved = _get(crm)
    assert (saved.b2c_mode, saved.b2c_regex, saved.default_account_manager_id) == (
        "regex",
        "(?i)^mrs? ",
        crm.manager_id,
    )
    assert (saved.default_role_code, saved.default_company_type_id, saved.sync_interval_minutes) == (
        "ACC",
        3,
        15,
    )
    crm.settings(import_currencies=False)  # a partial change keeps the rest
    assert _get(crm).b2c_regex == "(?i)^mrs? " and _get(crm).import_currencies is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"b2c_mode": "regex", "b2c_regex": "(unclosed"}, r"invalid B2C regex '\(unclosed': missing \)"),
        ({"b2c_mode": "regex", "b2c_regex": r"\pL{1000}"}, "needs more than 1024 KiB"),
        ({"b2c_regex": "a" * 1001}, "1001 characters long; the limit is 1000"),
        ({"b2c_mode": "regex"}, "b2c_mode 'regex' .* needs a b2c_regex"),
        ({"b2c_mode": "auto"}, r"b2c_mode \(S2\) must be one of 'regex', 'manual', not 'auto'"),
        ({"display_description": "code"}, r"display_description \(S1\) must be one of"),
        (
            {"missing_records_mode": "some"},
            r"missing_records_mode \(S3\) must be one of 'none', 'active', 'all'",
        ),
        ({"missing_records_include_b2c": "yes"}, "must be true or false, not 'yes'"),
        ({"default_account_manager_id": 999999}, r"CRM user 999999 does not exist in this operating company"),
        ({"default_role_code": "BOSS"}, r"unknown role code 'BOSS'; known: ACC, BUY, MAIN, SALES"),
        ({"default_company_type_id": 42}, "unknown company type 42"),
        ({"sync_interval_minutes": 0}, "from 1 to 1440, not 0"),
        ({"sync_interval_minutes": 1441}, "from 1 to 1440, not 1441"),
        ({"template_ledger": "NO-SUCH-LEDGER"}, "no sales ledger with id or account number 'NO-SUCH-LEDGER'"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
    ],
)
def test_bad_settings_are_refused_with_a_reason_and_nothing_is_saved(crm, changes, message):
    with pytest.raises(InvalidSettings, match=message):
        crm.settings(**changes)
    assert _get(crm) == CompanySettings()


def test_an_account_manager_of_another_company_or_inactive_is_refused(crm):
    with crm.engine.begin() as conn:
        other = conn.execute(text("INSERT INTO operating_company (name) VALUES (:n) RETURNING id"),
                             {"n": f"Other {crm.tag}"}).scalar_one()  # fmt: skip
        stranger = conn.execute(text("INSERT INTO crm_user (operating_company_id, name) VALUES (:c, 'Bob') RETURNING id"),
                                {"c": other}).scalar_one()  # fmt: skip
    with pytest.raises(
        InvalidSettings, match=f"CRM user {stranger} does not exist in this operating company"
    ):
        crm.settings(default_account_manager_id=stranger)
    crm.execute("UPDATE crm_user SET is_active = FALSE WHERE id = :i", i=crm.manager_id)
    with pytest.raises(InvalidSettings, match="is not active"):
        crm.settings(default_account_manager_id=crm.manager_id)


def test_template_ledger_by_contact_id_or_crm_reference(crm):
    # Before any import there is nothing to check a ContactID against: accepted.
    crm.settings(template_ledger=gid("template").upper())
    crm.run({"contacts": [contact("template", "Template Ltd", AccountNumber="TPL")]})
    with pytest.raises(InvalidSettings, match="no Xero contact .* in this organisation's imported contacts"):
        crm.settings(template_ledger=gid("unknown"))
    crm.settings(template_ledger="TPL")  # the CRM ledger's account number
    with crm.engine.connect() as conn:
        assert template_contact_id(conn, crm.company_id) == gid("template")
    crm.execute(
        "INSERT INTO sales_ledger (operating_company_id, name, account_number) VALUES (:company_id, 'L', 'LOCAL')"
    )
    with pytest.raises(InvalidSettings, match="not synced with Xero yet"):
        crm.settings(template_ledger="LOCAL")


def test_several_problems_are_reported_together(crm):
    with pytest.raises(InvalidSettings) as refused:
        crm.settings(b2c_mode="x", sync_interval_minutes=-1, default_role_code="NOPE")
    assert len(refused.value.problems) == 3
