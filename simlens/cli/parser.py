"""The ``simlens`` argument parser: one sub-parser per command, each from its command's module."""

from __future__ import annotations

import argparse

from probe.cli_policy import EPILOG, Parser, add_debug, add_overwrite, add_verbosity, add_version
from simlens.cli.export import add_concat, add_fits, add_truth
from simlens.cli.generate import add_generate
from simlens.cli.inject import add_inject
from simlens.cli.view import add_info, add_show


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``simlens`` command (sub-commands, ``--version``, ``-v``/``-q``)."""
    from simlens import __version__

    parser = Parser(
        prog="simlens",
        description="DES-like, LensPop-style strong-lens simulator.",
        epilog=EPILOG + " Nothing is written on an error.",
    )
    add_version(parser, __version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    generate, inject = add_generate(sub), add_inject(sub)
    add_info(sub)  # the one command that writes no file
    writers = [generate, inject, add_show(sub), add_concat(sub), add_truth(sub), add_fits(sub)]
    for writer in writers:
        add_overwrite(writer)
    add_debug(parser, sub)
    add_verbosity(parser, sub)
    return parser
