"""``probe bin``, ``probe sweep``, ``probe resim``: mean scores against a truth column, a
perturbation or a simulator control (thin wrappers of :class:`probe.sweeps.sensitivity.Probe`)."""

from __future__ import annotations

import argparse
from typing import Any, Literal

import numpy as np

from probe.cli import inputs
from probe.cli._common import (
    SURVEY_HELP,
    add_population_args,
    population_controls,
    print_written,
    require_out,
    save_frame,
    writes,
)
from probe.cli.inputs import parse_values
from probe.cli_policy import EXIT_OK, positive_int
from probe.errors import ProbeError, ProbeValueError


# --------------------------------------------------------------------------- parsers
def add_bin(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "bin",
        parents=[common],
        help="score binned by a truth column",
        description="Score a saved set with the model and bin the scores by a truth column "
        "(mean score per bin, lenses and non-lenses apart; a string column is broken down per "
        "category with TPR/FPR instead). " + writes("bin_<by>"),
    )
    b.set_defaults(func=run_bin)
    b.add_argument("--data", required=True, help="HDF5 image set or .zarr store")
    b.add_argument("--by", required=True, help="truth column to bin by (e.g. theta_E)")
    b.add_argument("--bins", type=positive_int, default=30, help="number of uniform bins")
    b.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="binning range")
    b.add_argument("--quantiles", action="store_true", help="equal-count bins")
    b.add_argument("--drop-outside", action="store_true", help="drop values outside --range")
    b.add_argument("--unit", default="", help="unit of the --by column")
    b.add_argument(
        "--classes",
        help="multi-class model, --by a category column: output column of each category's "
        "true class, e.g. elliptical=0,lens=1,spiral=2 (the score is that class's probability)",
    )
    return b


