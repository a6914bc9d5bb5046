"""Bad input from Xero: pages of records as Xero's JSON, with missing fields, wrong types, huge strings, odd
unicode, dates out of range, duplicate ids within a page, unknown new fields and hostile strings (SQL, HTML),
run through the import's own steps: `staging.stage_page` + `write_page` (what extract does with each page it
reads), then `import_run.validate` and `import_run.load` (the DAG's next two tasks).

What must hold for every page (`check_run`):
- the run completes (no exception in any step);
- every staged record ends `valid` or `quarantined`, and each quarantined one has a quarantine row with its
  reasons and raw payload;
- a record nobody tampered with (and whose id is not repeated on its page) is loaded into the mirror;
- text of valid records is stored verbatim, in the mirror and in the CRM (customer and product names, emails,
  codes, descriptions).

Templates are real records of a generated sandbox organisation, rendered exactly as the sandbox sends them.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import orjson
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from xero_crm_sync import import_run, staging
from xero_crm_sync.entities import ENTITIES, Entity

ENTITY = {e.name: e for e in ENTITIES}
FUZZED = ("contacts", "items", "invoices")

# Strings that break code which builds SQL, HTML or format strings by hand; all must be stored verbatim.
HOSTILE = (
    "'; DROP TABLE sales_ledger; --",
    "Robert'); DROP TABLE product;--",
    '" OR "1"="1',
    "' OR 1=1 --",
    "1; SELECT pg_sleep(10)",
    "' || (SELECT token_blob FROM xero_connection) || '",
    ":connection_id",
    "%(name)s %s %d {0} {name}",
    "$1 $$ \\ \\\\ \\x00",
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    "&lt;b&gt; &amp; &#0;",
    "\u202etxt.exe",  # right-to-left override
    "Z\u0351\u0352a\u0353l\u0354g\u0355o",
    "\U0001f600\U0001f44d\U0001f3fd family: \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "zero\u200bwidth\ufeffbom",
    "\U0001d518\U0001d52b\U0001d526",
    "line\r\nbreak\ttab",
    "",
    " ",
)
BAD_DATES = (
    "/Date(99999999999999999)/",
    "/Date(-99999999999999999)/",
    "/Date(abc)/",
    "0000-00-00T00:00:00",
    "2026-02-30T00:00:00",
    "9999-12-31T23:59:59",
    "0001-01-01T00:00:00",
    "10000-01-01",
    "yesterday",
    "",
)

odd_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("\x00\ud800\udfff"),
    max_size=40,
)
strings = st.one_of(
    st.sampled_from(HOSTILE),
    odd_text,
    st.integers(min_value=1, max_value=200_000).map(lambda n: "x" * n),  # huge
)
wrong_types = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@cache
def _organisation(seed: int, contacts: int) -> Any:
    from xero_sandbox.state import build_state

    [tenant] = build_state(seed=seed, contacts=contacts).tenants.values()
    return tenant.store


@cache
def wire_records(collection: str, seed: int = 3, contacts: int = 12) -> list[dict[str, Any]]:
    """Wire-shaped records of one collection of a small generated organisation (what the sandbox's GET would
    send). Cached and shared: copy a record before changing it."""
    from xero_sandbox.accounting import render, wire

    org = _organisation(seed, contacts)
    renderer = render.RENDERERS[collection]
    records = [renderer(r, org, render.PAGE, 4) for r in org.collection(collection).values()]
    return orjson.loads(wire.dumps(records))


@lru_cache(maxsize=1)
def templates() -> dict[str, list[dict[str, Any]]]:
    """The fuzzed entities' records (every item: invoice lines must name known codes; ACCREC invoices)."""
    out = {name: wire_records(ENTITY[name].collection) for name in FUZZED}
    out["invoices"] = [r for r in out["invoices"] if r.get("Type") == "ACCREC"]
    return out


def text_fields(entity: Entity) -> list[tuple[str, str]]:
    """(wire field, mirror column) of the entity's top-level text columns other than its key."""
    return [
        (c.source, c.name)
        for c in entity.columns
        if c.type == "text" and isinstance(c.source, str) and "." not in c.source and c.source != entity.key
    ]


@dataclass
class Mutation:
    kind: str  # drop | retype | string | date | unknown
    field: str
    value: Any = None

    def apply(self, record: dict[str, Any]) -> None:
        if self.kind == "drop":
            record.pop(self.field, None)
        else:
            record[self.field] = self.value


@st.composite
def mutation(draw: Callable[..., Any], entity: Entity, record: dict[str, Any]) -> Mutation:
    kind = draw(st.sampled_from(("drop", "retype", "string", "string", "date", "unknown")))
    fields = sorted(record)
    if kind == "drop":
        return Mutation(kind, draw(st.sampled_from(fields)))
    if kind == "retype":
        return Mutation(kind, draw(st.sampled_from(fields)), draw(wrong_types))
    if kind == "string":
        names = [source for source, _ in text_fields(entity)]
        return Mutation(kind, draw(st.sampled_from(names)), draw(strings))
    if kind == "date":
        return Mutation(kind, "UpdatedDateUTC", draw(st.sampled_from(BAD_DATES)))
    name = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", min_size=3, max_size=12))
    value = draw(st.one_of(wrong_types, strings))
    return Mutation(kind, f"New{name}", value)


