"""Fit z0(i) = a i + b of the source redshift law p(z | i) ~ z^2 exp(-z / z0) to deep-field medians.

Usage: python scripts/fit_source_redshift.py

The data are the COSMOS 30-band photometric-redshift medians of Ilbert et al. 2009 (ApJ 690,
1236, abstract): z_m = 0.66 at 22 < i+ < 22.5 and z_m = 1.06 at 24.5 < i+ < 25. Within each
magnitude bin, p(z | i) is averaged with the counts dN/dm ~ 10^(0.33 i) (catalogs/population.toml
[source_counts]), and (a, b) solve "median of the bin = measured median" for both bins. Prints
(a, b), written to catalogs/population.toml [source_redshift] (z0_slope, z0_intercept).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

#: (i_min, i_max, median z): Ilbert et al. 2009, COSMOS photo-z.
MEDIANS = ((22.0, 22.5, 0.66), (24.5, 25.0, 1.06))
COUNT_SLOPE = 0.33  # dex/mag, catalogs/population.toml [source_counts]
GAMMA_SHAPE = 3.0  # p(z | i) ~ z^2 exp(-z / z0)


def bin_median(a: float, b: float, m1: float, m2: float) -> float:
    m = np.linspace(m1, m2, 201)
    w = 10.0 ** (COUNT_SLOPE * m)
    w /= w.sum()
    z0 = a * m + b

    def cdf_minus_half(z: float) -> float:
        return float((w * stats.gamma.cdf(z, GAMMA_SHAPE, scale=z0)).sum()) - 0.5

    return float(optimize.brentq(cdf_minus_half, 1e-4, 20.0))


def main() -> None:
    def residual(p: np.ndarray) -> list[float]:
        return [bin_median(p[0], p[1], m1, m2) - zm for m1, m2, zm in MEDIANS]

    a, b = optimize.fsolve(residual, [0.06, -1.08], xtol=1e-12)
    print(f"z0_slope = {a:.5f}, z0_intercept = {b:.5f}; residuals {residual(np.array([a, b]))}")
    for m in (23.5, 24.5, 25.5, 26.5, 27.0):
        print(f"  median z at i = {m}: {stats.gamma.ppf(0.5, GAMMA_SHAPE, scale=a * m + b):.2f}")


if __name__ == "__main__":
    main()
