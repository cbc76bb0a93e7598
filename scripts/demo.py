#!/usr/bin/env python
"""The main job on embedded defaults: simulate a small DES-like lens + non-lens test set.

Writes, under ``out/demo/`` (or ``--out``):

* ``set.h5``: images (float32, 100x100 px, griz, counts at zero point 30), truth, provenance;
* ``truth.csv`` and ``truth.parquet``: the truth table, one row per image;
* ``contact_sheet.png``: colour composites (i, r, g) of the first images of each kind;
* ``lens_0000.fits``: one system as a multi-extension FITS file with a full header.

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
    args = ap.parse_args(argv)

    import simlens
    from simlens.fits import to_fits
    from simlens.plotting import contact_sheet

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
    sheet = contact_sheet(ds[picks], path=out / "contact_sheet.png", ncols=4)
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
