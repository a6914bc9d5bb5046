"""Field names and types of Xero's accounting models, read from xero-python's generated models.

The SDK is generated from the same OpenAPI spec the sandbox must honour, so its ``attribute_map`` (wire names)
and ``openapi_types`` are an exact, cheap-to-load copy of the schemas (parsing the 926 KB YAML would take
seconds). ``where`` and ``order`` use this to resolve field paths case-insensitively, to refuse unknown fields
the way Xero does, and to know which literals a field may be compared with.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cache

from xero_python.accounting import models as sdk_models

_LIST_RE = re.compile(r"^list\[(.+)\]$")

# Python-side kinds a field can have; "guid" is a string the spec marks format: uuid (all end in "ID").
GUID, STRING, BOOL, NUMBER, DATE, DATETIME, OBJECT, LIST, ENUM = (
    "guid",
    "string",
    "bool",
    "number",
    "date",
    "datetime",
    "object",
    "list",
    "enum",
)


@dataclass(frozen=True)
class FieldType:
    """One field of a model: its canonical wire name, kind, and the nested model for objects and lists."""

    name: str
    kind: str
    model: str | None = None


@cache
def fields_of(model_name: str) -> dict[str, FieldType]:
    """Map of lower-cased wire name -> FieldType for one SDK model (e.g. ``"Invoice"``)."""
    model = getattr(sdk_models, model_name)
    out: dict[str, FieldType] = {}
    for attr, type_name in model.openapi_types.items():
        wire = model.attribute_map[attr]
        out[wire.lower()] = _field_type(wire, type_name)
    return out


def _field_type(wire: str, type_name: str) -> FieldType:
    list_match = _LIST_RE.match(type_name)
    if list_match:
        return FieldType(wire, LIST, list_match.group(1))
    if type_name == "str":
        return FieldType(wire, GUID if wire.endswith("ID") else STRING)
    if type_name == "bool":
        return FieldType(wire, BOOL)
    if type_name in ("float", "int"):
        return FieldType(wire, NUMBER)
    if type_name == "date[ms-format]":
        return FieldType(wire, DATE)
    if type_name == "datetime[ms-format]":
        return FieldType(wire, DATETIME)
    model = getattr(sdk_models, type_name, None)
    if isinstance(model, type) and issubclass(model, enum.Enum):
        return FieldType(wire, ENUM, type_name)
    return FieldType(wire, OBJECT, type_name)


class UnknownField(LookupError):
    """A path names a field the model does not have; carries Xero's message."""

    def __init__(self, field: str, model_name: str) -> None:
        super().__init__(f"No property or field '{field}' exists in type '{model_name}'")


def resolve_path(model_name: str, path: list[str]) -> list[FieldType]:
    """Resolve ``["contact", "contactid"]`` on ``Invoice`` to canonical FieldTypes, or raise UnknownField."""
    resolved: list[FieldType] = []
    current = model_name
    for index, part in enumerate(path):
        field = fields_of(current).get(part.lower())
        if field is None:
            raise UnknownField(part, current)
        resolved.append(field)
        if index < len(path) - 1:
            if field.kind != OBJECT or field.model is None:
                raise UnknownField(path[index + 1], field.name)
            current = field.model
    return resolved
