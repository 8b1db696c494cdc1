"""Config checks a JSON schema cannot make, run when the workflow is parsed — before any job starts.

- :func:`check_size`: a config is a small document; a YAML alias bomb or a list of 100k seeds is refused
  after counting at most ``max_nodes`` nodes (so the check itself stays fast).
- :func:`check_integers`: where the schema says ``integer``, the value must be one (JSON schema accepts
  ``8.0`` as an integer; a step count of 8.0 would fail later, inside a job).
- :func:`resolve_results_dir`: ``~`` expands; empty, the filesystem root and system directories are refused;
  an existing file is refused; any other absolute path is allowed.
- :func:`check_grid`: caps on the grid (methods × seeds × budgets) so a dry run plans in seconds.
Every error is one line naming the key, the value and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_NODES = 20_000
MAX_SEEDS = 1_000
MAX_CELLS = 5_000
SEED_LIMIT = 2**32  # numpy and torch seed from 32-bit state; larger seeds fail inside jobs
SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/root",
                         "/run", "/sbin", "/sys", "/usr", "/var", "/home", "/tmp", "/opt", "/srv", "/mnt",
                         "/media"})


def check_size(config: Any, max_nodes: int = MAX_NODES) -> None:
    """Refuse a config with more than ``max_nodes`` values (counting stops there: an alias bomb is cheap)."""
    stack, seen = [config], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > max_nodes:
            raise ValueError(f"config: more than {max_nodes} values (a YAML alias bomb, or a huge list?); "
                             f"a paced config is a small document — list what you run, not generated data")
        if isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def check_finite(config: Any, key: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere in the config (YAML's ``.nan``/``.inf`` pass the schema's ranges)."""
    if isinstance(config, float) and not math.isfinite(config):
        raise ValueError(f"{key or '(top level)'}={config!r}: must be a finite number")
    if isinstance(config, Mapping):
        for k, v in config.items():
            check_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(config, (list, tuple)):
        for i, v in enumerate(config):
            check_finite(v, f"{key}[{i}]")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type", [])
    return {t} if isinstance(t, str) else set(t)


def check_integers(config: Any, schema: Mapping[str, Any], key: str = "") -> None:
    """Every value the schema types as ``integer`` (alone or with ``null``) is a Python int."""
    types = _types(schema)
    if ("integer" in types and "number" not in types and config is not None and not _is_int(config)
            and not (isinstance(config, str) and "string" in types)):  # e.g. eval.batch_size: auto
        raise ValueError(f"{key or '(top level)'}={config!r}: must be an integer (write {int(config)} "
                         f"without a decimal point)" if isinstance(config, float) and config.is_integer()
                         else f"{key or '(top level)'}={config!r}: must be an integer")
    if isinstance(config, Mapping):
        props = schema.get("properties", {})
        for k, v in config.items():
            if k in props:
                check_integers(v, props[k], f"{key}.{k}" if key else str(k))
    elif isinstance(config, list) and isinstance(schema.get("items"), Mapping):
        for i, v in enumerate(config):
            check_integers(v, schema["items"], f"{key}[{i}]")


def check_seeds(seeds: list[Any], world_seed: Any) -> None:
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"seeds: {len(seeds)} seeds; at most {MAX_SEEDS} (each is a training run per method)")
    for key, value in [*((f"seeds[{i}]", s) for i, s in enumerate(seeds)), ("world.seed", world_seed)]:
        if not 0 <= value < SEED_LIMIT:
            raise ValueError(f"{key}={value}: seeds must lie in [0, 2^32) (numpy and torch seed from 32 bits)")


def resolve_results_dir(value: Any) -> str:
    """The results directory as the workflow uses it (``~`` expanded, trailing ``/`` dropped)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValueError("results_dir='': give a directory for the outputs, e.g. results_dir: results")
    path = os.path.expanduser(text).rstrip("/") or "/"
    resolved = str(Path(path).resolve()) if Path(path).is_absolute() else path
    if resolved in SYSTEM_DIRS or path in SYSTEM_DIRS:
        raise ValueError(f"results_dir={value!r}: the filesystem root or a system directory; give a directory "
                         f"of its own, e.g. results or /scratch/<you>/paced-results")
    if Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"results_dir={value!r}: exists and is a file, not a directory; choose another path "
                         f"or move the file away")
    return path


def check_grid(n_methods: int, n_seeds: int, n_budgets: int) -> None:
    cells = n_methods * n_seeds * n_budgets
    if cells > MAX_CELLS:
        raise ValueError(f"methods × seeds × eval.budgets = {n_methods} × {n_seeds} × {n_budgets} = {cells} "
                         f"evaluations; at most {MAX_CELLS}: split the grid into several configs")
