"""``paced plan``: delegated to :mod:`paced.plan` (sharded training plans) when that module provides a CLI.

The contract: ``paced.plan`` exposes ``add_cli_arguments(parser)`` and ``run_cli(args)``. Until it does, the
command fails in one line saying so.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from paced.cli._common import Command


def _plan_module() -> ModuleType | None:
    try:
        module = importlib.import_module("paced.plan")
    except ModuleNotFoundError as err:
        if err.name not in ("paced.plan",):
            raise
        return None
    return module if hasattr(module, "add_cli_arguments") and hasattr(module, "run_cli") else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    module = _plan_module()
    if module is not None:
        module.add_cli_arguments(parser)


def run(args: argparse.Namespace) -> None:
    module = _plan_module()
    if module is None:
        raise ModuleNotFoundError("`paced plan` is not available in this version of paced (paced.plan provides "
                                  "no command line yet)")
    module.run_cli(args)


COMMAND = Command("plan", "will each job of a config fit on the GPUs: memory, disk and rough time per rule",
                  add_arguments, run,
                  description="Estimate, offline and before any job runs, each rule's GPU memory by component, "
                              "disk and rough time for a config; a config that cannot fit is refused in one line.")
