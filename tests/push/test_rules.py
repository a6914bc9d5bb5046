"""Matching (P9), batching, Idempotency-Keys and reading Xero's per-element answers: pure rules."""

from __future__ import annotations

import pytest

from xero_crm_sync.push.batches import BATCH_SIZE, MAX_KEY_LENGTH, batch_key, chunks, order_key
from xero_crm_sync.push.matching import where_clause
from xero_crm_sync.push.results import element_outcomes, name_clash
from xero_crm_sync.rules.matching import Ambiguous, CrmRecord, Match, NoMatch, XeroContact, decide_all


def c(xero_id, number=None, email=None, name=None, status="ACTIVE", account=None):
    return XeroContact(xero_id, account, number, email, name, status)


def decisions_for(customers, candidates, taken=frozenset()):
    """The push keeps only the customers that matched something (the others are created)."""
    return {
        record_id: decision
        for record_id, decision in decide_all(customers, candidates, taken).items()
        if not isinstance(decision, NoMatch)
    }


def test_match_order_account_number_then_number_then_email_then_name():
    customers = [
        CrmRecord(1, None, "a@x.co.nz", "Alpha"),
        CrmRecord(2, None, "b@x.co.nz", "Beta"),
        CrmRecord(3, None, None, "Gamma"),
        CrmRecord(4, "ACC-4", "d@x.co.nz", "Delta"),
    ]
    candidates = [
        c("x-number", number="1", name="Something else"),
        c("x-email-a", email="A@X.CO.NZ", name="Alpha"),  # number wins over email for customer 1
        c("x-email-b", email="b@x.co.nz"),
        c("x-name", name="gamma"),
        c("x-email-d", email="d@x.co.nz"),
        c("x-account", account=" acc-4"),  # account number wins over email for customer 4
    ]
    decisions = decisions_for(customers, candidates)
    assert decisions[1] == Match("x-number", "contact_number")
    assert decisions[2] == Match("x-email-b", "email")
    assert decisions[3] == Match("x-name", "name")
    assert decisions[4] == Match("x-account", "account_number")


def test_email_and_name_only_among_active_contacts_and_taken_ones_skipped():
    customers = [CrmRecord(1, "ACC-1", "a@x.co.nz", "Alpha")]
    archived = [c("x-arch", email="a@x.co.nz", name="Alpha", status="ARCHIVED")]
    assert decisions_for(customers, archived) == {}
    linked = [c("x-linked", email="a@x.co.nz")]
    assert decisions_for(customers, linked, taken={"x-linked"}) == {}
    # ContactNumber is ours and the account number the accounts team's: they match whatever the status.
    assert decisions_for(customers, [c("x-arch", number="1", status="ARCHIVED")])[1].xero_id == "x-arch"
    assert decisions_for(customers, [c("x-arch", account="acc-1", status="ARCHIVED")])[1].xero_id == "x-arch"


def test_ambiguous_matches_link_nothing():
    decisions = decisions_for(
        [CrmRecord(1, None, "a@x.co.nz", "Alpha")], [c("x1", email="a@x.co.nz"), c("x2", email="a@x.co.nz")]
    )
    assert decisions[1] == Ambiguous("email", ("x1", "x2"))
    two_claim_one = decisions_for(
        [CrmRecord(1, None, "s@x.co.nz", "One"), CrmRecord(2, None, "s@x.co.nz", "Two")],
        [c("x1", email="s@x.co.nz")],
    )
    assert isinstance(two_claim_one[1], Ambiguous) and isinstance(two_claim_one[2], Ambiguous)
    # The stronger claim wins alone; the weaker one is ambiguous (nothing created beside the linked contact).
    stronger = decisions_for(
        [CrmRecord(1, None, None, "One"), CrmRecord(2, None, "s@x.co.nz", "Two")],
        [c("x1", number="1", email="s@x.co.nz")],
    )
    assert stronger == {1: Match("x1", "contact_number"), 2: Ambiguous("email", ("x1",))}


def test_where_clause_escapes_and_lists_every_key():
    clause = where_clause(
        [CrmRecord(5, " A-5 ", "a@x.co.nz", 'The "Best" Ltd'), CrmRecord(6, None, None, None)]
    )
    assert clause == (
        'AccountNumber=="A-5" OR ContactNumber=="5" OR EmailAddress=="a@x.co.nz" OR Name=="The \\"Best\\" Ltd" '
        'OR ContactNumber=="6"'
    )


def test_chunks_of_fifty():
    sizes = [len(chunk) for chunk in chunks(list(range(120)))]
    assert sizes == [BATCH_SIZE, BATCH_SIZE, 20]
    with pytest.raises(ValueError):
        list(chunks([1], 0))


def test_keys_are_stable_per_batch_and_bounded():
    body = {"Contacts": [{"Name": "A"}]}
    assert batch_key("sales_ledger", 1, 9, body) == batch_key(
        "sales_ledger", 1, 9, {"Contacts": [{"Name": "A"}]}
    )
    assert batch_key("sales_ledger", 1, 9, body) != batch_key("sales_ledger", 1, 10, body)  # A -> B -> A
    key = order_key("invoice", 123456789, 987654321, "SO-1|2026-01-01")
    assert key == order_key("invoice", 123456789, 987654321, "SO-1|2026-01-01")
    assert key != order_key("invoice", 123456789, 987654322, "SO-1|2026-01-01")
    assert len(key) <= MAX_KEY_LENGTH


def test_element_outcomes_by_position():
    sent = [{"Name": "A"}, {"Name": "B"}, {"Name": "C"}]
    response = {
        "Contacts": [
            {"ContactID": "id-a", "StatusAttributeString": "OK"},
            {
                "ContactID": "00000000-0000-0000-0000-000000000000",
                "HasValidationErrors": True,
                "StatusAttributeString": "ERROR",
                "ValidationErrors": [{"Message": "Email address must be valid."}],
            },
        ]
    }
    ok, rejected, missing = element_outcomes(response, "Contacts", "ContactID", sent)
    assert ok.ok and ok.xero_id == "id-a"
    assert not rejected.ok and rejected.messages == ("Email address must be valid.",)
    assert not missing.ok


def test_name_clash_names_the_name():
    message = (
        "The contact name Zeta Ltd is already assigned to another contact. The contact name must be unique across "
        "all active contacts."
    )
    assert name_clash([message]) == "Zeta Ltd"
    assert name_clash(["Email address must be valid."]) is None