@dataclass
class Fuzzed:
    """One record as sent, and what was done to it."""

    record: Any
    mutations: list[Mutation] = field(default_factory=list)
    duplicate_of: int | None = None  # position of the record whose id it repeats

    @property
    def clean(self) -> bool:
        return not self.mutations and self.duplicate_of is None


@st.composite
def page(draw: Callable[..., Any], name: str) -> list[Fuzzed]:
    entity = ENTITY[name]
    out: list[Fuzzed] = []
    for _ in range(draw(st.integers(min_value=3, max_value=12))):
        record = copy.deepcopy(draw(st.sampled_from(templates()[name])))
        # A fresh id, not a drawn one: hypothesis repeats its draws across examples, and a newer version of the
        # same id loaded by an earlier example rightly keeps this older one out of the mirror.
        record[entity.key] = str(uuid.uuid4())
        mutations = draw(st.lists(mutation(entity, record), max_size=3))
        for m in mutations:
            m.apply(record)
        out.append(Fuzzed(record, mutations))
    if draw(st.booleans()) and out:  # the same id twice on the page: a copy, maybe changed
        position = draw(st.integers(min_value=0, max_value=len(out) - 1))
        twin = copy.deepcopy(out[position].record)
        extra = draw(st.lists(mutation(entity, twin), max_size=1)) if isinstance(twin, dict) else []
        for m in extra:
            m.apply(twin)
        out[position].duplicate_of = position
        out.append(Fuzzed(twin, extra, duplicate_of=position))
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # not even an object
        out.append(
            Fuzzed(draw(st.one_of(st.integers(), st.text(max_size=5), st.none())), [Mutation("retype", "*")])
        )
    return out


pages = st.fixed_dictionaries({name: page(name) for name in FUZZED})


# --- running a page through the import -------------------------------------------------------------------------


@dataclass
class Outcome:
    staged: int = 0
    valid: int = 0
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)


def run_pages(
    engine: Engine, connection_id: int, run_id: str, example: dict[str, list[Fuzzed]]
) -> dict[str, Any]:
    """Stage each page as extract does, then the DAG's validate and load; returns the extract result."""
    # What extract receives: Xero's JSON, parsed (the raw bytes the client would read).
    parsed = {name: [_as_received(f.record) for f in records] for name, records in example.items()}
    return run_parsed(engine, connection_id, run_id, parsed)


def run_parsed(
    engine: Engine, connection_id: int, run_id: str, pages: dict[str, list[Any]]
) -> dict[str, Any]:
    """Records as the client parsed them, per entity: staged as extract stages a page, validated, loaded."""
    ctx = staging.RunContext(run_id, connection_id, datetime.now(UTC).replace(tzinfo=None))
    result = import_run.ExtractResult(connection_id=connection_id, run_id=run_id)
    for name, parsed in pages.items():
        entity = ENTITY[name]
        with engine.begin() as conn:
            pages_kept = import_run.clear_run(conn, entity, run_id, connection_id)
            staged = staging.stage_page(entity, parsed, ctx, page=pages_kept + 1)
            staging.write_page(conn, entity, staged)
        result.entities[name] = import_run.EntityExtract(
            name, "full", complete=True, pages=1, records=len(parsed)
        )
    extracted = result.as_dict()
    import_run.validate(engine, extracted)
    import_run.load(engine, extracted)
    return extracted


