"""What the ``probe`` sub-commands share: help texts, the options of every model-scoring command
(a parent parser), the population flags of ``resim``/``selection``, the model wrapper and
writing helpers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from probe.adapters.simulators import SIMULATOR_NAME
from probe.cli_paths import output_dir
from probe.cli_policy import Parser, positive_int
from probe.errors import ProbeValueError

MODEL_HELP = ".keras, .h5, .onnx, .pt/.pth (TorchScript), .pt2 (torch.export) or module:callable"

TRUST_HELP = (
    "let the model file run code: import the custom-layer modules a .keras file names (other "
    f"than {SIMULATOR_NAME}'s and probe's) and allow Lambda layers (Keras safe_mode off); "
    "default off"
)

#: The help of a ``--survey`` option: the simulator's survey presets.
SURVEY_HELP = f"{SIMULATOR_NAME} survey preset"

EXITS = (
    "Exit codes: 0 written, 2 bad input or an unreadable model or file (one line on stderr; "
    "nothing half-written), 130 interrupted, 143 terminated."
)


def writes(stem: str) -> str:
    """What ``bin``/``sweep``/``resim`` write, for their help."""
    return (
        f"Writes into OUT: {stem}.<format> (the table, mean score per value and group, with "
        f"provenance), {stem}_scores.parquet (per-image scores) and {stem}.<plot>; prints the "
        "trend of every group and the paths written. " + EXITS
    )


def common_options() -> argparse.ArgumentParser:
    """The options every model-scoring command shares (a parent parser)."""
    from probe.cluster import add_cluster_args

    common = Parser(add_help=False)
    add_cluster_args(common)
    common.add_argument("--model", required=True, help=MODEL_HELP)
    common.add_argument("--out", type=output_dir, help="output directory (required but by yield)")
    common.add_argument(
        "--batch-size", type=positive_int, default=256, help="images per model call (256)"
    )
    common.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    common.add_argument(
        "--positive-class",
        type=int,
        default=1,
        help="column of the lens class in a softmax output (1)",
    )
    common.add_argument("--logits", action="store_true", help="model returns logits")
    common.add_argument(
        "--channels-first",
        action="store_true",
        help="the model takes (n, C, H, W) images (default (n, H, W, C))",
    )
    common.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples")
    common.add_argument("--min-count", type=int, default=30, help="flag bins below this n")
    common.add_argument(
        "--format",
        choices=("parquet", "csv", "json"),
        default="parquet",
        help="format of the result table (parquet)",
    )
    common.add_argument(
        "--plot",
        choices=("png", "svg", "pdf", "none"),
        default="png",
        help="format of the plot, or none (png)",
    )
    common.add_argument(
        "--band",
        choices=("ci", "std", "sem"),
        default="ci",
        help="error bars of bin/sweep/resim plots: interval of the mean (ci, default), std, sem",
    )
    common.add_argument("--label", help="model label in plots")
    common.add_argument("--trust-model-code", action="store_true", help=TRUST_HELP)
    return common


# --------------------------------------------------------------------------- population flags
#: Population controls of ``probe resim`` and ``probe selection``: flag -> (control, lens only).
POPULATION_FLAGS: dict[str, tuple[str, bool]] = {
    "--theta-E": ("theta_E", True),
    "--mag-source-g": ("mag_source_g", True),
    "--n-sersic-source": ("n_sersic_source", True),
    "--mag-lens-r": ("mag_lens_r", True),
    "--psf-scale": ("psf_scale", False),
}


def control_value(text: str) -> float | tuple[float, float]:
    """``"x"`` -> x (fixed); ``"lo:hi"`` -> (lo, hi) (uniform), as the simulator's own command
    line reads its controls."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}") from None
    if len(parts) == 1 and np.isfinite(parts[0]):
        return parts[0]
    if len(parts) == 2 and np.all(np.isfinite(parts)) and parts[0] <= parts[1]:
        return (parts[0], parts[1])
    raise argparse.ArgumentTypeError(f"expected a number or lo:hi with lo <= hi, got {text!r}")


def add_population_args(parser: argparse.ArgumentParser) -> None:
    """Flags that shape the simulated population (lens-only ones go to the lens draw only)."""
    helps = {
        "theta_E": "Einstein radius, arcsec: x or lo:hi (lenses)",
        "mag_source_g": "lensed source g mag: x or lo:hi (lenses)",
        "n_sersic_source": "source Sersic index: x or lo:hi (lenses)",
        "mag_lens_r": "lens galaxy r mag: x or lo:hi (lenses)",
        "psf_scale": "PSF FWHM / preset: x or lo:hi (lenses and non-lenses)",
    }
    for flag, (name, _) in POPULATION_FLAGS.items():
        parser.add_argument(flag, dest=name, type=control_value, help=helps[name])


def population_controls(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(lens controls, non-lens controls) from the population flags given."""
    lens: dict[str, Any] = {}
    nonlens: dict[str, Any] = {}
    for name, lens_only in POPULATION_FLAGS.values():
        value = getattr(args, name, None)
        if value is None:
            continue
        lens[name] = value
        if not lens_only:
            nonlens[name] = value
    return lens, nonlens


# --------------------------------------------------------------------------- running and writing
def require_out(args: argparse.Namespace) -> Path:
    """``--out`` (every command but ``yield`` needs it)."""
    if args.out is None:
        raise ProbeValueError("--out is required")
    out: Path = args.out
    return out


def predictor(args: argparse.Namespace) -> Any:
    """The :class:`probe.sweeps.sensitivity.Probe` of ``selection``/``yield`` (scores only)."""
    from probe.sweeps.sensitivity import Probe

    return Probe(
        args.model,
        batch_size=args.batch_size,
        positive_class=args.positive_class,
        logits=args.logits,
        channels_first=args.channels_first,
        progress=not args.quiet,
        label=args.label,
        trust_code=args.trust_model_code,
        client=args.client,
        chunk_size=args.chunk_size,
    )


def save_frame(frame: Any, path: Path) -> Path:
    """Write a data frame to ``path`` as Parquet, atomically; returns ``path``."""
    from probe.provenance import atomic_write

    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def print_written(paths: list[Path]) -> None:
    """One ``wrote PATH`` line per file written."""
    for path in paths:
        print(f"wrote {path}")
