"""Xero's answer to a batched write with summarizeErrors=false -> one outcome per element sent (pure).

Xero answers 200 with every element in the order sent: saved ones with their ID, rejected ones with
`ValidationErrors` (and `StatusAttributeString: "ERROR"`, `HasValidationErrors: true`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_NAME_TAKEN = re.compile(r"The contact name (?P<name>.+) is already assigned to another contact", re.S)


@dataclass(frozen=True)
class ElementOutcome:
    position: int
    ok: bool
    xero_id: str | None = None
    messages: tuple[str, ...] = ()
    answer: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return "; ".join(self.messages)


def element_outcomes(
    response: Mapping[str, Any], collection: str, id_field: str, sent: Sequence[Mapping[str, Any]]
) -> list[ElementOutcome]:
    """One outcome per element of `sent`, by position. An element Xero left unanswered counts as rejected."""
    answers = list(response.get(collection) or [])
    outcomes: list[ElementOutcome] = []
    for position, _element in enumerate(sent):
        if position >= len(answers):
            outcomes.append(
                ElementOutcome(position, False, messages=("Xero's answer did not include this record",))
            )
            continue
        answer = answers[position]
        errors = tuple(
            str(error.get("Message"))
            for error in answer.get("ValidationErrors") or []
            if isinstance(error, Mapping) and error.get("Message")
        )
        failed = (
            bool(errors)
            or answer.get("StatusAttributeString") == "ERROR"
            or answer.get("HasValidationErrors")
        )
        xero_id = answer.get(id_field)
        if failed or not xero_id or xero_id == ZERO_GUID:
            outcomes.append(
                ElementOutcome(
                    position, False, messages=errors or ("Xero rejected the record",), answer=answer
                )
            )
        else:
            outcomes.append(ElementOutcome(position, True, xero_id=str(xero_id), answer=answer))
    return outcomes


def name_clash(messages: Sequence[str]) -> str | None:
    """The contact name Xero says is already assigned to another contact, if that is the rejection."""
    for message in messages:
        found = _NAME_TAKEN.search(message)
        if found:
            return found.group("name").strip()
    return None
