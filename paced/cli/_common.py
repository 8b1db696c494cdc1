"""What every ``paced`` command shares: the :class:`Command` record and the user-error types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

# Errors a user can fix (bad value, missing file, missing extra): one line, exit status 2. Anything else is a bug.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                               FileExistsError, IsADirectoryError, ModuleNotFoundError, KeyError)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command group takes no flags of its own."""


def _no_run(args: argparse.Namespace) -> None:
    raise NotImplementedError("a command group has no run of its own")


@dataclass(frozen=True)
class Command:
    """One ``paced`` command: its name, help, flags and what it runs (or sub-commands for a group)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    run: Callable[[argparse.Namespace], None] = _no_run
    description: str = ""
    children: tuple[Command, ...] = field(default_factory=tuple)


def require(module: str, extra: str) -> None:
    """Fail in one line naming the extra to install when ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"this command needs {module!r}, which is not installed: "
                                  f"pip install 'paced[{extra}]'")


def parse_params(items: list[str] | None, flag: str) -> dict[str, float]:
    """``["alpha=2", "beta=1"]`` -> ``{"alpha": 2.0, "beta": 1.0}``; a malformed item names the flag."""
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{flag} {item!r}: expected NAME=NUMBER, e.g. {flag} alpha=2") from None
    return out
