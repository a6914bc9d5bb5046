"""S2/I3: classify a customer as B2C (consumer) or business by a regex on its name.

Patterns are user input run on every import, so they go through RE2 (linear time, no catastrophic
backtracking) with a memory budget and a length cap; a pattern that breaks either is refused when it is set.
The pattern is searched anywhere in the name (anchor it with ^...$ to match the whole name); case-sensitive
unless it says `(?i)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000
MAX_PROGRAM_MEMORY = 1 << 20  # bytes RE2 may use to compile one pattern


class InvalidPattern(ValueError):
    """The B2C pattern cannot be used; the message says why."""


def compile_b2c(pattern: str) -> Any:
    """The compiled RE2 pattern, or InvalidPattern (empty, too long, not RE2 syntax, too large to compile)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InvalidPattern("the B2C regex is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(
            f"the B2C regex is {len(pattern)} characters long; the limit is {MAX_PATTERN_LENGTH}"
        )
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_MEMORY
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "too large" in reason:
            reason = f"the pattern needs more than {MAX_PROGRAM_MEMORY // 1024} KiB to compile; simplify it"
        raise InvalidPattern(f"invalid B2C regex {pattern[:80]!r}: {reason}") from None


def classify_b2c(name: str | None, regex: Any) -> bool:
    """True when the customer name matches the B2C pattern (a missing name is business)."""
    return bool(name) and regex.search(name) is not None


def reclassify(rows: Iterable[tuple[int, str | None, bool]], regex: Any) -> list[tuple[int, bool]]:
    """(id, name, current flag) -> (id, new flag) for the rows whose flag changes."""
    changes: list[tuple[int, bool]] = []
    for row_id, name, current in rows:
        wanted = classify_b2c(name, regex)
        if bool(current) != wanted:
            changes.append((row_id, wanted))
    return changes
