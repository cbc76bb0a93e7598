"""Source light for the ray tracer: smooth Sersic, or Sersic plus star-forming clumps.

A clumpy source (``source_model="clumpy"``) puts ``knot_fraction_source`` of its light into
``n_knots_source`` clumps. Their positions are a galsim ``RandomKnots`` draw (exponential profile
of half-light radius ``R_sersic_source``, seeded by the row's ``seed_source``), sheared like the
source (``e1_source``, ``e2_source``); each clump is a Gaussian of sigma ``knot_sigma_source``.
galsim draws them (``method="no_pixel"``: surface-brightness samples) on an image of the source
plane with spacing ``sigma / 3``; the ray tracer
(:func:`simlens.physics.lensing.lensed_source_grid`)
samples that image bilinearly at the ray-traced positions of a sub-pixel grid fine enough for the
clumps. Bilinear interpolation integrates to the image's sum exactly, so the source plane holds
unit flux; ``tests/simlens/test_sources.py`` checks that an (almost) unlensed clumpy source keeps
its flux in the image plane within 0.5%, and that lensed fluxes equal ``magnification``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from simlens.physics.lensing import LensedSourceGrid, lensed_source_grid

__all__ = ["source_grid", "source_knots"]

F64 = NDArray[np.float64]


def source_knots(row: Any) -> tuple[int, float, float, int] | None:
    """``(n_knots, fraction, sigma, seed)`` of a truth row, or ``None`` for a smooth source."""
    get: Any = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    n = int(get("n_knots_source", 0) or 0)
    f = float(get("knot_fraction_source", 0.0) or 0.0)
    if n <= 0 or f <= 0.0:
        return None
    return (n, f, float(get("knot_sigma_source")), int(get("seed_source")))


def source_grid(row: Any, npix: int, pixel_scale: float, supersampling: int) -> LensedSourceGrid:
    """The unit-flux lensed source of a truth row (dict or namedtuple), memoised."""
    get: Any = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    return lensed_source_grid(
        gamma_slope=float(get("gamma_slope", 2.0)),
        gamma_ext=float(get("gamma_ext", 0.0)),
        psi_ext=float(get("psi_ext", 0.0)),
        theta_E=float(get("theta_E")),
        e1_mass=float(get("e1_mass")),
        e2_mass=float(get("e2_mass")),
        center_x_mass=float(get("center_x_mass")),
        center_y_mass=float(get("center_y_mass")),
        R_sersic=float(get("R_sersic_source")),
        n_sersic=float(get("n_sersic_source")),
        e1_source=float(get("e1_source")),
        e2_source=float(get("e2_source")),
        center_x_source=float(get("center_x_source")),
        center_y_source=float(get("center_y_source")),
        flux=1.0,
        npix=npix,
        pixel_scale=pixel_scale,
        supersampling=supersampling,
        knots=source_knots(row),
    )
