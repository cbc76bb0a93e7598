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
junit.xml. Exit status of every command (:mod:`probe.cli_policy`, shared with ``simlens``): 0
success, 1 a failed check (``probe check`` only), 2 bad input or an unreadable model or file,
with a one-line message (``--debug`` adds the traceback).
``--version`` prints the version; ``-v``/``-q`` (anywhere on the line) show DEBUG log
messages too, or errors only and no progress bars (:func:`probe.cli_policy.log_to_stderr`).
Each sub-command is one parser builder (``_add_<command>``) and one function
(``set_defaults(func=...)``).

Each writes ``<name>.<format>`` (the table with provenance), ``<name>_scores.parquet`` (per-sample
scores) and ``<name>.<plot>`` into ``--out``, and prints the trend of every group.
This is the only module of probe allowed to import ``simlens`` (for ``--data``, ``resim``,
``selection`` without ``--data``, and ``yield``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from probe.cli_paths import output_dir
from probe.cli_policy import (
    EPILOG,
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_debug,
    add_overwrite,
    add_verbosity,
    add_version,
    positive_int,
    run,
)
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
    except ProbeValueError:
        raise
    except ValueError:
        raise ProbeValueError(
            f"--values {text!r}: expected start:stop:step or a comma-separated list"
        ) from None


def _thresholds(text: str, option: str) -> list[float]:
    """Score thresholds ``a,b,...``, each in [0, 1]."""
    values = [float(v) for v in parse_values(text)]
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad or not values:
        raise ProbeValueError(f"{option} {text!r}: each threshold must be in [0, 1]")
    return values


def load_data(path: str) -> Any:
    """Load an image set (:func:`probe.adapters.datasets.open_image_set`)."""
    from probe.adapters.datasets import open_image_set

    return open_image_set(path)


def make_simulator(survey: str, npix: int | None) -> Any:
    """The default simulator for ``survey``
    (:func:`probe.adapters.simulators.default_simulator`)."""
    from probe.adapters.simulators import default_simulator

    return default_simulator(survey, npix)


_MODEL_HELP = ".keras, .h5, .onnx, .pt/.pth (TorchScript), .pt2 (torch.export) or module:callable"


_TRUST_HELP = (
    "let the model file run code: import the custom-layer modules a .keras file names (other "
    "than simlens's and probe's) and allow Lambda layers (Keras safe_mode off); default off"
)


_EXITS = (
    "Exit codes: 0 written, 2 bad input or an unreadable model or file (one line on stderr; "
    "nothing half-written), 130 interrupted, 143 terminated."
)


def _writes(stem: str) -> str:
    """What ``bin``/``sweep``/``resim`` write, for their help."""
    return (
        f"Writes into OUT: {stem}.<format> (the table, mean score per value and group, with "
        f"provenance), {stem}_scores.parquet (per-image scores) and {stem}.<plot>; prints the "
        "trend of every group and the paths written. " + _EXITS
    )


def _parser() -> argparse.ArgumentParser:
    from probe._version import __version__

    parser = Parser(
        prog="probe",
        description="Sensitivity probe for lens finders (see docs/probe.md).",
        epilog=EPILOG,
    )
    add_version(parser, __version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    common = _common_options()
    b = _add_bin(sub, common)
    s = _add_sweep(sub, common)
    r = _add_resim(sub, common)
    sel = _add_selection(sub, common)
    y = _add_yield(sub, common)
    for command in (b, s, r, sel, y):
        command.add_argument(
            "--resume", action="store_true",
            help="finish a killed run: reuse the verified chunk checkpoints under "
            "OUT/checkpoints (same model, data and configuration required; another is "
            "refused, naming what differs; see docs/scale.md)",
        )  # fmt: skip
    _add_study(sub)
    _add_check(sub)
    for command in sub.choices.values():  # every command that writes files
        if "--out" in command._option_string_actions:
            add_overwrite(command)
    add_debug(parser, sub)
    add_verbosity(parser, sub)
    return parser


def _common_options() -> argparse.ArgumentParser:
    """The options every model-scoring command shares (a parent parser)."""
    from probe.cluster import add_cluster_args

    common = Parser(add_help=False)
    add_cluster_args(common)
    common.add_argument("--model", required=True, help=_MODEL_HELP)
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
    common.add_argument("--trust-model-code", action="store_true", help=_TRUST_HELP)
    return common


def _add_bin(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "bin",
        parents=[common],
        help="score binned by a truth column",
        description="Score a saved set with the model and bin the scores by a truth column "
        "(mean score per bin, lenses and non-lenses apart; a string column is broken down per "
        "category with TPR/FPR instead). " + _writes("bin_<by>"),
    )
    b.set_defaults(func=_run_bin)
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


def _add_sweep(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    s = sub.add_parser(
        "sweep",
        parents=[common],
        help="score under a perturbation",
        description="Score a saved set under a perturbation at each of --values (the same "
        "images, perturbed with per-image seeds). " + _writes("sweep_<perturber>"),
    )
    s.set_defaults(func=_run_sweep)
    s.add_argument("--data", required=True, help="HDF5 image set or .zarr store")
    s.add_argument("--perturber", required=True, help="blur, noise, color, annulus, disk, ...")
    s.add_argument("--values", required=True, help="start:stop:step or a,b,c")
    return s


def _add_resim(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    r = sub.add_parser(
        "resim",
        parents=[common],
        help="score on re-simulated sets",
        description="Simulate lenses and non-lenses at each of --values of a simulator control "
        "(the same systems at every value unless --unpaired) and score them. "
        + _writes("resim_<param>"),
    )
    r.set_defaults(func=_run_resim)
    r.add_argument("--survey", required=True, help="simlens survey preset (e.g. des-sv)")
    r.add_argument("--param", required=True, help="simulator control (e.g. psf_scale)")
    r.add_argument("--values", required=True, help="start:stop:step or a,b,c")
    r.add_argument("--n", type=positive_int, default=300, help="lenses per value")
    r.add_argument("--n-nonlenses", type=int, help="non-lenses per value (default --n)")
    r.add_argument("--unpaired", action="store_true", help="fresh systems at every value")
    r.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    r.add_argument("--unit", default="", help="unit of --param")
    r.add_argument("--kind", help="non-lens kind to simulate (default: the simulator's)")
    _population_args(r)
    return r


def _add_selection(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
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
        "at each threshold. " + _EXITS,
    )
    sel.set_defaults(func=_run_selection)
    sel.add_argument("--param", required=True, help="control or truth column (mag_source_g)")
    sel.add_argument("--thresholds", default="0.5,0.9,0.99", help="a,b,c (found: p >= t)")
    sel.add_argument("--fpr", help="also thresholds at these false-positive rates, a,b")
    sel.add_argument("--data", help="HDF5 set or .zarr store (default: simulate with --survey)")
    sel.add_argument("--survey", default="des-y3", help="simlens survey preset")
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
    _population_args(sel)
    return sel


def _add_yield(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    y = sub.add_parser(
        "yield",
        parents=[common],
        help="expected number of lenses found",
        description="Expected number of lenses the model finds over a survey at each "
        "threshold: the survey's lens population drawn from simlens, its LensPop-detectable "
        "part scored. Prints the numbers; with --out also writes OUT/yield.json (with "
        "provenance). " + _EXITS,
    )
    y.set_defaults(func=_run_yield)
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
    return y


def _add_study(sub: Any) -> argparse.ArgumentParser:
    from probe.study import add_study_cli

    study = add_study_cli(sub)
    study.set_defaults(func=_run_study)
    return study


def _add_check(sub: Any) -> argparse.ArgumentParser:
    from probe.cluster import add_cluster_args

    c = sub.add_parser(
        "check",
        help="regression gate: does a candidate meet a suite of expectations? (docs/gate.md)",
        description="Test a candidate lens finder against the expectations of a suite (and a "
        "baseline model); write report.html, report.json and junit.xml. Exit status: 0 all "
        "expectations hold, 1 one or more fail, 2 bad input.",
    )
    c.set_defaults(func=_run_check, before_cluster=_refuse_existing_report)
    c.add_argument("--model", required=True, help=f"candidate: {_MODEL_HELP}")
    c.add_argument("--baseline", help="baseline model (needed by no_regression expectations)")
    c.add_argument(
        "--allow-same-model",
        action="store_true",
        help="allow a candidate whose content digest equals the baseline's",
    )
    c.add_argument("--suite", required=True, help="suite TOML file, or 'default'")
    c.add_argument("--out", required=True, type=output_dir, help="report directory")
    c.add_argument("--seed", type=int, help="root seed (default: the suite's)")
    c.add_argument(
        "--data",
        help="saved HDF5 set or .zarr store used by every expectation instead of simulating",
    )
    cache = c.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default $PROBE_CACHE_DIR or ~/.cache/probe)",
    )
    cache.add_argument("--no-cache", action="store_true", help="simulate and run the baseline")
    c.add_argument(
        "--resume", action="store_true",
        help="finish a killed check: reuse the per-unit scores it kept under OUT/checkpoints "
        "(same models, suite, seed and data required; another is refused, naming what "
        "differs); sets and baseline scores come from the cache as on any rerun "
        "(docs/scale.md)",
    )  # fmt: skip
    c.add_argument(
        "--batch-size", type=positive_int, default=256, help="images per model call (256)"
    )
    c.add_argument("--trust-model-code", action="store_true", help=_TRUST_HELP)
    add_cluster_args(c)
    return c


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

    return run("probe", _parser(), commands, argv)


def _run_check(args: argparse.Namespace) -> int:
    """``probe check``: 0 when every expectation holds, 1 when one fails; errors raise."""
    from probe.cache import default_cache_dir
    from probe.gating.run import run_gate

    _refuse_existing_report(args)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    log = None if args.quiet else (lambda line: print(line, flush=True))
    # Errors (a suite error, a missing or unreadable file or model, a simulator rejecting the
    # suite's controls) propagate: the policy turns them into exit 2 with one line.
    result = run_gate(
        args.model,
        args.suite,
        baseline=args.baseline,
        cache_dir=cache_dir,
        seed=args.seed,
        data=args.data,
        batch_size=args.batch_size,
        log=log,
        allow_same_model=args.allow_same_model,
        trust_code=args.trust_model_code,
        client=args.client,
        chunk_size=args.chunk_size,
        checkpoint_dir=args.out / "checkpoints",
        resume=args.resume,
    )
    written = result.write(args.out)
    print(result.summary())
    for path in written.values():
        print(f"wrote {path}")
    from probe.checkpoints import discard_dir

    discard_dir(args.out / "checkpoints")  # the reports are written: nothing left to resume
    return EXIT_OK if result.passed else EXIT_FAILED


def _refuse_existing_report(args: argparse.Namespace) -> None:
    if not args.overwrite:  # refuse before running the gate, not after
        from probe.gating.report import REPORT_FILES
        from probe.safe_io import OutputExistsError

        existing = [name for name in REPORT_FILES if (args.out / name).exists()]
        if existing:
            raise OutputExistsError(
                f"--out: {args.out} already has {', '.join(existing)}; pass --overwrite to "
                "replace them"
            )


def _run_study(args: argparse.Namespace) -> int:
    """``probe study``: the paper's whole study (:func:`probe.study.run_study_cli`)."""
    from probe.study import run_study_cli

    return run_study_cli(args)


def _require_out(args: argparse.Namespace) -> Path:
    if args.out is None:
        raise ProbeValueError("--out is required")
    out: Path = args.out
    return out


def _sensitivity_probe(args: argparse.Namespace) -> Any:
    """The :class:`probe.sensitivity.Probe` of ``bin``/``sweep``/``resim`` (with statistics)."""
    from probe.statistics import StatsParams
    from probe.sweeps.sensitivity import Probe

    _require_out(args)
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


def _run_bin(args: argparse.Namespace) -> int:
    """``probe bin``: scores of a saved set binned by a truth column (or per category)."""
    p = _sensitivity_probe(args)
    data = load_data(args.data)
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
        _close(data)
    return _write_result(args, p, result, f"bin_{args.by}")


def _bins(args: argparse.Namespace, values: np.ndarray) -> Any:
    """The binning of ``probe bin``: quantiles, a uniform --range, or a number of bins."""
    from probe.binning import Binning

    outside: Literal["raise", "drop"] = "drop" if args.drop_outside else "raise"
    if args.quantiles:
        return Binning.quantiles(values, n=args.bins, outside=outside)
    if args.range:
        return Binning.uniform(*args.range, n=args.bins, outside=outside)
    return args.bins


def _run_sweep(args: argparse.Namespace) -> int:
    """``probe sweep``: scores of a saved set under a perturbation at each value."""
    p = _sensitivity_probe(args)
    data = load_data(args.data)
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
        _close(data)
    return _write_result(args, p, result, f"sweep_{args.perturber}")


def _run_resim(args: argparse.Namespace) -> int:
    """``probe resim``: scores of sets re-simulated at each value of a simulator control."""
    p = _sensitivity_probe(args)
    sim = make_simulator(args.survey, args.npix)
    lens_c, nonlens_c = _population_controls(args)
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


def _write_result(args: argparse.Namespace, p: Any, result: Any, stem: str) -> int:
    """Write a result's table, scores and plot into --out, print each group's trend and the
    paths, then drop the checkpoints (nothing is left to resume)."""
    out = _require_out(args)
    written = [result.save(out / f"{stem}.{args.format}")]
    written.append(_save_scores(result, out / f"{stem}_scores.parquet"))
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
    for path in written:
        print(f"wrote {path}")
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
        key["chunk_size"] = p._chunk_for(images)
        key["data"] = data_identity(args.data)
    if args.command == "sweep":
        key["perturber"] = args.perturber
        key["values"] = [float(v) for v in parse_values(args.values)]
    elif args.command == "bin":
        key["classes"] = args.classes
    return open_checkpoints(args, key)


def _is_categorical(column: Any) -> bool:
    """Strings, booleans and pandas categoricals are broken down by category, not binned."""
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _parse_classes(text: str) -> dict[str, int]:
    """``"a=0,b=1"`` -> {"a": 0, "b": 1}."""
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
        classes=_parse_classes(args.classes) if args.classes else None,
    )
    out: Path = args.out
    stem = f"bin_{args.by}"
    written = [result.save(out / f"{stem}.{args.format}")]
    written.append(_save_frame(result.scores, out / f"{stem}_scores.parquet"))
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
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


_CONTROL_RANGES = {
    "theta_E": (0.5, 3.0),
    "mag_source_g": (19.0, 25.0),
    "mag_lens_r": (16.0, 22.0),
    "psf_scale": (0.6, 2.0),
}


def _predictor(args: argparse.Namespace) -> Any:
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


def _floats(text: str | None) -> list[float]:
    return [] if not text else [float(v) for v in parse_values(text)]


def _run_selection(args: argparse.Namespace) -> int:
    """``probe selection``: completeness against --param (and --param2: a 2-D surface) on a
    saved or simulated set; --negatives adds a saved set of non-lenses for --fpr and TPR."""
    _require_out(args)
    thresholds = _thresholds(args.thresholds, "--thresholds")
    params = [args.param] + ([args.param2] if args.param2 else [])
    if args.data and args.n_nonlenses is not None:
        raise ProbeValueError(
            "--n-nonlenses applies when simulating; with --data the set's own non-lenses are "
            "used (add others with --negatives FILE)"
        )
    if args.data and _population_controls(args) != ({}, {}):
        raise ProbeValueError(
            "--theta-E, --mag-source-g, ... choose a simulated population; with --data the "
            "set is used as it is"
        )
    from probe.resume import finish, selection_checkpoints

    p = _predictor(args)
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


_Scored = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(p(lens) per image, label per image, the --param(/--param2) values per image, (n, k))."""


def _scored_data(args: argparse.Namespace, p: Any, params: list[str], ckpt: Any) -> _Scored:
    """``probe selection --data``: the saved set's scores, labels and parameter values
    (scored through the checkpoints ``ckpt``, if any)."""
    from probe.resume import predict

    data = load_data(args.data)
    try:
        for name in params:
            if name not in data.truth.columns:
                raise ProbeValueError(f"{name!r} is not a truth column of {args.data}")
        values = np.column_stack([data.truth[n].to_numpy(dtype=np.float64) for n in params])
        labels = np.asarray(data.labels)
        p_lens = predict(p, data.images, ckpt, "data-")
    finally:
        _close(data)
    return p_lens, labels, values


def _selection_population(
    args: argparse.Namespace, params: list[str]
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(simulator, lens controls, non-lens controls) of ``probe selection`` without --data:
    the population flags, and the parameters' ranges where they are controls."""
    sim = make_simulator(args.survey, args.npix)
    lens_c, nonlens_c = _population_controls(args)
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
        thresholds, fpr=_floats(args.fpr) or None, interval=args.interval,
        min_count=args.min_count, x_name=args.param, y_name=args.param2,
        x_unit=args.unit, y_unit=args.unit2, label=args.label or p.label,
    )  # fmt: skip
    surface.provenance.update(provenance)
    out = _require_out(args)
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
    for path in written:
        print(f"wrote {path}")
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
        fpr=_floats(args.fpr) or None,
        interval=args.interval,
        min_count=args.min_count,
        name=param,
        unit=args.unit,
        label=args.label or p.label,
        provenance=provenance,
    )
    out = _require_out(args)
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
            f"threshold {r['label']:>10s} (p >= {format_threshold(r['threshold'])}): "
            f"completeness {r['completeness']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}], "
            f"{param}_50 = {r['x50']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
        )
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def _close(data: Any) -> None:
    close = getattr(data, "close", None)
    if callable(close):
        close()