def _as_received(value: Any) -> Any:
    """The record as the client parses it from the wire: JSON round trip (stdlib json where orjson refuses:
    integers beyond 64 bits, NaN and infinities, lone surrogates)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        return json.loads(json.dumps(value))


def check_run(engine: Engine, connection_id: int, run_id: str, example: dict[str, list[Fuzzed]]) -> Outcome:
    outcome = Outcome()
    with engine.connect() as conn:
        quarantine = {
            (entity, xero_id): reasons
            for entity, xero_id, reasons in conn.execute(
                text(
                    "SELECT entity, xero_id, reasons FROM quarantined_record WHERE run_id = :r AND connection_id = :c"
                ),
                {"r": run_id, "c": connection_id},
            )
        }
        for name, records in example.items():
            entity = ENTITY[name]
            statuses = conn.execute(
                text(f"SELECT xero_id, validation_status FROM {entity.staging_table} WHERE run_id = :r"),
                {"r": run_id},
            ).all()
            outcome.staged += len(statuses)
            if len(statuses) != len(records):
                outcome.problems.append(f"{name}: {len(records)} records sent, {len(statuses)} staged")
            for xero_id, status in statuses:
                if status == "valid":
                    outcome.valid += 1
                elif status == "quarantined":
                    outcome.quarantined += 1
                    reasons = quarantine.get((name, xero_id))
                    if not reasons or reasons in ("[]", []):
                        outcome.problems.append(f"{name} {xero_id}: quarantined without a reason")
                else:
                    outcome.problems.append(f"{name} {xero_id}: left {status}")
            mirror = {
                row.xero_id: row
                for row in conn.execute(
                    text(
                        f"SELECT * FROM {entity.validated_table} WHERE connection_id = :c AND last_run_id = :r"
                    ),
                    {"c": connection_id, "r": run_id},
                )
            }
            for fuzzed in records:
                record = fuzzed.record
                if not isinstance(record, dict):
                    continue
                key = str(record.get(entity.key, "")).lower()
                if fuzzed.clean and key not in mirror:
                    outcome.problems.append(f"{name} {key}: a good record was not loaded")
                row = mirror.get(key)
                if row is None or fuzzed.duplicate_of is not None:
                    continue
                for source, column in text_fields(entity):
                    sent = record.get(source)
                    if isinstance(sent, str) and getattr(row, column) != sent:
                        outcome.problems.append(f"{name} {key}.{source}: stored {getattr(row, column)!r:.80}")
            outcome.problems += _crm_verbatim(conn, name, records, mirror)
    return outcome


def _crm_verbatim(conn: Any, name: str, records: list[Fuzzed], mirror: dict[str, Any]) -> list[str]:
    """Valid customers' and products' text, as the CRM shows it."""
    checks = {
        "contacts": (
            "sales_ledger",
            (("Name", "name"), ("EmailAddress", "email"), ("TaxNumber", "tax_number")),
        ),
        "items": ("product", (("Code", "code"), ("Name", "name"), ("Description", "description"))),
    }
    if name not in checks:
        return []
    table, pairs = checks[name]
    problems = []
    for fuzzed in records:
        record = fuzzed.record
        if not isinstance(record, dict) or fuzzed.duplicate_of is not None:
            continue
        key = str(record.get(ENTITY[name].key, "")).lower()
        if key not in mirror:
            continue
        row = (
            conn.execute(text(f"SELECT * FROM {table} WHERE accounting_code = :x"), {"x": key})
            .mappings()
            .first()
        )
        if row is None:
            continue  # not a customer (a supplier, archived): not a sales ledger
        for source, column in pairs:
            sent = record.get(source)
            if isinstance(sent, str) and row[column] != sent:
                problems.append(f"{table} {key}.{column}: {row[column]!r:.80} != sent {sent!r:.80}")
    return problems


def prepare_crm(url: str) -> tuple[Engine, int]:
    """A migrated CRM with one operating company and its (token-less) primary connection."""
    from xero_crm_sync import db, migrate

    migrate.migrate(url)
    engine = db.get_engine(url)
    with engine.begin() as conn:
        company = migrate.seed_demo(conn, "Bad Input Ltd")
        connection_id = conn.execute(
            text(
                "INSERT INTO xero_connection (operating_company_id, role, tenant_id) "
                "VALUES (:oc, 'primary', 'bad-input-tenant') RETURNING id"
            ),
            {"oc": company},
        ).scalar_one()
    # The organisation's items as they are: invoice lines name them, and validation knows codes from the mirror.
    items = {"items": [Fuzzed(record) for record in templates()["items"]]}
    run_pages(engine, connection_id, "bad-input-items", items)
    return engine, connection_id


def new_run_id() -> str:
    return f"bad-input-{uuid.uuid4().hex[:12]}"


@dataclass
class BadInputReport:
    seed: int | None
    examples: int = 0
    records: int = 0  # records sent
    bad: int = 0  # records tampered with (or repeated, or not even objects)
    quarantined: int = 0
    valid: int = 0
    crashes: list[str] = field(default_factory=list)  # a step raised: the run did not complete
    problems: list[str] = field(default_factory=list)  # the run completed but broke a rule (see check_run)
    seconds: float = 0.0


def campaign(engine: Engine, connection_id: int, examples: int, *, seed: int | None = None) -> BadInputReport:
    """`examples` hypothesis examples (pages of every fuzzed entity), each run through staging, validate and
    load in its own run. `seed` None: the same examples every time (derandomized); else drawn from that seed."""
    import time

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    report = BadInputReport(seed=seed)
    started = time.perf_counter()

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=seed is None,
        database=None,
        # Shrinking a page through a database takes minutes and pages are small: report the page as drawn.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(example=pages)
    def one(example: dict[str, list[Fuzzed]]) -> None:
        run_id = new_run_id()
        report.examples += 1
        for records in example.values():
            report.records += len(records)
            report.bad += sum(1 for f in records if not f.clean)
        try:
            run_pages(engine, connection_id, run_id, example)
        except Exception as exc:  # the very thing this campaign looks for: recorded, and the campaign goes on
            report.crashes.append(f"{run_id}: {type(exc).__name__}: {str(exc)[:300]}")
            return
        outcome = check_run(engine, connection_id, run_id, example)
        report.quarantined += outcome.quarantined
        report.valid += outcome.valid
        report.problems += [f"{run_id}: {p}" for p in outcome.problems]

    (hypothesis_seed(seed)(one) if seed is not None else one)()
    report.seconds = round(time.perf_counter() - started, 1)
    return report
