"""Progress of long reads: pages done of pages expected per entity, with an estimate of the time left.

Xero's paged GETs answer with a `pagination` block, `{"page", "pageSize", "pageCount", "itemCount"}`
(https://developer.xero.com/documentation/api/accounting/requests-and-responses#pagination), so after the first
page of a read the total is known. The estimate is the average time per page so far times the pages left: pages
are paced at Xero's 60 calls a minute, so the rate is steady once a read is under way.

Lines go to the `xero_crm_sync.progress` logger, which ends up in the Airflow task log and on the CLI's
console, every `every` seconds at most (and always for the first and the last page), so a 100-page first sync
says where it is without flooding the log. Reads of a single page say nothing here: the extract's own summary
line covers them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PREFIX = "progress:"  # `make run` picks these lines out of the Airflow log it writes to a file


def duration(seconds: float) -> str:
    """A time left as people say it: `45 s`, `3 min 20 s`, `1 h 05 min`."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """One entity's read. Call `page()` after each page is staged."""

    def __init__(
        self,
        entity: str,
        *,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.entity = entity
        self.every = every
        self._clock = clock
        self._log = logger
        self._started = clock()
        self._last_said: float | None = None
        self.pages = 0
        self.records = 0

    def page(self, records: int, page_count: int | None, item_count: int | None) -> str | None:
        """Count a page; log (and return) a progress line when one is due."""
        self.pages += 1
        self.records += records
        if not page_count or page_count <= 1:
            return None
        now = self._clock()
        last = self.pages >= page_count
        due = self._last_said is None or now - self._last_said >= self.every
        if not (due or last):
            return None
        self._last_said = now
        elapsed = now - self._started
        left = elapsed / self.pages * max(0, page_count - self.pages)
        of_records = f" of {item_count:,}" if item_count else ""
        line = (
            f"{PREFIX} {self.entity} page {self.pages} of {page_count} ({self.records:,}{of_records} records, "
            f"{self.pages * 100 // page_count}%), " + ("done" if last else f"about {duration(left)} left")
        )
        self._log.info("%s", line)
        return line
