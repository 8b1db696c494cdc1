"""The config schema is the reference for every key: each property is described, and its defaults are the
documented defaults of config/config.yaml (a key the schema fills in means what config.yaml says it means)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text(encoding="utf-8"))
CONFIG = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))


def properties(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every property of ``schema`` at any depth, as (dotted path, its sub-schema); array items count as
    their array's (``data.eval.name``)."""
    for key, sub in (schema.get("properties") or {}).items():
        yield path + key, sub
        yield from properties(sub, f"{path}{key}.")
        if isinstance(sub.get("items"), Mapping):
            yield from properties(sub["items"], f"{path}{key}.")


def undescribed(schema: Mapping[str, Any]) -> list[str]:
    return [path for path, sub in properties(schema) if not str(sub.get("description", "")).strip()]


def default_disagreements(schema: Mapping[str, Any], config: Mapping[str, Any], path: str = "") -> list[str]:
    """Keys that ``config`` sets to a value other than the schema's default (objects are compared key by key)."""
    out = []
    for key, value in config.items():
        sub = (schema.get("properties") or {}).get(key)
        if sub is None:
            continue
        if isinstance(value, Mapping) and "properties" in sub:
            out += default_disagreements(sub, value, f"{path}{key}.")
        elif "default" in sub and sub["default"] != value:
            out.append(f"{path}{key}: config.yaml {value!r}, schema default {sub['default']!r}")
    return out


def test_every_schema_property_has_a_description():
    assert len(list(properties(SCHEMA))) > 60  # the walk reaches nested objects and array items
    assert undescribed(SCHEMA) == []


def test_schema_defaults_agree_with_config_yaml():
    checked = [p for p, sub in properties(SCHEMA) if "default" in sub]
    assert len(checked) > 50
    assert default_disagreements(SCHEMA, CONFIG) == []


def test_the_checks_find_what_they_look_for():
    schema = {"properties": {
        "a": {"type": "integer", "default": 1, "description": "x"},
        "b": {"type": "object", "description": "y", "properties": {"c": {"type": "number", "default": 0.5}}},
        "d": {"type": "array", "description": "z", "items": {"properties": {"e": {"type": "string"}}}},
    }}
    assert undescribed(schema) == ["b.c", "d.e"]
    assert default_disagreements(schema, {"a": 1, "b": {"c": 0.25}, "x": 3}) == [
        "b.c: config.yaml 0.25, schema default 0.5"]
    assert default_disagreements(schema, {"a": 2}) == ["a: config.yaml 2, schema default 1"]
