#!/usr/bin/env python
"""The main job on embedded defaults: a DES-like test set, then the paper's whole study.

1. Simulates a small DES-like lens + non-lens test set and writes, under ``out/demo/`` (or
   ``--out``):

   * ``set.h5``: images (float32, 100x100 px, griz, counts at zero point 30), truth, provenance;
   * ``truth.csv`` and ``truth.parquet``: the truth table, one row per image;
   * ``contact_sheet.png``: colour composites (i, r, g) of the first images of each kind;
   * ``lens_0000.fits``: one system as a multi-extension FITS file with a full header.

2. Runs the sensitivity study of Jacobs et al. (colour, blur, PSF, Einstein radius, magnitudes,
   occlusion, noise; :mod:`probe.study`) on the reference finders A and B
   (:mod:`simlens.finders`) with test sets simulated at ``des-sv`` (their training PSF), and
   writes ``report.html`` (self-contained), ``figures/``, ``results/``, ``summary.*`` and
   ``table2.*`` into the same directory. Selection functions (completeness against source g,
   lens r and Einstein radius at thresholds 0.5/0.9/0.99 and at 1% FPR, ``selection/``) and
   expected yields over DES (des-y3, 5000 deg^2; ``yields.json``) come from finder C, trained
   on that population's LensPop-detectable lenses vs. the field
   (:func:`probe.studies.population.population_selection`).
   Default sizes (>= 100 images in every bin, and per value and class of every sweep) fit
   within 15 minutes on 2 cores (docs/study.md, "The experiments");
   ``--smoke`` is a tiny run of everything (CI), ``--full`` uses the paper's sizes (hours).

Run ``./scripts/demo`` (creates ``.venv`` first) or ``python scripts/demo.py --help``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    ap.add_argument("--n", type=int, default=48, help="images per class (default 48)")
    ap.add_argument("--seed", type=int, default=2026, help="random seed")
    ap.add_argument("--survey", default="des-y3", help="survey preset or TOML file")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny run of everything (CI)")
    size.add_argument("--full", action="store_true", help="the study at the paper's sizes")
    ap.add_argument("--no-study", action="store_true", help="only simulate the test set")
    args = ap.parse_args(argv)
    if args.smoke:
        args.n = min(args.n, 16)

    import simlens
    from simlens.io.fits import to_fits
    from simlens.io.plotting import contact_sheet

    t0 = time.perf_counter()
    sim = simlens.Simulator(args.survey)
    n = args.n
    n_star = max(n // 4, 1)
    # Visible lenses for a first look: Einstein radii a DES search resolves, and lensed
    # sources bright enough to see (the population's own defaults include faint ones).
    lenses = sim.lenses(n, rng=args.seed, theta_E=(1.0, 2.5), mag_source_g=(20.0, 22.5))
    ellipticals = sim.nonlenses(n - n_star, rng=args.seed + 1, kind="elliptical")
    stars = sim.nonlenses(n_star, rng=args.seed + 2, kind="star")
    ds = simlens.Dataset.concat([lenses, ellipticals, stars])

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    set_path = ds.save(out / "set.h5")
    ds.truth.to_csv(out / "truth.csv", index=False)
    ds.truth.to_parquet(out / "truth.parquet", index=False)
    picks = np.r_[0:8, n : n + 4, 2 * n - n_star : 2 * n - n_star + 4]
    sheet = contact_sheet(ds[picks], path=out / "contact_sheet.png", ncols=4, panel_px=120)
    fits_path = to_fits(lenses, 0, out / "lens_0000.fits")
    dt = time.perf_counter() - t0

    t = ds.truth
    lens = t[t.label == 1]
    print(f"simlens {simlens.__version__} on {sim!r}")
    print(f"{len(ds)} images ({len(lens)} lenses, {len(t) - len(lens)} non-lenses) in {dt:.1f} s")
    print(
        f"lenses: theta_E {lens.theta_E.min():.2f}-{lens.theta_E.max():.2f} arcsec, "
        f"median magnification {lens.magnification.median():.1f}, "
        f"{int(lens.detectable.sum())}/{len(lens)} LensPop-detectable"
    )
    for p in (set_path, out / "truth.csv", out / "truth.parquet", sheet, fits_path):
        print(f"  wrote {p}")
    if not args.no_study:
        run_reference_study(out, size="smoke" if args.smoke else "full" if args.full else "default")
    return 0


def run_reference_study(out: Path, *, size: str = "default", seed: int = 2026) -> Path:
    """The paper's study on finders A and B (des-sv test sets), selection functions and yields
    on finder C (des-y3 population); returns report.html's path."""
    import simlens
    from probe import study
    from probe.studies.report import write_report
    from simlens import finders

    t0 = time.perf_counter()
    # A was trained against the same galaxies without a source; B against field non-lenses:
    # each is tested against its own kind of negative (paper, section 4.1): A's are lenses of
    # the study's lens set without their source, B's the kinds recorded with its weights.
    b_kinds = finders.training_record("B").get("b_kinds") or {"field": 1.0}
    models = [
        study.StudyModel("A", finders.load("A"), {study.UNLENSED: 1.0}),
        study.StudyModel("B", finders.load("B"), b_kinds),
    ]
    config = study.StudyConfig(sizes=study.SIZES[size], seed=seed)
    print(f"study ({size}) of finders A and B on {simlens.Simulator('des-sv')!r}")
    result = study.run_study(simlens.Simulator("des-sv"), models, None, config=config)
    # Selection functions and expected yields over DES (des-y3 depth, seeing and Moffat PSF,
    # 5000 deg^2) come from finder C, trained on that population (LensPop-detectable lenses vs.
    # the field): A and B never saw most of it. The population's lenses are rendered once.
    from probe.studies.population import population_selection

    t1 = time.perf_counter()
    rec = finders.training_record("C")["test"]
    lo, hi = rec["auc_interval_95"]
    note = (
        f"Finder C: AUC {rec['auc']:.3f} [{lo:.3f}, {hi:.3f}] on {rec['n_lenses']:,} fresh "
        f"LensPop-detectable lenses vs. {rec['n_negatives']:,} fresh field non-lenses at "
        f"{finders.C_SURVEY} (training record C.json)."
    )
    pop = population_selection(
        {"C": finders.load("C")}, size=size, survey=finders.C_SURVEY, seed=seed, note=note
    )
    ylds = pop.yields
    print(
        f"selection and yields (finder C): {ylds.n_detectable} detectable + {ylds.n_other} "
        f"other lenses scored in {time.perf_counter() - t1:.0f} s"
    )
    for name, ys in ylds.yields.items():
        for y in ys:
            print(f"  {name}: {y}")
    path = write_report(result, out, population=pop)
    # CPU seconds of this process (all threads): what an idle machine needs, whatever the load
    print(
        f"study done in {time.perf_counter() - t0:.0f} s "
        f"({time.process_time():.0f} s CPU since start): {path}"
    )
    print((out / "table2.md").read_text())
    return path


if __name__ == "__main__":
    raise SystemExit(main())
