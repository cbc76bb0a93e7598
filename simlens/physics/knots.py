"""Clumpy sources: the source-plane light of star-forming knots (galsim ``RandomKnots``).

:mod:`simlens.physics.sources` describes the clumpy source model; the lensed grid
(:mod:`simlens.physics.lensing`) samples :func:`knot_sampler` at its ray-traced positions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import galsim
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

__all__ = ["knot_sampler"]

F64 = NDArray[np.float64]


@lru_cache(maxsize=256)
def knot_sampler(
    n_knots: int, hlr: float, sigma: float, e1: float, e2: float, seed: int
) -> tuple[Callable[[F64, F64], F64], float]:
    """Surface brightness (per arcsec^2, unit total) of the clumps, and their reach (arcsec).

    The returned function takes offsets from the source centre (arcsec, arrays) and samples the
    galsim-drawn source-plane image bilinearly (zero outside it).
    """
    prof = galsim.Exponential(half_light_radius=hlr)
    knots = galsim.RandomKnots(int(n_knots), profile=prof, rng=galsim.BaseDeviate(int(seed)))
    pts = np.array(knots.points, dtype=float).reshape(-1, 2)
    obj = galsim.Convolve(knots.shear(g1=e1, g2=e2), galsim.Gaussian(sigma=sigma))
    g = np.hypot(e1, e2)
    stretch = float(np.sqrt((1.0 + g) / (1.0 - g)))  # largest axis stretch of the shear
    reach = float(np.hypot(pts[:, 0], pts[:, 1]).max()) * stretch + 5.0 * sigma
    scale = sigma / 3.0
    npx = int(2 * np.ceil(reach / scale) + 1)
    arr = obj.drawImage(nx=npx, ny=npx, scale=scale, method="no_pixel").array.astype(float)
    arr /= arr.sum() * scale**2  # unit total flux per arcsec^2
    arr.setflags(write=False)
    c = (npx - 1) / 2.0

    def sb(dx: F64, dy: F64) -> F64:
        dx, dy = np.broadcast_arrays(np.asarray(dx, float), np.asarray(dy, float))
        coords = np.stack([(dy / scale + c).ravel(), (dx / scale + c).ravel()])
        out = map_coordinates(arr, coords, order=1, mode="constant", cval=0.0)
        return np.asarray(out.reshape(dx.shape))

    return sb, reach