def _negative_scores(p: Any, path: str, ckpt: Any = None) -> np.ndarray:
    """p(lens) of the non-lenses (label 0) of a saved set: the negatives of --fpr and TPR
    (scored through the checkpoints ``ckpt``, if any)."""
    from probe.resume import predict

    data = load_data(path)
    try:
        labels = np.asarray(data.labels)
        if not np.any(labels == 0):
            raise ProbeValueError(f"--negatives {path!r} holds no non-lenses (label 0)")
        scores = np.asarray(predict(p, data.images, ckpt, "negatives-"), dtype=np.float64)
    finally:
        _close(data)
    return scores[labels == 0]


#: Population controls of ``probe resim`` and ``probe selection``: flag -> (control, lens only).
_POPULATION_FLAGS: dict[str, tuple[str, bool]] = {
    "--theta-E": ("theta_E", True),
    "--mag-source-g": ("mag_source_g", True),
    "--n-sersic-source": ("n_sersic_source", True),
    "--mag-lens-r": ("mag_lens_r", True),
    "--psf-scale": ("psf_scale", False),
}


def _control_value(text: str) -> float | tuple[float, float]:
    """``"x"`` -> x (fixed); ``"lo:hi"`` -> (lo, hi) (uniform), as ``simlens generate``."""
    try:
        parts = [float(v) for v in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}") from None
    if len(parts) == 1 and np.isfinite(parts[0]):
        return parts[0]
    if len(parts) == 2 and np.all(np.isfinite(parts)) and parts[0] <= parts[1]:
        return (parts[0], parts[1])
    raise argparse.ArgumentTypeError(f"expected a number or lo:hi with lo <= hi, got {text!r}")


