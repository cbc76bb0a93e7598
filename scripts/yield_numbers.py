"""Regenerate the yield and population numbers of docs/selection.md and docs/population.md.

Usage: python scripts/yield_numbers.py [--n 40000] [--n-lenspop 80000] [--seed 0]

Prints, for the ``des-y3`` (DR1, deep-field sources), ``lenspop-des`` (LensPop's DES
configuration and LensPop's sources, ``--n-lenspop`` draws) and ``lenspop-des`` with the
deep-field sources instead: the
strong-lens density (integral), the LensPop-detectable fraction (Monte Carlo, 95% Wilson), the
detectable count over 5000 deg^2 with its interval, the medians of the detectable lenses, and
the strong-lens density of LensPop's own sources (all, and 22 <= i <= 27); then the source
redshift medians of the population at i = 23.5-26.5, ours and LensPop's catalogue's.
~4 min on one core at the defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from simlens import yields as Y
from simlens.population import lenspop_sources as plp
from simlens.population import relations as pop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40000)
    ap.add_argument("--n-lenspop", type=int, default=80000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dens = Y.lens_density()
    print(
        f"strong lenses: {dens.per_deg2:.1f} per deg^2; sources 22 <= i <= 27: "
        f"{dens.sources_per_deg2:.3g} per deg^2; mean optical depth {dens.mean_optical_depth:.3g}"
    )
    for lo, hi in ((None, None), (22.0, 27.0)):
        d = Y.lens_density(source_population="lenspop", mag_min=lo, mag_max=hi)
        print(
            f"LensPop sources (i in [{lo}, {hi}]): strong lenses {d.per_deg2:.1f} per deg^2; "
            f"sources {d.sources_per_deg2:.4g} per deg^2; mean optical depth "
            f"{d.mean_optical_depth:.3g}"
        )
    runs = (
        ("des-y3", None, args.n),
        ("lenspop-des", None, args.n_lenspop),
        ("lenspop-des", "deep-field", args.n),
    )
    for name, sources, n in runs:
        t0 = time.perf_counter()
        s = Y.sky_density(name, n=n, rng=args.seed, source_population=sources)
        fr = s.fraction
        med = fr.medians()
        label = f"{name} ({s.density.settings['source_population']} sources)"
        print(
            f"{label}: detectable {fr.k} / {fr.n} = {100 * fr.fraction:.3f}% "
            f"[{100 * fr.low:.3f}, {100 * fr.high:.3f}]%, {s.detectable_per_deg2:.3f} "
            f"[{s.detectable_low:.3f}, {s.detectable_high:.3f}] per deg^2, "
            f"N = {s.n_detectable:.0f} [{s.n_detectable_low:.0f}, {s.n_detectable_high:.0f}] "
            f"over {s.area_deg2:g} deg^2 (LensPop: {s.lenspop_prediction:.0f}); "
            f"{fr.n_traced} traced, {time.perf_counter() - t0:.0f} s"
        )
        print("   medians: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    p = pop.population_parameters()
    for m in (23.5, 24.5, 25.5, 26.5):
        z0 = p.source_z0_slope * m + p.source_z0_intercept
        med = stats.gamma.ppf(0.5, p.source_gamma_shape, scale=z0)
        cat = plp.lenspop_source_catalogue()
        sel = np.abs(cat["mag_i"].to_numpy() - m) <= 0.5
        lp = float(np.median(cat["z_source"].to_numpy()[sel]))
        print(f"source median z at i = {m}: {med:.2f} (LensPop catalogue, i +- 0.5: {lp:.2f})")


if __name__ == "__main__":
    main()
