"""Split the pipeline's interleaved steps into stages without changing its code.

`import_run.extract` alternates between reading a page from Xero (HTTP + JSON) and staging it (conversion + bulk
write); the push alternates between SQL (adopt, diff, mirror matching) and sending batches. While `instrumented()`
is active, the functions that do each part are wrapped with a `StageClock` stage, looked up where the pipeline
looks them up (module attributes and the client class), and put back afterwards.

Spans recorded (they never nest):
- `xero_wait`: inside `XeroClient.request` (waiting on the sandbox's answer, reading its body);
- `stage`: `staging.stage_page` + `staging.write_page` (Xero JSON -> rows -> COPY / executemany), counting the
  line rows written (`clock.counts["line_rows"]`);
- `validate`: `import_run.check_entity` (one entity's GX suite) and `import_run.record_entity` (its verdicts and
  promotion), which extract calls for each entity as soon as it is read (while the next one is read; on
  PostgreSQL the record on the load-ahead thread, so that span overlaps staging) and the validate step for any
  left over;
- `load_ahead`: `import_run.load_ahead` (the load steps extract commits while later entities are read; on
  PostgreSQL on a thread, so this span overlaps staging) and `import_run._load_beside` (on PostgreSQL, the
  document lines committed on a third thread, beside the later steps: these spans overlap each other too);
- `push_diff`: the push's SQL files (`push.sqlfiles.execute` / `fetch`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.measure import StageClock


def _timed(clock: StageClock, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock.stage(name):
            return func(*args, **kwargs)

    return wrapper


def _counting_lines(clock: StageClock, func: Callable[..., Any]) -> Callable[..., Any]:
    """`write_page(conn, entity, page)`: count the line rows it writes (without asking the database)."""

    @functools.wraps(func)
    def wrapper(conn: Any, entity: Any, page: Any, *args: Any, **kwargs: Any) -> Any:
        clock.count("line_rows", sum(len(rows) for rows in page.lines.values()))
        return func(conn, entity, page, *args, **kwargs)

    return wrapper


@contextmanager
def instrumented(clock: StageClock) -> Iterator[StageClock]:
    from xero_crm_sync import import_run, staging
    from xero_crm_sync.push import sqlfiles
    from xero_crm_sync.xero_client import XeroClient

    targets: list[tuple[Any, str, str]] = [
        (XeroClient, "request", "xero_wait"),
        (staging, "stage_page", "stage"),
        (staging, "write_page", "stage"),
        (import_run, "check_entity", "validate"),
        (import_run, "record_entity", "validate"),
        (import_run, "load_ahead", "load_ahead"),
        (import_run, "_load_beside", "load_ahead"),
        (sqlfiles, "execute", "push_diff"),
        (sqlfiles, "fetch", "push_diff"),
    ]
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in targets]
    try:
        for owner, attr, name in targets:
            func = getattr(owner, attr)
            if attr == "write_page":
                func = _counting_lines(clock, func)
            setattr(owner, attr, _timed(clock, name, func))
        yield clock
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)
