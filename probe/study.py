"""The paper's whole sensitivity study (Jacobs et al., sections 4.1-4.6) for one or more models.

:func:`run_study` draws the test sets from a simulator (anything with the methods of
:class:`probe.SimulatorProtocol`; probe never imports one), runs every experiment of the paper
for every model with per-class curves, and hands the results to :mod:`probe.studies.report`,
which writes the figures, tables, the Table-2-like summary and a self-contained ``report.html``.
This module is the study's front: its public names, and the ``probe study`` command
(:func:`add_study_cli`, :func:`run_study_cli`); the machinery lives in :mod:`probe.studies`
(experiments, simulation, run, galleries, population, report).

=============  ==========================================================  =================
experiment     what                                                        paper section
=============  ==========================================================  =================
color          colour jitter sigma 0-1, step 0.05 (sweep)                  4.1
blur           Gaussian blur sigma 0-3 px, step 0.25 (sweep)               4.2
psf            PSF ratio 0.6-3, step 0.2, paired re-simulation             4.2
psf_source     PSF ratio of the lensed source only (lens keeps its PSF)    4.2
theta_E        Einstein radius 1.0-2.7", 17 bins of 0.1" (lenses)          4.3
mag_lens_r     lens r 17-23, 0.5 mag bins (lenses)                         4.4
mag_source_g   lensed source g 20-23, 0.25 mag bins (lenses)               4.4
annulus        annulus occlusion, width 5 px, radius 0-50 px (sweep)       4.5
disk           disk occlusion, radius 0-35 px (sweep)                      4.5
noise          normalised Gaussian noise sigma 0-30 (sweep)                4.6
=============  ==========================================================  =================

Test sets (shared by all models; the non-lenses are drawn per distinct kind mixture): lenses with
the controls ``StudyConfig.sets["lenses"]`` (default Einstein radius in 1.0-2.7", lensed
source g in 20-22.5 and lens r in 18-21: the paper's "typical range for likely, detectable
lenses", as the reference finders were trained); the magnitude sets widen ``mag_source_g`` to
20-23 or ``mag_lens_r`` to 17-23, beyond the training ranges, so that the paper's claims about
faint sources (g > 22) and bright or faint lenses (r < 19, r > 22.5) can be tested (see
:data:`DEFAULT_SETS`). The binned parameter of each set is drawn stratified: object ``i`` is
uniform within bin ``i mod n_bins`` of its experiment, so every bin holds the same number of
lenses (any prefix of the set too) instead of a binomial count. Perturbation sweeps use the
first ``n_sweep`` lenses plus ``n_sweep`` non-lenses of the model's kinds; the Einstein-radius
experiment bins the first ``n_theta_E`` lenses. ``study.json`` records the fewest images of any
bin (or value and class) per experiment (``min_bin_count``); the run warns under
:data:`MIN_BIN_COUNT` at default or full sizes.

Lens r beyond the population: lenses with Einstein radii of 1-2.7" are massive galaxies, most
with r of 15-20 (simlens: 10% fainter than 20.7, 1% fainter than 22.5). The sampler picks the
candidate nearest the requested magnitudes and shifts its light by the residual, so lenses
fainter than r ~ 22 are population lenses dimmed by typically 1.5-2 mag (colours, sizes and
redshifts of brighter lenses); the bright edge (17) is well inside the population.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from probe.adapters.simulators import DEFAULT_SIMULATOR, SIMULATOR_NAME
from probe.adapters.specs import load_callable
from probe.errors import ProbeValueError
from probe.studies.experiments import (
    DEFAULT_SETS,
    EXPERIMENTS,
    MIN_BIN_COUNT,
    SIZES,
    UNLENSED,
    Experiment,
    StudyConfig,
    StudyModel,
    StudyResult,
    StudySizes,
)
from probe.studies.population import YIELD_SIZES, YIELD_THRESHOLDS, study_yields
from probe.studies.run import run_study

__all__ = [
    "DEFAULT_SETS",
    "EXPERIMENTS",
    "MIN_BIN_COUNT",
    "SIZES",
    "UNLENSED",
    "YIELD_SIZES",
    "YIELD_THRESHOLDS",
    "Experiment",
    "StudyConfig",
    "StudyModel",
    "StudyResult",
    "StudySizes",
    "add_study_cli",
    "run_study",
    "run_study_cli",
    "study_yields",
]


# -- command line (wired into ``probe study`` by probe.cli) ---------------------------------
def _parse_kinds(text: str) -> dict[str, float]:
    """``"elliptical"`` or ``"elliptical:0.5,star:0.5"`` -> fractions."""
    kinds: dict[str, float] = {}
    for part in text.split(","):
        name, _, frac = part.partition(":")
        kinds[name.strip()] = float(frac) if frac else 1.0
    return kinds


def _load_factory(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ProbeValueError(f"--simulator must be 'module:callable'; got {spec!r}")
    return load_callable(spec)


def add_study_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``study`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    from probe.cli_paths import output_dir
    from probe.cli_policy import verbosity_options

    p = subparsers.add_parser(
        "study",
        help="run the paper's whole sensitivity study and write report.html",
        description=(
            "Run every experiment of Jacobs et al. (colour, blur, PSF, Einstein radius, "
            "magnitudes, occlusion, noise) for one or more models and write figures, tables, "
            "a summary like the paper's Table 2 and a self-contained report.html. Writes under "
            "OUT: report.html, study.json, summary.{csv,parquet,md}, table2.{csv,parquet,md}, "
            "results/<model>_<experiment>.{parquet,csv}, scores/<model>_<experiment>.parquet, "
            "figures/<experiment>.png and selection/<model>_<param>.{parquet,csv} (with "
            "--yields also yields.json); prints the report's path. Exit codes: 0 written, "
            "2 bad input or an unreadable model."
        ),
    )
    p.add_argument(
        "--model", action="append", required=True,
        help=".keras file or module:callable (repeat for several models)",
    )  # fmt: skip
    p.add_argument("--label", action="append", help="legend name per --model (default M1, M2..)")
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny run for CI (~1-2 min)")
    size.add_argument("--full", action="store_true", help="the paper's sizes (hours)")
    p.add_argument(
        "--nonlens-kinds", default="elliptical",
        help="non-lens kinds and fractions, e.g. 'field', 'elliptical:0.5,star:0.5', or "
        "'unlensed' (the study's lenses without their source: matched negatives)",
    )  # fmt: skip
    p.add_argument("--survey", default="des-sv", help="simulator survey preset (training PSF)")
    p.add_argument(
        "--simulator", default=DEFAULT_SIMULATOR,
        help=f"module:callable building the simulator from survey=... (default {SIMULATOR_NAME})",
    )  # fmt: skip
    p.add_argument("--experiments", help="comma-separated subset of the experiments")
    p.add_argument(
        "--yields", metavar="SURVEY",
        help="also report each model's selection functions and expected yield over the lens "
        f"population of this {SIMULATOR_NAME} survey preset (e.g. des-y3: DES, 5000 deg^2)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=2026, help="root seed (2026)")
    p.add_argument("--batch-size", type=int, default=256, help="images per model call (256)")
    verbosity_options(p)  # -v/--verbose, -q/--quiet (no progress), as every probe command
    p.add_argument(
        "--trust-model-code", action="store_true",
        help="let the model files run code (import the modules a .keras file names); default off",
    )  # fmt: skip
    p.add_argument(
        "--band",
        choices=("ci", "std", "sem"),
        default="ci",
        help="error bars: interval of the mean (ci, default), std of the scores, or sem",
    )
    p.add_argument(
        "--resume", action="store_true",
        help="finish a killed study: reuse the verified chunk scores it kept under "
        "OUT/checkpoints (same models, sizes, seed, experiments and simulator required; "
        "another is refused, naming what differs); the test sets are simulated again "
        "(docs/scale.md)",
    )  # fmt: skip
    from probe.cluster import add_cluster_args

    add_cluster_args(p)
    return p


def run_study_cli(args: argparse.Namespace) -> int:
    """Run ``probe study`` from parsed arguments (see :func:`add_study_cli`); returns 0."""
    labels = args.label or [f"M{i + 1}" for i in range(len(args.model))]
    if len(labels) != len(args.model):
        raise ProbeValueError(f"{len(labels)} --label for {len(args.model)} --model")
    kinds = _parse_kinds(args.nonlens_kinds)
    specs: list[Any] = list(args.model)
    if getattr(args, "trust_model_code", False):
        from probe.adapters import load

        specs = [load(spec, trust_code=True) for spec in specs]
    models = [StudyModel(lab, spec, kinds) for lab, spec in zip(labels, specs)]
    size = "smoke" if args.smoke else "full" if args.full else "default"
    experiments = (
        tuple(s.strip() for s in args.experiments.split(","))
        if args.experiments
        else tuple(e.name for e in EXPERIMENTS)
    )
    config = StudyConfig(
        sizes=SIZES[size],
        seed=args.seed,
        experiments=experiments,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    sim = _load_factory(args.simulator)(survey=args.survey)
    from probe.studies.report import write_report

    client = getattr(args, "client", None)
    t_start = time.perf_counter()
    # The command prints the study's progress on stdout, as it always has, and keeps stderr
    # for the one line of an error; the library (run_study without log=) logs it at INFO.
    log = None if args.quiet else (
        lambda s: print(f"[study {time.perf_counter() - t_start:6.0f} s] {s}", flush=True)
    )  # fmt: skip
    from probe.resume import finish, study_checkpoints

    checkpoints = study_checkpoints(args, models, config, sim)
    result = run_study(
        sim,
        models,
        None,
        config=config,
        log=log,
        client=client,
        chunk_size=getattr(args, "chunk_size", None),
        checkpoints=checkpoints,
    )
    # The lens population comes from simlens (simlens.yields), whatever simulator ran the study;
    # selection functions and yields are then drawn over it rather than the study's test sets.
    selection_by_population = None
    if args.yields:
        from probe.studies.population import population_selection

        selection_by_population = population_selection(
            {m.name: m.model for m in models},
            size=size,
            survey=args.yields,
            seed=args.seed,
            batch_size=args.batch_size,
            client=client,
        )
    path = write_report(
        result, args.out, population=selection_by_population, band=getattr(args, "band", "ci")
    )
    if not args.quiet:
        print(f"wrote {path}")
    finish(checkpoints, args)  # the report is written: nothing left to resume
    return 0
