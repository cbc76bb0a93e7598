"""Command line: ``probe bin``, ``probe sweep`` and ``probe resim`` (thin wrappers of Probe).

Examples::

    probe bin   --model finder.keras --data set.h5 --by theta_E --bins 30 --out out/bin
    probe sweep --model finder.keras --data set.h5 --perturber blur --values 0:3:0.25 --out out/blur
    probe resim --model finder.keras --survey des-sv --param psf_scale --values 0.6:3:0.2 \\
                --n 300 --out out/psf

Each writes ``<name>.<format>`` (the table with provenance), ``<name>_scores.parquet`` (per-sample
scores) and ``<name>.<plot>`` into ``--out``, and prints the trend of every group.
This is the only module of probe allowed to import ``simlens`` (for ``--data`` and ``resim``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from probe.errors import ProbeError, ProbeValueError


def parse_values(text: str) -> np.ndarray:
    """``"start:stop:step"`` (stop included when on the grid) or ``"a,b,c"`` -> float64 array."""
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ProbeValueError(f"--values {text!r}: need step > 0 and stop >= start")
            # Count steps with a tolerance so 0:3:0.25 includes 3 despite rounding.
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return np.round(start + step * np.arange(count), 12)
        return np.array([float(x) for x in text.split(",") if x.strip()])
    except ValueError:
        raise ProbeValueError(
            f"--values {text!r}: expected start:stop:step or a comma-separated list"
        ) from None


def load_data(path: str) -> Any:
    """Load an image set: ``simlens.load`` when simlens provides it, else probe's HDF5 reader."""
    try:
        import simlens

        loader = simlens.load
    except (ImportError, AttributeError):
        from probe.datasets import load_hdf5

        return load_hdf5(path)
    return loader(path)


def make_simulator(survey: str, npix: int | None) -> Any:
    """A ``simlens.Simulator`` for ``survey`` (the only place probe touches simlens' API)."""
    try:
        import simlens

        simulator = simlens.Simulator
    except (ImportError, AttributeError) as err:
        raise ProbeValueError(f"probe resim needs simlens.Simulator: {err}") from err
    return simulator(survey=survey) if npix is None else simulator(survey=survey, npix=npix)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe", description="Sensitivity probe for lens finders (see docs/probe.md)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", required=True, help=".keras file or module:callable")
    common.add_argument("--out", required=True, type=Path, help="output directory")
    common.add_argument("--batch-size", type=int, default=256)
    common.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    common.add_argument("--positive-class", type=int, default=1)
    common.add_argument("--logits", action="store_true", help="model returns logits")
    common.add_argument("--channels-first", action="store_true")
    common.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    common.add_argument("--min-count", type=int, default=30, help="flag bins below this n")
    common.add_argument("--format", choices=("parquet", "csv", "json"), default="parquet")
    common.add_argument("--plot", choices=("png", "svg", "pdf", "none"), default="png")
    common.add_argument("--label", help="model label in plots")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    b = sub.add_parser("bin", parents=[common], help="score binned by a truth column")
    b.add_argument("--data", required=True, help="HDF5 image set")
    b.add_argument("--by", required=True, help="truth column to bin by (e.g. theta_E)")
    b.add_argument("--bins", type=int, default=30, help="number of uniform bins")
    b.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="binning range")
    b.add_argument("--quantiles", action="store_true", help="equal-count bins")
    b.add_argument("--drop-outside", action="store_true", help="drop values outside --range")
    b.add_argument("--unit", default="", help="unit of the --by column")

    s = sub.add_parser("sweep", parents=[common], help="score under a perturbation")
    s.add_argument("--data", required=True, help="HDF5 image set")
    s.add_argument("--perturber", required=True, help="blur, noise, color, annulus, disk, ...")
    s.add_argument("--values", required=True, help="start:stop:step or a,b,c")

    r = sub.add_parser("resim", parents=[common], help="score on re-simulated sets")
    r.add_argument("--survey", required=True, help="simlens survey preset (e.g. des-sv)")
    r.add_argument("--param", required=True, help="simulator control (e.g. psf_scale)")
    r.add_argument("--values", required=True, help="start:stop:step or a,b,c")
    r.add_argument("--n", type=int, default=300, help="lenses per value")
    r.add_argument("--n-nonlenses", type=int, help="non-lenses per value (default --n)")
    r.add_argument("--unpaired", action="store_true", help="fresh systems at every value")
    r.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    r.add_argument("--unit", default="", help="unit of --param")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 probe error, 2 usage error)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ProbeError as err:
        print(f"probe: error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from probe.binning import Binning
    from probe.sensitivity import Probe
    from probe.statistics import StatsParams

    p = Probe(
        args.model,
        batch_size=args.batch_size,
        positive_class=args.positive_class,
        logits=args.logits,
        channels_first=args.channels_first,
        stats=StatsParams(n_boot=args.n_boot, min_count=args.min_count),
        progress=not args.quiet,
        label=args.label,
    )
    if args.command == "resim":
        sim = make_simulator(args.survey, args.npix)
        result = p.resimulate(
            sim,
            args.param,
            parse_values(args.values),
            n=args.n,
            n_nonlenses=args.n_nonlenses,
            rng=args.seed,
            paired=not args.unpaired,
            unit=args.unit,
        )
        stem = f"resim_{args.param}"
    else:
        data = load_data(args.data)
        try:
            if args.command == "bin":
                if args.by not in data.truth.columns:
                    raise ProbeValueError(f"--by {args.by!r} is not a truth column of {args.data}")
                values = data.truth[args.by].to_numpy(dtype=np.float64)
                outside: Literal["raise", "drop"] = "drop" if args.drop_outside else "raise"
                if args.quantiles:
                    bins: Binning | int = Binning.quantiles(values, n=args.bins, outside=outside)
                elif args.range:
                    bins = Binning.uniform(*args.range, n=args.bins, outside=outside)
                else:
                    bins = args.bins
                result = p.by_parameter(
                    data.images,
                    data.labels,
                    values,
                    bins=bins,
                    name=args.by,
                    unit=args.unit,
                    rng=args.seed,
                )
                stem = f"bin_{args.by}"
            else:
                result = p.sweep(
                    data.images,
                    data.labels,
                    args.perturber,
                    parse_values(args.values),
                    rng=args.seed,
                )
                stem = f"sweep_{args.perturber}"
        finally:
            close = getattr(data, "close", None)
            if callable(close):
                close()
    out: Path = args.out
    written = [result.save(out / f"{stem}.{args.format}")]
    written.append(_save_scores(result, out / f"{stem}_scores.parquet"))
    if args.plot != "none":
        written.append(result.plot(out / f"{stem}.{args.plot}"))
    for group in result.groups:
        try:
            t = result.trend(group)
        except ProbeError as err:
            print(f"trend {group}: not estimable ({err})")
            continue
        print(
            f"trend {group:8s} slope {t.slope:+.4g} [{t.slope_low:+.4g}, {t.slope_high:+.4g}] "
            f"p={t.p_value:.3g} (n={t.n})"
        )
    for path in written:
        print(f"wrote {path}")
    return 0


def _save_scores(result: Any, path: Path) -> Path:
    from probe.provenance import atomic_write

    frame = result.scores
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