def add_sweep(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    s = sub.add_parser(
        "sweep",
        parents=[common],
        help="score under a perturbation",
        description="Score a saved set under a perturbation at each of --values (the same "
        "images, perturbed with per-image seeds). " + writes("sweep_<perturber>"),
    )
    s.set_defaults(func=run_sweep)
    s.add_argument("--data", required=True, help="HDF5 image set or .zarr store")
    s.add_argument("--perturber", required=True, help="blur, noise, color, annulus, disk, ...")
    s.add_argument("--values", required=True, help="start:stop:step or a,b,c")
    return s


def add_resim(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    r = sub.add_parser(
        "resim",
        parents=[common],
        help="score on re-simulated sets",
        description="Simulate lenses and non-lenses at each of --values of a simulator control "
        "(the same systems at every value unless --unpaired) and score them. "
        + writes("resim_<param>"),
    )
    r.set_defaults(func=run_resim)
    r.add_argument("--survey", required=True, help=f"{SURVEY_HELP} (e.g. des-sv)")
    r.add_argument("--param", required=True, help="simulator control (e.g. psf_scale)")
    r.add_argument("--values", required=True, help="start:stop:step or a,b,c")
    r.add_argument("--n", type=positive_int, default=300, help="lenses per value")
    r.add_argument("--n-nonlenses", type=int, help="non-lenses per value (default --n)")
    r.add_argument("--unpaired", action="store_true", help="fresh systems at every value")
    r.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    r.add_argument("--unit", default="", help="unit of --param")
    r.add_argument("--kind", help="non-lens kind to simulate (default: the simulator's)")
    add_population_args(r)
    return r


# --------------------------------------------------------------------------- commands
def run_bin(args: argparse.Namespace) -> int:
    """``probe bin``: scores of a saved set binned by a truth column (or per category)."""
    p = sensitivity_probe(args)
    data = inputs.load_data(args.data)
    try:
        p.checkpoints = _checkpoints(args, p, data)
        if args.by not in data.truth.columns:
            raise ProbeValueError(f"--by {args.by!r} is not a truth column of {args.data}")
        column = data.truth[args.by]
        if _is_categorical(column):
            code = _run_categories(p, data, column, args)
            from probe.resume import finish

            finish(p.checkpoints, args)
            return code
        if args.classes:
            raise ProbeValueError("--classes applies to --by a category column")
        values = column.to_numpy(dtype=np.float64)
        result = p.by_parameter(
            data.images,
            data.labels,
            values,
            bins=_bins(args, values),
            name=args.by,
            unit=args.unit,
            rng=args.seed,
        )
    finally:
        inputs.close_data(data)
    return _write_result(args, p, result, f"bin_{args.by}")


def run_sweep(args: argparse.Namespace) -> int:
    """``probe sweep``: scores of a saved set under a perturbation at each value."""
    p = sensitivity_probe(args)
    data = inputs.load_data(args.data)
    try:
        p.checkpoints = _checkpoints(args, p, data)
        result = p.sweep(
            data.images,
            data.labels,
            args.perturber,
            parse_values(args.values),
            rng=args.seed,
        )
    finally:
        inputs.close_data(data)
    return _write_result(args, p, result, f"sweep_{args.perturber}")


def run_resim(args: argparse.Namespace) -> int:
    """``probe resim``: scores of sets re-simulated at each value of a simulator control."""
    p = sensitivity_probe(args)
    sim = inputs.make_simulator(args.survey, args.npix)
    lens_c, nonlens_c = population_controls(args)
    if args.param in lens_c:
        raise ProbeValueError(f"--param {args.param} is varied; do not also fix it")
    p.checkpoints = _checkpoints(args, p, None, sim=sim, controls=(lens_c, nonlens_c))
    result = p.resimulate(
        sim,
        args.param,
        parse_values(args.values),
        n=args.n,
        n_nonlenses=args.n_nonlenses,
        rng=args.seed,
        paired=not args.unpaired,
        unit=args.unit,
        lens_controls=lens_c,
        nonlens_controls={**({"kind": args.kind} if args.kind else {}), **nonlens_c},
    )
    return _write_result(args, p, result, f"resim_{args.param}")


# --------------------------------------------------------------------------- steps
def sensitivity_probe(args: argparse.Namespace) -> Any:
    """The :class:`probe.sweeps.sensitivity.Probe` of ``bin``/``sweep``/``resim`` (with
    statistics)."""
    from probe.statistics import StatsParams
    from probe.sweeps.sensitivity import Probe

    require_out(args)
    return Probe(
        args.model,
        batch_size=args.batch_size,
        positive_class=args.positive_class,
        logits=args.logits,
        channels_first=args.channels_first,
        stats=StatsParams(n_boot=args.n_boot, min_count=args.min_count),
        progress=not args.quiet,
        label=args.label,
        trust_code=args.trust_model_code,
        client=args.client,
        chunk_size=args.chunk_size,
    )


def _bins(args: argparse.Namespace, values: np.ndarray) -> Any:
    """The binning of ``probe bin``: quantiles, a uniform --range, or a number of bins."""
    from probe.binning import Binning

    outside: Literal["raise", "drop"] = "drop" if args.drop_outside else "raise"
    if args.quantiles:
        return Binning.quantiles(values, n=args.bins, outside=outside)
    if args.range:
        return Binning.uniform(*args.range, n=args.bins, outside=outside)
    return args.bins


def _write_result(args: argparse.Namespace, p: Any, result: Any, stem: str) -> int:
    """Write a result's table, scores and plot into --out, print each group's trend and the
    paths, then drop the checkpoints (nothing is left to resume)."""
    out = require_out(args)
    written = [result.save(out / f"{stem}.{args.format}")]
    written.append(save_frame(result.scores, out / f"{stem}_scores.parquet"))
    if args.plot != "none":
        written.append(result.plot(out / f"{stem}.{args.plot}", band=args.band))
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
    print_written(written)
    from probe.resume import finish

    finish(p.checkpoints, args)  # the outputs are written: nothing left to resume
    return EXIT_OK


def _checkpoints(
    args: argparse.Namespace, p: Any, data: Any, *, sim: Any = None, controls: Any = None
) -> Any:
    """The chunk checkpoints of ``probe bin``/``sweep``/``resim`` under ``OUT/checkpoints``,
    keyed by everything that determines the scores (:mod:`probe.resume`); None (no
    checkpoints) for a model without a content identity, which ``--resume`` refuses."""
    from probe.adapters.images import ImageSet
    from probe.cache import simulator_identity
    from probe.checkpoints import data_identity
    from probe.resume import open_checkpoints

    key: dict[str, Any] = {}
    if args.command == "resim":
        key["chunk_size"] = p.chunk_size
        key["simulator"] = simulator_identity(sim)
        key["resim"] = {
            k: getattr(args, k)
            for k in ("survey", "param", "values", "n", "n_nonlenses", "unpaired", "npix", "kind")
        }
        key["controls"] = repr(controls)
    else:
        images = ImageSet(data.images, channels_first=args.channels_first)
        key["chunk_size"] = p.chunk_for(images)
        key["data"] = data_identity(args.data)
    if args.command == "sweep":
        key["perturber"] = args.perturber
        key["values"] = [float(v) for v in parse_values(args.values)]
    elif args.command == "bin":
        key["classes"] = args.classes
    return open_checkpoints(args, key)


# --------------------------------------------------------------------------- bin by category
def _is_categorical(column: Any) -> bool:
    """Strings, booleans and pandas categoricals are broken down by category, not binned."""
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def parse_classes(text: str) -> dict[str, int]:
    """``--classes``: ``"a=0,b=1"`` -> {"a": 0, "b": 1}."""
    out: dict[str, int] = {}
    for item in text.split(","):
        name, sep, column = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = int(column)
        except ValueError:
            raise ProbeValueError(
                f"--classes {text!r}: expected name=column pairs, e.g. elliptical=0,lens=1"
            ) from None
    return out


def _run_categories(p: Any, data: Any, column: Any, args: argparse.Namespace) -> int:
    """``probe bin --by <string column>``: per-category scores, TPR/FPR and intervals."""
    result = p.by_category(
        data.images,
        data.labels,
        column.to_numpy(dtype=object),
        name=args.by,
        rng=args.seed,
        classes=parse_classes(args.classes) if args.classes else None,
    )
    out = require_out(args)
    stem = f"bin_{args.by}"
    written = [result.save(out / f"{stem}.{args.format}")]
    written.append(save_frame(result.scores, out / f"{stem}_scores.parquet"))
    if args.plot != "none":
        written.append(result.plot(out / f"{stem}.{args.plot}"))
    rate = {"lens": "TPR", "nonlens": "FPR", "all": "flagged"}
    pct = f"{100 * result.stats.confidence:g}%"
    print(f"{args.by}: {len(result.categories)} categories, lowest mean score first ({pct})")
    for _, r in result.table.iterrows():
        print(
            f"  {r['category']:>16s} {r['group']:8s} n={r['n']:<6d} mean {r['mean']:.4f} "
            f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]  {rate[r['group']]} at p >= "
            f"{result.stats.threshold:g}: {r['flagged']:.4f} [{r['flagged_low']:.4f}, "
            f"{r['flagged_high']:.4f}]"
        )
    print_written(written)
    return EXIT_OK
