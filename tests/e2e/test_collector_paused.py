"""Issue 13, fix 27: Python's cyclic garbage collector is paused while an import turns pages into rows (it walked
every live object over and over for objects that hold no cycles), and is given back as it was, even when a step
fails."""

from __future__ import annotations

import gc

import pytest

from tests.e2e.conftest import build_pipeline
from xero_crm_sync import garbage_collection, import_run, staging, validation


def _recording(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[bool]:
    """Wrap `module.name` to note whether the collector was on at each call."""
    seen: list[bool] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_extract_and_validate_run_with_the_collector_paused_and_give_it_back(
    make_sandbox, crm_db, monkeypatch: pytest.MonkeyPatch
):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])
    staged = _recording(monkeypatch, staging, "stage_page")
    validated = _recording(monkeypatch, validation, "check_entity")
    assert gc.isenabled()

    extracted = import_run.extract(pipeline.engine, pipeline.store, info, "paused", full=True).as_dict()
    assert staged and not any(staged)  # every page converted with the collector off
    assert validated and not any(validated)  # and each entity validated while the next is read
    assert gc.isenabled()

    # The validate step on its own (entities extract could not validate) pauses it too.
    validated.clear()
    for item in extracted["entities"].values():
        item["validated"] = None
    import_run.validate(pipeline.engine, extracted)
    assert validated and not any(validated)
    assert gc.isenabled()
    # Nothing else changes: the run's rows are staged, validated and mirrored as ever.
    contacts = extracted["entities"]["contacts"]["records"]
    assert contacts > 0
    assert pipeline.scalar("SELECT COUNT(*) FROM val_contacts WHERE last_run_id = 'paused'") == contacts


def test_a_failed_extract_gives_the_collector_back(make_sandbox, crm_db, monkeypatch: pytest.MonkeyPatch):
    sandbox = make_sandbox(seed=3, contacts=30, tenants=1)
    pipeline = build_pipeline(crm_db, sandbox)
    info = pipeline.store.get(pipeline.connections["primary"])

    def refuse(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(staging, "stage_page", refuse)
    with pytest.raises(RuntimeError, match="went away"):
        import_run.extract(pipeline.engine, pipeline.store, info, "fails", full=True)
    assert gc.isenabled()


def test_a_pause_restores_the_collector_as_its_caller_had_it():
    with garbage_collection.paused():
        with garbage_collection.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause ended; the outer one still holds
    assert gc.isenabled()

    gc.disable()
    try:
        with garbage_collection.paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
