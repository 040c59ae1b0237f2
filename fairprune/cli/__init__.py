"""Command line: ``python -m fairprune COMMAND --help``.

Every command exits 0 on success and 1 with a one-line ``error:`` message on bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fairprune.cli import inspect_cmds, model_cmds, sweep_cmds
from fairprune.errors import FairpruneError

# command modules, in --help order; each has register(subparsers)
COMMAND_MODULES = (sweep_cmds, model_cmds, inspect_cmds)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: each command module adds its own sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m fairprune",
        description="Prune networks, fine-tune with the performance-weighted loss, audit subgroups.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except FairpruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished sweep cells are saved; rerun to resume.", file=sys.stderr)
        return 130
