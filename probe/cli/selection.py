"""``probe selection``: completeness against a parameter (a selection function), or against two
(a selection surface), on a saved set or lenses simulated for a survey (docs/selection.md)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from probe.cli import inputs
from probe.cli._common import (
    EXITS,
    SURVEY_HELP,
    add_population_args,
    population_controls,
    predictor,
    print_written,
    require_out,
    save_frame,
)
from probe.cli.inputs import parse_floats, parse_thresholds
from probe.cli_policy import EXIT_OK, positive_int
from probe.errors import ProbeValueError

#: The range a parameter that is a simulator control is drawn over when --range is not given.
_CONTROL_RANGES = {
    "theta_E": (0.5, 3.0),
    "mag_source_g": (19.0, 25.0),
    "mag_lens_r": (16.0, 22.0),
    "psf_scale": (0.6, 2.0),
}

_Scored = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(p(lens) per image, label per image, the --param(/--param2) values per image, (n, k))."""


def add_selection(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sel = sub.add_parser(
        "selection",
        parents=[common],
        help="completeness against a parameter",
        description="Completeness (fraction of lenses with p >= threshold) against a "
        "parameter, on a saved set (--data) or lenses simulated with --survey; --param2 "
        "gives a 2-D selection surface. Writes into OUT: selection_<param>.<format> (the "
        "table, with provenance), selection_<param>_scores.parquet (per-image scores), "
        "selection_<param>_x50.parquet (50% points) and selection_<param>.<plot>; with "
        "--param2 selection_<param>_<param2>.<format> and .<plot>. Prints the completeness "
        "at each threshold. " + EXITS,
    )
    sel.set_defaults(func=run_selection)
    sel.add_argument("--param", required=True, help="control or truth column (mag_source_g)")
    sel.add_argument("--thresholds", default="0.5,0.9,0.99", help="a,b,c (found: p >= t)")
    sel.add_argument("--fpr", help="also thresholds at these false-positive rates, a,b")
    sel.add_argument("--data", help="HDF5 set or .zarr store (default: simulate with --survey)")
    sel.add_argument("--survey", default="des-y3", help=SURVEY_HELP)
    sel.add_argument("--n", type=positive_int, default=1000, help="lenses to simulate")
    sel.add_argument(
        "--n-nonlenses", type=int, help="non-lenses to simulate (for --fpr, TPR; default 0)"
    )
    sel.add_argument(
        "--negatives", help="HDF5 set whose non-lenses (label 0) set --fpr thresholds and TPR"
    )
    sel.add_argument("--param2", help="second property: a 2-D selection surface")
    sel.add_argument("--range2", nargs=2, type=float, metavar=("LO", "HI"), help="its range")
    sel.add_argument("--bins2", type=positive_int, default=6, help="bins of --param2 (6)")
    sel.add_argument("--unit2", default="", help="unit of --param2")
    sel.add_argument("--kind", default="elliptical", help="non-lens kind to simulate")
    sel.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="value range")
    sel.add_argument("--bins", type=positive_int, default=12, help="number of uniform bins")
    sel.add_argument("--detectable", action="store_true", help="LensPop-detectable lenses only")
    sel.add_argument(
        "--interval",
        choices=("wilson", "jeffreys"),
        default="wilson",
        help="binomial interval of the completeness (wilson)",
    )
    sel.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    sel.add_argument("--unit", default="", help="unit of --param")
    add_population_args(sel)
    return sel