def _population_args(parser: argparse.ArgumentParser) -> None:
    """Flags that shape the simulated population (lens-only ones go to the lens draw only)."""
    helps = {
        "theta_E": "Einstein radius, arcsec: x or lo:hi (lenses)",
        "mag_source_g": "lensed source g mag: x or lo:hi (lenses)",
        "n_sersic_source": "source Sersic index: x or lo:hi (lenses)",
        "mag_lens_r": "lens galaxy r mag: x or lo:hi (lenses)",
        "psf_scale": "PSF FWHM / preset: x or lo:hi (lenses and non-lenses)",
    }
    for flag, (name, _) in _POPULATION_FLAGS.items():
        parser.add_argument(flag, dest=name, type=_control_value, help=helps[name])


def _population_controls(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(lens controls, non-lens controls) from the population flags given."""
    lens: dict[str, Any] = {}
    nonlens: dict[str, Any] = {}
    for name, lens_only in _POPULATION_FLAGS.values():
        value = getattr(args, name, None)
        if value is None:
            continue
        lens[name] = value
        if not lens_only:
            nonlens[name] = value
    return lens, nonlens


def _run_yield(args: argparse.Namespace) -> int:
    """``probe yield``: expected lenses found over the survey at each threshold."""
    import json

    from probe.provenance import atomic_write, dumps
    from probe.resume import finish, images_scope, predict, yield_checkpoints
    from probe.yields import QUESTIONS, survey_yields

    thresholds = _thresholds(args.threshold, "--threshold")
    p = _predictor(args)
    # With --out, each stratum's scores go through OUT/checkpoints (scoped by its images).
    ckpt = yield_checkpoints(args, p, make_simulator(args.survey, args.npix))

    def scored(images: Any) -> np.ndarray:
        return predict(p, images, ckpt, images_scope(images))

    res = survey_yields(
        {p.label or "model": scored},
        thresholds,
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
        finish(ckpt, args)
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
