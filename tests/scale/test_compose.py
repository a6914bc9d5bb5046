"""docker-compose.yaml is a valid Compose file (the Compose Specification's JSON schema; no Docker engine here) whose
services all exist, and it is the distributed deployment the README describes: CeleryExecutor, Redis, PostgreSQL
metadata, every Airflow component, the CRM database and the sandbox, an image built from requirements.txt, the
project mounted, and the secrets taken from .env."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO_ROOT

SCHEMA = Path(__file__).with_name("compose-spec.schema.json")
COMPOSE = REPO_ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    # PyYAML's safe loader resolves anchors and `<<` merge keys the way Compose does.
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def schema_errors(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def mount_parts(mount: str) -> list[str]:
    """`source:target[:mode]`, where the source may hold `${VAR:-default}` (a colon not followed by a path)."""
    return re.split(r":(?=/)|:(?=ro$|rw$)", mount)


def dangling_references(document: dict[str, Any]) -> list[str]:
    """Every service, volume and network a service refers to must be declared."""
    services = document.get("services", {})
    volumes = set(document.get("volumes") or {})
    networks = set(document.get("networks") or {}) | {"default"}
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        referenced = list(depends) if isinstance(depends, dict | list) else []
        referenced += [link.split(":")[0] for link in service.get("links", [])]
        referenced += [
            v.split(":")[0] for v in service.get("volumes_from", []) if not v.startswith("container:")
        ]
        if str(service.get("network_mode", "")).startswith("service:"):
            referenced.append(service["network_mode"].split(":", 1)[1])
        extends = service.get("extends")
        if isinstance(extends, dict) and "file" not in extends:
            referenced.append(extends["service"])
        problems += [f"{name} refers to service {ref}" for ref in referenced if ref not in services]
        for mount in service.get("volumes", []):
            source = mount.get("source") if isinstance(mount, dict) else mount_parts(mount)[0]
            # A bind mount is a path (./x, /x, ${VAR}/x); anything else names a top-level volume.
            if source and not re.match(r"^[./~$]", source) and source not in volumes:
                problems.append(f"{name} mounts undeclared volume {source}")
        service_networks = service.get("networks") or []
        problems += [f"{name} joins undeclared network {n}" for n in service_networks if n not in networks]
    return problems


def test_compose_file_matches_the_compose_specification(compose, validator):
    assert schema_errors(validator, compose) == []


def test_the_schema_check_rejects_a_broken_file(compose, validator):
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker"]["restart"] = ["always"]  # must be a string
    broken["services"]["airflow-worker"]["comand"] = "celery worker"  # a typo: not a Compose key
    errors = schema_errors(validator, broken)
    assert any("comand" in e for e in errors) and any("restart" in e for e in errors), errors


def test_every_referenced_service_volume_and_network_exists(compose):
    assert dangling_references(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["airflow-worker"]["depends_on"]["airflow-webserver"] = {"condition": "service_healthy"}
    assert dangling_references(broken) == ["airflow-worker refers to service airflow-webserver"]


def test_it_is_airflows_distributed_shape_with_the_crm_and_the_sandbox(compose):
    services = compose["services"]
    for name in (*AIRFLOW_SERVICES, "postgres", "redis", "crm-db", "xero-sandbox"):
        assert name in services, f"missing service {name}"
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert str(commands["airflow-worker"]).startswith("celery worker")
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["CRM_DATABASE_URL"].startswith("postgresql://"), name
        assert "crm-db" in env["CRM_DATABASE_URL"], name
        assert "xero-sandbox" in env["XERO_API_URL"], name


def test_image_is_built_from_requirements_and_the_project_is_mounted(compose):
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install .*-r \S*requirements\.txt", dockerfile, re.MULTILINE)
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile
    pinned = re.search(r"^apache-airflow==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned and f"ARG AIRFLOW_VERSION={pinned.group(1)}" in dockerfile, (
        "image and requirements disagree"
    )
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile", name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (service.get("environment") or {}), name
        targets = {mount_parts(v)[1] for v in service["volumes"]}
        for folder in ("dags", "plugins", "include", "sql"):
            assert f"/opt/airflow/{folder}" in targets, f"{name} does not mount {folder}"


def test_secrets_come_from_env_never_from_the_compose_file(compose):
    text = COMPOSE.read_text()
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "XERO_CRM_FERNET_KEY"):
        assert key not in text, f"{key} must come from .env, not docker-compose.yaml"
    for name in AIRFLOW_SERVICES:
        assert {"path": ".env", "required": True} in compose["services"][name]["env_file"], name
    example = (REPO_ROOT / ".env.example").read_text()
    values = dict(
        line.split("=", 1)
        for line in example.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    for key in ("XERO_CRM_FERNET_KEY", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert values.get(key) == "replace-with-a-generated-key", (
            f".env.example must name {key}, without a key"
        )
