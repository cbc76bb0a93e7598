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

``probe check`` is the regression gate (docs/gate.md): exit status 0 when every expectation
holds, 1 when one fails, 2 on bad input; it writes report.html, report.json and junit.xml.

Each writes ``<name>.<format>`` (the table with provenance), ``<name>_scores.parquet`` (per-sample
scores) and ``<name>.<plot>`` into ``--out``, and prints the trend of every group.
This is the only module of probe allowed to import ``simlens`` (for ``--data``, ``resim``,
``selection`` without ``--data``, and ``yield``).
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
    common.add_argument("--out", type=Path, help="output directory (required but by yield)")
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

    sel = sub.add_parser("selection", parents=[common], help="completeness against a parameter")
    sel.add_argument("--param", required=True, help="control or truth column (mag_source_g)")
    sel.add_argument("--thresholds", default="0.5,0.9,0.99", help="a,b,c (found: p >= t)")
    sel.add_argument("--fpr", help="also thresholds at these false-positive rates, a,b")
    sel.add_argument("--data", help="HDF5 image set (default: simulate with --survey)")
    sel.add_argument("--survey", default="des-y3", help="simlens survey preset")
    sel.add_argument("--n", type=int, default=1000, help="lenses to simulate")
    sel.add_argument("--n-nonlenses", type=int, default=0, help="non-lenses (for --fpr, TPR)")
    sel.add_argument("--kind", default="elliptical", help="non-lens kind to simulate")
    sel.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), help="value range")
    sel.add_argument("--bins", type=int, default=12, help="number of uniform bins")
    sel.add_argument("--detectable", action="store_true", help="LensPop-detectable lenses only")
    sel.add_argument("--interval", choices=("wilson", "jeffreys"), default="wilson")
    sel.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    sel.add_argument("--unit", default="", help="unit of --param")

    y = sub.add_parser("yield", parents=[common], help="expected number of lenses found")
    y.add_argument("--survey", default="des-y3", help="simlens survey preset")
    y.add_argument("--threshold", required=True, help="score threshold(s), a or a,b")
    y.add_argument("--area", type=float, help="search area, deg^2 (default: the preset's)")
    y.add_argument(
        "--n", type=int, default=0, help="score at most this many detectable lenses (0: all found)"
    )
    y.add_argument("--n-other", type=int, default=500, help="non-detectable lenses to score")
    y.add_argument(
        "--n-density", type=int, default=40000, help="lenses drawn (detectable fraction ~0.4%%)"
    )
    y.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")

    from probe.study import add_study_cli

    add_study_cli(sub)

    c = sub.add_parser(
        "check",
        help="regression gate: does a candidate meet a suite of expectations? (docs/gate.md)",
        description="Test a candidate lens finder against the expectations of a suite (and a "
        "baseline model); write report.html, report.json and junit.xml. Exit status: 0 all "
        "expectations hold, 1 one or more fail, 2 bad input.",
    )
    c.add_argument("--model", required=True, help="candidate: .keras file or module:callable")
    c.add_argument("--baseline", help="baseline model (needed by no_regression expectations)")
    c.add_argument("--suite", required=True, help="suite TOML file, or 'default'")
    c.add_argument("--out", required=True, type=Path, help="report directory")
    c.add_argument("--seed", type=int, help="root seed (default: the suite's)")
    c.add_argument("--data", help="saved HDF5 set used by every expectation instead of simulating")
    cache = c.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default $PROBE_CACHE_DIR or ~/.cache/probe)",
    )
    cache.add_argument("--no-cache", action="store_true", help="simulate and run the baseline")
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 probe error, 2 usage error).

    ``probe check`` differs: 0 all expectations hold, 1 one fails, 2 bad input or usage.
    """
    args = _parser().parse_args(argv)
    if args.command == "check":
        return _run_check(args)
    try:
        return _run(args)
    except ProbeError as err:
        print(f"probe: error: {err}", file=sys.stderr)
        return 1


def _run_check(args: argparse.Namespace) -> int:
    """``probe check``: 0 when every expectation holds, 1 when one fails, 2 on bad input."""
    from probe.cache import default_cache_dir
    from probe.gate import run_gate

    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    log = None if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = run_gate(
            args.model,
            args.suite,
            baseline=args.baseline,
            cache_dir=cache_dir,
            seed=args.seed,
            data=args.data,
            batch_size=args.batch_size,
            log=log,
        )
        written = result.write(args.out)
    # Bad input: a suite error, a missing or unreadable file or model, a simulator rejecting
    # the suite's controls. Keras reports unreadable model files as ValueError or OSError.
    except (ProbeError, OSError, ValueError) as err:
        print(f"probe check: error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    for path in written.values():
        print(f"wrote {path}")
    return 0 if result.passed else 1


def _run(args: argparse.Namespace) -> int:
    from probe.binning import Binning
    from probe.sensitivity import Probe
    from probe.statistics import StatsParams

    if args.command == "study":
        from probe.study import run_study_cli

        return run_study_cli(args)
    if args.command in ("selection", "yield"):
        return _run_selection(args) if args.command == "selection" else _run_yield(args)
    if args.out is None:
        raise ProbeValueError("--out is required")
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


_CONTROL_RANGES = {
    "theta_E": (0.5, 3.0),
    "mag_source_g": (19.0, 25.0),
    "mag_lens_r": (16.0, 22.0),
    "psf_scale": (0.6, 2.0),
}


def _predictor(args: argparse.Namespace) -> Any:
    from probe.sensitivity import Probe

    return Probe(
        args.model,
        batch_size=args.batch_size,
        positive_class=args.positive_class,
        logits=args.logits,
        channels_first=args.channels_first,
        progress=not args.quiet,
        label=args.label,
    )


def _floats(text: str | None) -> list[float]:
    return [] if not text else [float(v) for v in parse_values(text)]


def _run_selection(args: argparse.Namespace) -> int:
    """``probe selection``: completeness against --param on a saved or simulated set."""
    from probe.selection import selection_function

    if args.out is None:
        raise ProbeValueError("--out is required")
    p = _predictor(args)
    param = args.param
    if args.data:
        data = load_data(args.data)
        try:
            if param not in data.truth.columns:
                raise ProbeValueError(f"--param {param!r} is not a truth column of {args.data}")
            values = data.truth[param].to_numpy(dtype=np.float64)
            labels = np.asarray(data.labels)
            p_lens = p.predict(data.images)
        finally:
            close = getattr(data, "close", None)
            if callable(close):
                close()
    else:
        sim = make_simulator(args.survey, args.npix)
        rng = args.seed
        lo_hi = tuple(args.range) if args.range else _CONTROL_RANGES.get(param)
        controls = {param: lo_hi} if param in _CONTROL_RANGES else {}
        truth = sim.sample_lenses(args.n, rng=rng, detectable=args.detectable, **controls)
        if param not in truth.columns:
            raise ProbeValueError(f"--param {param!r} is neither a control nor a truth column")
        values = truth[param].to_numpy(dtype=np.float64)
        p_lens = p.predict(sim.render(truth))
        labels = np.ones(len(truth), dtype=np.int64)
        if args.n_nonlenses > 0:
            neg = sim.sample_nonlenses(args.n_nonlenses, rng=rng + 1, kind=args.kind)
            p_lens = np.concatenate([p_lens, p.predict(sim.render(neg))])
            labels = np.concatenate([labels, np.zeros(len(neg), dtype=np.int64)])
            values = np.concatenate([values, np.full(len(neg), np.nan)])
    from probe.binning import Binning

    lens_values = values[labels == 1]
    lo, hi = args.range if args.range else (np.nanmin(lens_values), np.nanmax(lens_values))
    bins = Binning.uniform(lo, hi, n=args.bins, outside="drop" if args.range else "raise")
    fprs = _floats(args.fpr)
    sf = selection_function(
        p_lens,
        labels,
        values,
        bins,
        _floats(args.thresholds),
        fpr=fprs or None,
        interval=args.interval,
        min_count=args.min_count,
        name=param,
        unit=args.unit,
        label=args.label or p.label,
        provenance={"model": p.adapter.description, "seed": args.seed, "data": args.data},
    )
    out: Path = args.out
    stem = f"selection_{param}"
    points = sf.fifty_percent_points()
    written = [sf.save(out / f"{stem}.{args.format}")]
    written.append(_save_frame(sf.samples, out / f"{stem}_scores.parquet"))
    written.append(_save_frame(points, out / f"{stem}_x50.parquet"))
    if args.plot != "none":
        written.append(sf.plot(out / f"{stem}.{args.plot}"))
    for _, r in sf.summary().iterrows():
        if r["label"] in ("TPR0", "TPR10"):
            print(f"{r['label']} {r['completeness']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
            continue
        print(
            f"threshold {r['label']:>10s} (p >= {r['threshold']:.4g}): completeness "
            f"{r['completeness']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}], "
            f"{param}_50 = {r['x50']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
        )
    for path in written:
        print(f"wrote {path}")
    return 0


def _run_yield(args: argparse.Namespace) -> int:
    """``probe yield``: expected lenses found over the survey at each threshold."""
    import json

    from probe.provenance import atomic_write, dumps
    from probe.yields import QUESTIONS, survey_yields

    p = _predictor(args)
    res = survey_yields(
        {p.label or "model": p.predict},
        _floats(args.threshold),
        survey=args.survey,
        area=args.area,
        n_density=args.n_density,
        n_other=args.n_other,
        n=args.n,
        rng=args.seed,
        npix=args.npix,
    )
    sky = res.sky
    print(
        f"{sky.survey}: {sky.strong_per_deg2:.1f} strong lenses per deg^2; LensPop-detectable "
        f"{sky.detectable_per_deg2:.3f} [{sky.detectable_low:.3f}, {sky.detectable_high:.3f}] "
        f"per deg^2 = {sky.n_detectable:.0f} [{sky.n_detectable_low:.0f}, "
        f"{sky.n_detectable_high:.0f}] over {sky.area_deg2:g} deg^2 "
        f"(LensPop's own DES prediction: {sky.lenspop_prediction:.0f})"
    )
    for text in QUESTIONS.values():
        print(f"  {text}")
    results = next(iter(res.yields.values()))
    found = next(iter(res.detectable_found.values()))
    for y, f in zip(results, found):
        print(
            f"p >= {y.threshold:g}: detectable lenses found {f.expected:.0f} "
            f"[{f.low:.0f}, {f.high:.0f}]; all strong lenses flagged {y}"
        )
    if args.out is not None:
        doc = {
            "model": p.adapter.description,
            "seed": args.seed,
            "sky": sky.as_dict(),
            "questions": dict(QUESTIONS),
            "yields": [y.as_dict() for y in results],
            "detectable_found": [f.as_dict() for f in found],
        }
        path = args.out / "yield.json"
        text = json.dumps(json.loads(dumps(doc)), indent=1)

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        atomic_write(path, write)
        print(f"wrote {path}")
    return 0


def _save_frame(frame: Any, path: Path) -> Path:
    from probe.provenance import atomic_write

    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _save_scores(result: Any, path: Path) -> Path:

    from probe.provenance import atomic_write

    frame = result.scores
    return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
