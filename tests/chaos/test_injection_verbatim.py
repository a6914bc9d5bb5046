"""Every SQL statement binds its parameters: injection strings (SQL, HTML, format strings, odd unicode) in every
text field of every entity the import reads never break a run and are stored exactly as Xero sent them, in
staging (what Xero said) and, for records that pass validation, in the validated mirror. Deterministic, on SQLite
and PostgreSQL; the hypothesis campaign (`test_bad_input.py`) also follows valid customers and products into the
CRM tables."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy import text

from tests.chaos.bad_input import (
    HOSTILE,
    Fuzzed,
    new_run_id,
    prepare_crm,
    run_pages,
    text_fields,
    wire_records,
)
from xero_crm_sync.entities import ENTITIES, Entity

# Empty and blank strings are not injections (and make a required name fail validation, on purpose elsewhere).
INJECTIONS = tuple(s for s in HOSTILE if s.strip())


def _hostile(entity: Entity, record: dict[str, Any], offset: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of `record` with an injection string in each top-level text field but its key."""
    out, sent = copy.deepcopy(record), {}
    for number, (source, column) in enumerate(text_fields(entity)):
        value = INJECTIONS[(offset + number) % len(INJECTIONS)]
        out[source] = value
        sent[column] = value
    return out, sent


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)
def test_injection_strings_in_every_text_field_are_stored_verbatim(crm_url: str, entity: Entity) -> None:
    assert text_fields(entity), f"{entity.name} has no text field to test"
    engine, connection_id = prepare_crm(crm_url)
    records = wire_records(entity.collection, seed=5, contacts=6)[:3]  # an organisation with every kind
    assert records, f"the generated organisation has no {entity.name}"
    hostile = [_hostile(entity, record, offset) for offset, record in enumerate(records)]
    run_id = new_run_id()
    run_pages(engine, connection_id, run_id, {entity.name: [Fuzzed(record) for record, _ in hostile]})

    key = entity.key_column.name
    with engine.connect() as conn:
        staged = {
            str(row[key]).lower(): row
            for row in conn.execute(
                text(f"SELECT * FROM {entity.staging_table} WHERE run_id = :r"),
                {"r": run_id},
            ).mappings()
        }
        mirrored = {
            str(row[key]).lower(): row
            for row in conn.execute(
                text(f"SELECT * FROM {entity.validated_table} WHERE last_run_id = :r"),
                {"r": run_id},
            ).mappings()
        }
        quarantined = {
            str(x).lower(): reasons
            for x, reasons in conn.execute(
                text("SELECT xero_id, reasons FROM quarantined_record WHERE run_id = :r"), {"r": run_id}
            )
        }
    assert len(staged) == len(hostile)
    for record, sent in hostile:
        xero_id = str(record[entity.key]).lower()
        row = staged[xero_id]
        assert {column: row[column] for column in sent} == sent, f"{entity.name} {xero_id} staged"
        raw = row["raw"] if isinstance(row["raw"], dict) else json.loads(row["raw"])
        assert {s: raw[s] for s, _ in text_fields(entity)} == {s: record[s] for s, _ in text_fields(entity)}
        if row["validation_status"] == "valid":
            assert {column: mirrored[xero_id][column] for column in sent} == sent, f"{entity.name} mirrored"
        else:  # an injection string where Xero sends a code or an enum: held back, with the reason
            assert row["validation_status"] == "quarantined" and quarantined.get(xero_id), xero_id
    # The tables the strings named are all still there.
    with engine.connect() as conn:
        for table in ("sales_ledger", "product", "xero_connection"):
            conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar()