def run_selection(args: argparse.Namespace) -> int:
    """``probe selection``: completeness against --param (and --param2: a 2-D surface) on a
    saved or simulated set; --negatives adds a saved set of non-lenses for --fpr and TPR."""
    require_out(args)
    thresholds = parse_thresholds(args.thresholds, "--thresholds")
    params = [args.param] + ([args.param2] if args.param2 else [])
    if args.data and args.n_nonlenses is not None:
        raise ProbeValueError(
            "--n-nonlenses applies when simulating; with --data the set's own non-lenses are "
            "used (add others with --negatives FILE)"
        )
    if args.data and population_controls(args) != ({}, {}):
        raise ProbeValueError(
            "--theta-E, --mag-source-g, ... choose a simulated population; with --data the "
            "set is used as it is"
        )
    from probe.resume import finish, selection_checkpoints

    p = predictor(args)
    if args.data:
        ckpt = selection_checkpoints(args, p)
        scored = _scored_data(args, p, params, ckpt)
    else:
        population = _selection_population(args, params)
        ckpt = selection_checkpoints(args, p, sim=population[0], controls=population[1:])
        scored = _scored_simulation(args, p, params, population, ckpt)
    p_lens, labels, values = scored
    if args.negatives:
        neg_p = _negative_scores(p, args.negatives, ckpt)
        p_lens = np.concatenate([p_lens, neg_p])
        labels = np.concatenate([labels, np.zeros(neg_p.size, dtype=np.int64)])
        values = np.concatenate([values, np.full((neg_p.size, len(params)), np.nan)])
    provenance = {
        "model": p.adapter.description,
        "seed": args.seed,
        "data": args.data,
        "negatives": args.negatives,
    }
    write = _write_surface if args.param2 else _write_selection
    code = write(args, p, (p_lens, labels, values), thresholds, provenance)
    finish(ckpt, args)
    return code


# --------------------------------------------------------------------------- scored images
def _scored_data(args: argparse.Namespace, p: Any, params: list[str], ckpt: Any) -> _Scored:
    """``probe selection --data``: the saved set's scores, labels and parameter values
    (scored through the checkpoints ``ckpt``, if any)."""
    from probe.resume import predict

    data = inputs.load_data(args.data)
    try:
        for name in params:
            if name not in data.truth.columns:
                raise ProbeValueError(f"{name!r} is not a truth column of {args.data}")
        values = np.column_stack([data.truth[n].to_numpy(dtype=np.float64) for n in params])
        labels = np.asarray(data.labels)
        p_lens = predict(p, data.images, ckpt, "data-")
    finally:
        inputs.close_data(data)
    return p_lens, labels, values


