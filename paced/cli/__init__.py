"""The ``paced`` command line: ``paced passrates | weights | verdicts | world build | tasks export | plan``.

Built on :mod:`argparse`, not click or typer: it is in the standard library, so ``paced --help`` and ``paced
weights`` work on the core install with no extra dependency, and the commands are few and flat enough that a
decorator framework would add a dependency without removing code. Each command is one small module with
``add_arguments(parser)`` and ``run(args)``, registered in :data:`COMMANDS`; a command only parses its flags and
calls the library, and imports heavy packages inside ``run`` so that ``--help`` stays fast.

A user error (a missing file, a bad value, a missing extra) prints one line ``paced <command>: error: ...`` and
exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from paced.cli._common import USER_ERRORS, Command
from paced.cli.passrates import COMMAND as PASSRATES
from paced.cli.plan import COMMAND as PLAN
from paced.cli.tasks import COMMAND as TASKS
from paced.cli.verdicts import COMMAND as VERDICTS
from paced.cli.weights import COMMAND as WEIGHTS
from paced.cli.world import COMMAND as WORLD
from paced.registry import Registry

COMMANDS: Registry[Command] = Registry("command")
for _cmd in (PASSRATES, WEIGHTS, VERDICTS, WORLD, TASKS, PLAN):
    COMMANDS.add(_cmd.name, _cmd)


def _add(sub: argparse._SubParsersAction, cmd: Command, prog: str) -> None:
    parser = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help)
    if cmd.children:
        inner = parser.add_subparsers(dest=f"{cmd.name}_command", required=True, metavar="COMMAND")
        for child in cmd.children:
            _add(inner, child, f"{prog} {cmd.name}")
    else:
        cmd.add_arguments(parser)
        parser.set_defaults(_command=cmd, _prog=f"{prog} {cmd.name}")


def build_parser() -> argparse.ArgumentParser:
    """The ``paced`` parser with every registered command."""
    parser = argparse.ArgumentParser(prog="paced", description="PACED: pass-rate weighted LLM distillation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS.names():
        _add(sub, COMMANDS.get(name), "paced")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paced`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args._command.run(args)
    except USER_ERRORS as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{args._prog}: error: {message}", file=sys.stderr)
        return 2
    return 0


__all__ = ["COMMANDS", "build_parser", "main"]
