"""Workflow config files as plain dicts: read one, and merge several as Snakemake's ``--configfile`` does.

Used wherever a config is read outside Snakemake (the planner, the ablation summaries), so that they see what
the workflow's rules see.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Snakemake's ``--configfile`` semantics: mappings merge recursively, anything else (lists too) is replaced.
    Neither argument is modified."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML config file as a dict (empty file: ``{}``); anything but a mapping raises ``ValueError`` naming it."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return dict(data)
