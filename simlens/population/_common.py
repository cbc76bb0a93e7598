"""Helpers shared by the population relations: argument checks and inverse-CDF sampling."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import cumulative_trapezoid

from simlens.errors import SimlensValueError

__all__ = ["N_CDF_GRID", "check_n", "check_rng", "sample_grid", "truncated_rayleigh"]

Array = NDArray[np.float64]

N_CDF_GRID = 4001  # grid points of the inverse-CDF samplers


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def check_n(n: int) -> int:
    """``n`` (a number of draws) as an int, if it is an integer >= 0."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise SimlensValueError(f"n: must be an integer >= 0, got {n!r}")
    return int(n)


def check_rng(rng: np.random.Generator) -> np.random.Generator:
    """``rng`` if it is a numpy Generator (never the global random state)."""
    if not isinstance(rng, np.random.Generator):
        raise SimlensValueError(
            f"rng: must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


# --------------------------------------------------------------------------------------------
# Inverse-CDF sampling on a grid
# --------------------------------------------------------------------------------------------


def sample_grid(x: Array, pdf: Array, n: int, rng: np.random.Generator) -> Array:
    """Draw ``n`` values from the (unnormalised) tabulated ``pdf`` by inverse CDF."""
    cdf = cumulative_trapezoid(pdf, x, initial=0.0)
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, x)


def truncated_rayleigh(scale: Array, x_max: float, rng: np.random.Generator) -> Array:
    """Rayleigh(scale) draws conditioned on x <= x_max (exact inverse CDF, no pile-up)."""
    f_max = -np.expm1(-(x_max**2) / (2.0 * scale**2))  # CDF at x_max
    u = rng.random(scale.shape) * f_max
    return scale * np.sqrt(-2.0 * np.log1p(-u))
