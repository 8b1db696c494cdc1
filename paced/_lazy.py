"""A module imported on first use, for heavy dependencies of light modules.

Method specs, kernels and divergence names are read by report jobs that never touch a tensor; binding
``torch`` lazily keeps its import (seconds per job) out of those jobs while the code below keeps
writing ``torch.x`` as usual.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands in for ``name`` in the ``namespace`` (a module's ``globals()``) under ``alias``; the first
    attribute access imports the module and puts it in the namespace in place of this object, so every
    later access is a plain global lookup."""

    def __init__(self, name: str, namespace: dict[str, Any], alias: str | None = None) -> None:
        self._name, self._namespace, self._alias = name, namespace, alias or name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}, not imported yet>"
