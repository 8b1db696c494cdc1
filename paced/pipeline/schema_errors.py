"""Turning a config-schema failure into one line that names the key, the value and what is allowed.

``snakemake.utils.validate`` raises a ``WorkflowError`` whose text is the whole failing sub-schema;
:func:`describe_schema_error` finds the underlying ``jsonschema`` error in the exception chain and
says it in one line (``train.steps='x': 'x' is not of type 'integer'``), for the Snakefile to re-raise.
"""

from __future__ import annotations

import os
from typing import Any


def _schema_error(err: BaseException) -> Any:
    """The ``jsonschema.ValidationError`` in ``err``'s chain (``__cause__``/``__context__``), or ``None``."""
    from jsonschema.exceptions import ValidationError

    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ValidationError):
            return e
        stack += [e.__cause__, e.__context__, *(a for a in e.args if isinstance(a, BaseException))]
    return None


def describe_schema_error(err: BaseException) -> str:
    """One line naming the config key that failed the schema, its value and the rule it broke."""
    schema_err = _schema_error(err)
    if schema_err is None:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    key = ".".join(str(p) for p in schema_err.absolute_path) or "(top level)"
    allowed = ""
    if schema_err.validator == "additionalProperties":
        props = sorted(schema_err.schema.get("properties", {}))
        allowed = f"; allowed keys: {', '.join(props)}" if props else ""
    if schema_err.validator in ("additionalProperties", "required") or not schema_err.absolute_path:
        return f"{key}: {schema_err.message}{allowed}"  # the instance is a whole section: do not print it
    return f"{key}={schema_err.instance!r}: {schema_err.message}{allowed}"


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config schema (YAML) as a dict."""
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)
