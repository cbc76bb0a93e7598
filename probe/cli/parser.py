"""The ``probe`` argument parser: one sub-parser per command, each from its command's module."""

from __future__ import annotations

import argparse

from probe.cli._common import common_options
from probe.cli.check import add_check
from probe.cli.selection import add_selection
from probe.cli.sensitivity import add_bin, add_resim, add_sweep
from probe.cli.study import add_study
from probe.cli.yields import add_yield
from probe.cli_policy import EPILOG, Parser, add_debug, add_overwrite, add_verbosity, add_version


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``probe`` command (sub-commands, ``--version``, ``-v``/``-q``)."""
    from probe._version import __version__

    parser = Parser(
        prog="probe",
        description="Sensitivity probe for lens finders (see docs/probe.md).",
        epilog=EPILOG,
    )
    add_version(parser, __version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    common = common_options()
    b = add_bin(sub, common)
    s = add_sweep(sub, common)
    r = add_resim(sub, common)
    sel = add_selection(sub, common)
    y = add_yield(sub, common)
    for command in (b, s, r, sel, y):
        command.add_argument(
            "--resume", action="store_true",
            help="finish a killed run: reuse the verified chunk checkpoints under "
            "OUT/checkpoints (same model, data and configuration required; another is "
            "refused, naming what differs; see docs/scale.md)",
        )  # fmt: skip
    add_study(sub)
    add_check(sub)
    for command in sub.choices.values():  # every command that writes files
        if "--out" in command._option_string_actions:
            add_overwrite(command)
    add_debug(parser, sub)
    add_verbosity(parser, sub)
    return parser
