"""Command line: ``probe bin``, ``probe sweep``, ``probe resim`` (thin wrappers of Probe), and
``probe selection`` / ``probe yield`` (selection functions and expected yields, docs/selection.md).

Examples::

    probe bin   --model finder.keras --data set.h5 --by theta_E --bins 30 --out out/bin
    probe sweep --model finder.keras --data set.h5 --perturber blur --values 0:3:0.25 --out out/blur
    probe resim --model finder.keras --survey des-sv --param psf_scale --values 0.6:3:0.2 \\
                --n 300 --out out/psf
    probe selection --model finder.keras --param mag_source_g --thresholds 0.5,0.9,0.99 \\
                --out out/sel
    probe yield --model finder.keras --survey des-y3 --threshold 0.9
    probe check --model cand.keras --baseline base.keras --suite default --out out/gate

``probe check`` is the regression gate (docs/gate.md); it writes report.html, report.json and
junit.xml. Exit status of every command (:mod:`probe.cli_policy`, shared with the simulator's
command line): 0 success, 1 a failed check (``probe check`` only), 2 bad input or an unreadable
model or file, with a one-line message (``--debug`` adds the traceback).
``--version`` prints the version; ``-v``/``-q`` (anywhere on the line) show DEBUG log
messages too, or errors only and no progress bars (:func:`probe.cli_policy.log_to_stderr`).

Each of ``bin``/``sweep``/``resim`` writes ``<name>.<format>`` (the table with provenance),
``<name>_scores.parquet`` (per-sample scores) and ``<name>.<plot>`` into ``--out``, and prints
the trend of every group.

One module per group of sub-commands (:mod:`probe.cli.sensitivity` for ``bin``/``sweep``/
``resim``, :mod:`probe.cli.selection`, :mod:`probe.cli.yields`, :mod:`probe.cli.check`,
:mod:`probe.cli.study`), each holding its parser builders (``add_<command>``) and functions
(``run_<command>``, set with ``set_defaults(func=...)``); :mod:`probe.cli.parser` joins them.
:mod:`probe.cli.inputs` reads values, image sets and simulators (the seams tests replace). The
command line names no simulator: the default one comes from :mod:`probe.adapters.simulators`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from probe.cli.inputs import parse_values
from probe.cli.parser import build_parser
from probe.cli.sensitivity import parse_classes
from probe.cli_policy import run

__all__ = ["main", "parse_values"]

# The name docs/cli.md's sphinx-argparse directive reads (``:func: _parser``).
_parser = build_parser
# The name the tests of ``--classes`` call.
_parse_classes = parse_classes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (:mod:`probe.cli_policy`): 0 success, 1 a failed
    check (``probe check``), 2 bad input or an unreadable model or file."""

    def commands(args: argparse.Namespace) -> int:
        from probe.cluster import open_client

        before_cluster = getattr(args, "before_cluster", None)
        if before_cluster is not None:
            before_cluster(args)  # e.g. check's existing reports: refused before a cluster
        # The client opens (or fails: exit 2) before anything is written.
        with open_client(args.workers, args.scheduler) as client:
            args.client = client
            return int(args.func(args))

    return run("probe", build_parser(), commands, argv)
