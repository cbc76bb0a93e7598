"""What the ``simlens`` sub-commands share: exit codes, argument types, option groups and the
simulator seam (tests replace :func:`build_simulator` with a fake)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from probe.cli_paths import output_file

EXIT_OK = 0  # the same codes as probe.cli_policy (the policy both command lines follow)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

KINDS = ("lens", "elliptical", "star", "spiral", "merger", "ring", "blue_companion", "field")
LENS_ONLY = ("theta_E", "mag_source_g", "n_sersic_source", "gamma_ext", "psi_ext", "gamma_slope")


# --------------------------------------------------------------------------- argument types
def control(text: str) -> float | tuple[float, float]:
    """``"x"`` -> x (a fixed value); ``"lo:hi"`` -> (lo, hi) (uniform between them)."""
    parts = text.split(":")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    if len(values) == 2:
        if values[0] > values[1]:
            raise argparse.ArgumentTypeError(f"range lo:hi needs lo <= hi, got {text!r}")
        return (values[0], values[1])
    return values[0]


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


WRITES_SET = (
    "Writes OUT atomically (a temporary file renamed at the end; nothing on an error) and "
    "prints one line naming it. Exit codes: 0 written, 2 bad input (nothing written), 130 "
    "interrupted."
)


def add_compression_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "lzf"),
        default="none",
        help="HDF5 compression of the images (none); lossless",
    )


def output_set(text: str) -> Path:
    """An output set: a ``.zarr`` store (a directory, possibly there already) or a file."""
    from probe.cli_paths import output_dir

    if text.rstrip("/").endswith(".zarr"):
        path = Path(text).expanduser()
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text!r} is a file; a .zarr set is a directory (a Zarr store)"
            )
        return output_dir(text)
    return output_file(text)


def fwhm_list(text: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if len(values) not in (1, 4) or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected 1 or 4 positive FWHM values, got {text!r}")
    return values


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-model",
        choices=("sersic", "clumpy"),
        default="sersic",
        help="lensed source light: one Sersic profile or a clumpy star-forming one (sersic)",
    )
    p.add_argument(
        "--source-colour",
        default="mixture",
        help="source SED: 'mixture' (drawn per source, default) or a template name",
    )
    p.add_argument(
        "--n-sersic-source", type=control, help="source Sersic index, in [0.5, 8] (default 1)"
    )


# --------------------------------------------------------------------------- commands
def build_simulator(survey: str, npix: int) -> Any:
    """Build the simulator (a seam for tests; imports the heavy physics only when needed)."""
    from simlens.simulator import Simulator

    return Simulator(survey=survey, npix=npix)