def _selection_population(
    args: argparse.Namespace, params: list[str]
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(simulator, lens controls, non-lens controls) of ``probe selection`` without --data:
    the population flags, and the parameters' ranges where they are controls."""
    sim = inputs.make_simulator(args.survey, args.npix)
    lens_c, nonlens_c = population_controls(args)
    ranges = [tuple(args.range) if args.range else None]
    ranges.append(tuple(args.range2) if args.param2 and args.range2 else None)
    for name, lo_hi in zip(params, ranges):
        if name in lens_c:
            continue  # the user's own control of the population wins
        lo_hi = lo_hi or _CONTROL_RANGES.get(name)
        if name in _CONTROL_RANGES:
            lens_c[name] = lo_hi
    return sim, lens_c, nonlens_c


def _scored_simulation(
    args: argparse.Namespace, p: Any, params: list[str], population: Any, ckpt: Any
) -> _Scored:
    """``probe selection`` without --data: lenses (and --n-nonlenses non-lenses) simulated
    with --survey over the parameters' ranges (:func:`_selection_population`), then scored
    (through the checkpoints ``ckpt``, if any)."""
    from probe.resume import render_and_score

    sim, lens_c, nonlens_c = population
    rng = args.seed
    truth = sim.sample_lenses(args.n, rng=rng, detectable=args.detectable, **lens_c)
    for name in params:
        if name not in truth.columns:
            raise ProbeValueError(f"{name!r} is neither a control nor a truth column")
    values = np.column_stack([truth[n].to_numpy(dtype=np.float64) for n in params])

    def scores(table: Any, scope: str) -> np.ndarray:
        if ckpt is None and p.client is None:
            return np.asarray(p.predict(sim.render(table)))
        # Chunks of rows rendered and scored by one task (on the workers, if any), each
        # through the checkpoints: a resumed run skips both for a finished chunk.
        return render_and_score(p, sim, table, ckpt, scope)

    p_lens = scores(truth, "lenses-")
    labels = np.ones(len(truth), dtype=np.int64)
    n_neg = args.n_nonlenses or 0
    if n_neg > 0:
        neg = sim.sample_nonlenses(n_neg, rng=rng + 1, kind=args.kind, **nonlens_c)
        neg_p = scores(neg, "nonlenses-")
        p_lens = np.concatenate([p_lens, neg_p])
        labels = np.concatenate([labels, np.zeros(len(neg), dtype=np.int64)])
        values = np.concatenate([values, np.full((len(neg), len(params)), np.nan)])
    return p_lens, labels, values


def _negative_scores(p: Any, path: str, ckpt: Any = None) -> np.ndarray:
    """p(lens) of the non-lenses (label 0) of a saved set: the negatives of --fpr and TPR
    (scored through the checkpoints ``ckpt``, if any)."""
    from probe.resume import predict

    data = inputs.load_data(path)
    try:
        labels = np.asarray(data.labels)
        if not np.any(labels == 0):
            raise ProbeValueError(f"--negatives {path!r} holds no non-lenses (label 0)")
        scores = np.asarray(predict(p, data.images, ckpt, "negatives-"), dtype=np.float64)
    finally:
        inputs.close_data(data)
    return scores[labels == 0]


# --------------------------------------------------------------------------- outputs
def _selection_binning(scored: _Scored, column: int, given: Any, n_bins: int) -> Any:
    """Uniform bins over ``given`` (values outside dropped), else over the lenses' range."""
    from probe.binning import Binning

    _, labels, values = scored
    lens_values = values[labels == 1, column]
    lo, hi = given if given else (np.nanmin(lens_values), np.nanmax(lens_values))
    return Binning.uniform(lo, hi, n=n_bins, outside="drop" if given else "raise")


def _write_surface(
    args: argparse.Namespace,
    p: Any,
    scored: _Scored,
    thresholds: list[float],
    provenance: dict[str, Any],
) -> int:
    """``probe selection --param2``: the 2-D selection surface, its table and plot."""
    from probe.completeness.surfaces import selection_surface
    from probe.completeness.thresholds import format_threshold

    p_lens, labels, values = scored
    surface = selection_surface(
        p_lens, labels, values[:, 0], values[:, 1],
        _selection_binning(scored, 0, args.range, args.bins),
        _selection_binning(scored, 1, args.range2, args.bins2),
        thresholds, fpr=parse_floats(args.fpr) or None, interval=args.interval,
        min_count=args.min_count, x_name=args.param, y_name=args.param2,
        x_unit=args.unit, y_unit=args.unit2, label=args.label or p.label,
    )  # fmt: skip
    surface.provenance.update(provenance)
    out = require_out(args)
    stem = f"selection_{args.param}_{args.param2}"
    written = [surface.save(out / f"{stem}.{args.format}")]
    if args.plot != "none":
        written.append(surface.plot(out / f"{stem}.{args.plot}"))
    for label in surface.table["threshold_label"].unique():
        rows = surface.table[surface.table["threshold_label"] == label]
        t = float(rows["threshold"].iloc[0])
        print(
            f"threshold {label:>10s} (p >= {format_threshold(t)}): completeness per cell "
            f"{np.nanmin(rows['completeness']):.3f} to {np.nanmax(rows['completeness']):.3f} "
            f"over {len(rows)} cells"
        )
    print_written(written)
    return EXIT_OK


def _write_selection(
    args: argparse.Namespace,
    p: Any,
    scored: _Scored,
    thresholds: list[float],
    provenance: dict[str, Any],
) -> int:
    """``probe selection``: the selection function of --param, its tables and plot."""
    from probe.completeness.thresholds import format_threshold
    from probe.selection import selection_function

    p_lens, labels, values = scored
    param = args.param
    sf = selection_function(
        p_lens,
        labels,
        values[:, 0],
        _selection_binning(scored, 0, args.range, args.bins),
        thresholds,
        fpr=parse_floats(args.fpr) or None,
        interval=args.interval,
        min_count=args.min_count,
        name=param,
        unit=args.unit,
        label=args.label or p.label,
        provenance=provenance,
    )
    out = require_out(args)
    stem = f"selection_{param}"
    points = sf.fifty_percent_points()
    written = [sf.save(out / f"{stem}.{args.format}")]
    written.append(save_frame(sf.samples, out / f"{stem}_scores.parquet"))
    written.append(save_frame(points, out / f"{stem}_x50.parquet"))
    if args.plot != "none":
        written.append(sf.plot(out / f"{stem}.{args.plot}"))
    for _, r in sf.summary().iterrows():
        if r["label"] in ("TPR0", "TPR10"):
            print(f"{r['label']} {r['completeness']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
            continue
        print(
            f"threshold {r['label']:>10s} (p >= {format_threshold(r['threshold'])}): "
            f"completeness {r['completeness']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}], "
            f"{param}_50 = {r['x50']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
        )
    print_written(written)
    return EXIT_OK
