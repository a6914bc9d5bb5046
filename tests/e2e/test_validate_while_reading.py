"""Issue 13: extract validates each entity as soon as it is read, while the next entity is being read, and the
validate step passes those verdicts on instead of validating again."""

from __future__ import annotations

from tests.e2e.conftest import build_pipeline
from xero_crm_sync import crashpoints, import_run


def test_each_entity_is_validated_before_the_next_one_is_staged(make_sandbox, crm_db):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    with crashpoints.observe() as seen:
        extracted = import_run.extract(pipeline.engine, pipeline.store, info, "early-validation", full=True)
    result = extracted.as_dict()
    entities = result["entities"]
    # One validation right after each entity's last page: extract.entity, validate.entity, extract.entity, ...
    boundaries = [p for p in seen if p in ("extract.entity", "validate.entity")]
    assert boundaries == ["extract.entity", "validate.entity"] * len(entities)
    assert all(
        item["validated"]["checked"] == item["records"] for item in entities.values() if item["records"]
    )
    mirrored = pipeline.scalar("SELECT COUNT(*) FROM val_contacts WHERE last_run_id = 'early-validation'")
    assert mirrored == entities["contacts"]["records"]

    with crashpoints.observe() as seen:
        reports = import_run.validate(pipeline.engine, result)
    assert "validate.entity" not in seen  # nothing validated twice
    assert reports["entities"]["contacts"] == entities["contacts"]["validated"]
