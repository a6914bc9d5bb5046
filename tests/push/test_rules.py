"""Matching (P9), batching, Idempotency-Keys and reading Xero's per-element answers: pure rules."""

from __future__ import annotations

import pytest

from xero_crm_sync.push.batches import BATCH_SIZE, MAX_KEY_LENGTH, batch_key, chunks, order_key
from xero_crm_sync.push.matching import Candidate, NewCustomer, match_customers, where_clause
from xero_crm_sync.push.results import element_outcomes, name_clash


def c(xero_id, number=None, email=None, name=None, status="ACTIVE"):
    return Candidate(xero_id, number, email, name, status)


def test_match_order_number_then_email_then_name():
    customers = [
        NewCustomer(1, "a@x.co.nz", "Alpha"),
        NewCustomer(2, "b@x.co.nz", "Beta"),
        NewCustomer(3, None, "Gamma"),
    ]
    candidates = [
        c("x-number", number="1", name="Something else"),
        c("x-email-a", email="A@X.CO.NZ", name="Alpha"),  # number wins over email for customer 1
        c("x-email-b", email="b@x.co.nz"),
        c("x-name", name="gamma"),
    ]
    decisions = match_customers(customers, candidates)
    assert (decisions[1].xero_id, decisions[1].key) == ("x-number", "contact_number")
    assert (decisions[2].xero_id, decisions[2].key) == ("x-email-b", "email")
    assert (decisions[3].xero_id, decisions[3].key) == ("x-name", "name")


def test_email_and_name_only_among_active_contacts_and_taken_ones_skipped():
    customers = [NewCustomer(1, "a@x.co.nz", "Alpha")]
    archived = [c("x-arch", email="a@x.co.nz", name="Alpha", status="ARCHIVED")]
    assert match_customers(customers, archived) == {}
    linked = [c("x-linked", email="a@x.co.nz")]
    assert match_customers(customers, linked, taken={"x-linked"}) == {}
    # ContactNumber is ours: it matches whatever the status.
    assert match_customers(customers, [c("x-arch", number="1", status="ARCHIVED")])[1].xero_id == "x-arch"


def test_ambiguous_matches_link_nothing():
    decisions = match_customers(
        [NewCustomer(1, "a@x.co.nz", "Alpha")], [c("x1", email="a@x.co.nz"), c("x2", email="a@x.co.nz")]
    )
    assert not decisions[1].linked and decisions[1].ambiguous == ("x1", "x2")
    two_claim_one = match_customers(
        [NewCustomer(1, "s@x.co.nz", "One"), NewCustomer(2, "s@x.co.nz", "Two")], [c("x1", email="s@x.co.nz")]
    )
    assert not two_claim_one[1].linked and not two_claim_one[2].linked


def test_where_clause_escapes_and_lists_every_key():
    clause = where_clause([NewCustomer(5, "a@x.co.nz", 'The "Best" Ltd'), NewCustomer(6, None, None)])
    assert clause == (
        'ContactNumber=="5" OR EmailAddress=="a@x.co.nz" OR Name=="The \\"Best\\" Ltd" OR ContactNumber=="6"'
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
