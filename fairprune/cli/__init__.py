"""Command line: ``python -m fairprune COMMAND --help``.

Exit status: 0 on success; 1 with ONE ``error:`` line on stderr for bad input found while running
(a missing file, a malformed checkpoint, an option out of range) or anything unexpected; 2 for
usage errors caught by argparse (an unknown flag, a value of the wrong type or range), which
print the usage line and one ``error:`` line; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from fairprune.cli import inspect_cmds, model_cmds, sweep_cmds
from fairprune.cli.common import check_device
from fairprune.errors import FairpruneError

# command modules, in --help order; each has register(subparsers)
COMMAND_MODULES = (sweep_cmds, model_cmds, inspect_cmds)


ERR_UNEXPECTED = "unexpected {kind} ({message}); rerun with -v for the traceback and report it."


ERR_MEMORY = "out of memory; use a smaller dataset (--option limit=N), image size or --batch-size."


log = logging.getLogger("fairprune.cli")


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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else "no message"
    return text if len(text) <= 200 else text[:199] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse's usage errors raise ``SystemExit(2)``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if getattr(args, "device", None):
            check_device(args.device)
        return args.func(args)
    except FairpruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished sweep cells are saved; rerun to resume.", file=sys.stderr)
        return 130
    except MemoryError:
        _trace(args)
        print(f"error: {ERR_MEMORY}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug or an input nobody foresaw: one line, never a traceback
        _trace(args)
        message = ERR_UNEXPECTED.format(kind=type(exc).__name__, message=_first_line(exc))
        print(f"error: {message}", file=sys.stderr)
        return 1


def _trace(args) -> None:
    """The traceback of the exception being handled: on stderr with -v, else at DEBUG level."""
    if getattr(args, "verbose", False):
        traceback.print_exc(file=sys.stderr)
    else:
        log.debug("traceback", exc_info=True)
