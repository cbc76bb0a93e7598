"""The ``simlens`` command: generate, inspect and view simulated sets.

Thin by design: it parses arguments and calls :class:`simlens.simulator.Simulator`,
:mod:`simlens.io.dataset`, :mod:`simlens.io.plotting` and :mod:`simlens.io.fits`; nothing in the
library imports it. Exit codes: 0 success, 2 bad input (message on stderr naming the parameter;
nothing written), 130 interrupted.

One module per group of sub-commands (:mod:`simlens.cli.generate`, :mod:`simlens.cli.inject`,
:mod:`simlens.cli.view` for ``info``/``show``, :mod:`simlens.cli.export` for
``concat``/``truth``/``fits``), each holding its parser builders (``add_<command>``) and
functions (``run_<command>``, set with ``set_defaults(func=...)``); :mod:`simlens.cli.parser`
joins them. ``--version`` prints the version; ``-v``/``-q`` set what the library's log messages
show on stderr (:func:`probe.cli_policy.log_to_stderr`).

Examples
--------
::

    simlens generate --survey des-y3 --n 10000 --kind lens --theta-E 1.0:2.7 --psf-scale 0.6 \\
        --seed 1 --out set.h5
    simlens info set.h5
    simlens show set.h5 --out sheet.png --n 16
    simlens fits set.h5 --index 0 --out system0.fits
    simlens generate --kind field --n 1000 --seed 2 --out field.h5
    simlens generate --n 100000 --seed 3 --workers 2 --out big.zarr    # sharded, on Dask
    simlens generate --n 100000 --seed 3 --workers 2 --out big.zarr --resume   # after a kill
    simlens inject --cutouts cutouts/ --out injected.h5 --psf-fwhm 1.1,0.95,0.9,0.85 --seed 3
"""

from __future__ import annotations

from collections.abc import Sequence

# The exit-code policy shared with the probe command line: one module, not two copies.
from probe.cli_policy import run
from simlens.cli.parser import build_parser

__all__ = ["main"]

# The name docs/cli.md's sphinx-argparse directive reads (``:func: _parser``).
_parser = build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``simlens`` command line; returns the exit code (:mod:`probe.cli_policy`)."""
    return run("simlens", build_parser(), lambda args: int(args.func(args)), argv)
