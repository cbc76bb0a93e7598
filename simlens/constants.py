"""The one definition of each physical and bookkeeping constant simlens uses.

Every module imports these names from here; nothing restates a value.
"""

from __future__ import annotations

import math

__all__ = [
    "ARCMIN2_PER_DEG2",
    "ARCSEC_PER_DEG",
    "ARCSEC_PER_RAD",
    "NO_LIGHT_MAG",
    "NO_LIGHT_THRESHOLD",
    "SPEED_OF_LIGHT_ANGSTROM_S",
    "SPEED_OF_LIGHT_KM_S",
    "SR_PER_DEG2",
    "ZERO_FLUX_MAG",
]

NO_LIGHT_MAG = float("nan")
"""Truth-table magnitude of an absent component (no light): NaN, not 99."""

NO_LIGHT_THRESHOLD = 50.0
"""Magnitudes >= this also mean "no light": tables written before NaN (with 99) still read right."""

ZERO_FLUX_MAG = 99.0
"""Magnitude an SED band with no flux reads (the floor of the synthetic photometry; finite so
colours stay finite). Never stored in a truth table: those use :data:`NO_LIGHT_MAG`."""

SPEED_OF_LIGHT_KM_S = 299_792.458
"""Speed of light in km/s (exact, SI definition)."""

SPEED_OF_LIGHT_ANGSTROM_S = 2.99792458e18
"""Speed of light in Angstrom/s (:data:`SPEED_OF_LIGHT_KM_S` times 1e13)."""

ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
"""Arcseconds per radian (about 206264.806)."""

ARCSEC_PER_DEG = 3600.0
"""Arcseconds per degree."""

ARCMIN2_PER_DEG2 = 3600.0
"""Square arcminutes per square degree."""

SR_PER_DEG2 = (math.pi / 180.0) ** 2
"""Steradians per square degree (about 3.046e-4)."""
