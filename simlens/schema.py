"""The one truth-table schema shared by every kind: component columns and their "absent" values.

Every row of every kind carries every column, so lens and non-lens tables concatenate and render
together. A component that an image does not have keeps its "absent" values below: magnitudes of
:data:`simlens.constants.NO_LIGHT_MAG` (NaN: no light), zero knots, zero fractions; no other
column is NaN. Magnitudes >= 50 (the 99 of tables written before) also read as no light. The
renderer reads only these columns (:func:`required_columns` lists them).

Lens mass beyond LensPop's SIE (off by default): ``gamma_slope``, the power-law slope of
lenstronomy's ``EPL`` (2 = SIE), and an external shear of strength ``gamma_ext`` at angle
``psi_ext`` (rad, from +x towards +y; lenstronomy ``SHEAR`` with ``gamma1 = gamma_ext cos 2 psi``,
``gamma2 = gamma_ext sin 2 psi``, about the mass centre).

Components added by the field kinds (``docs/population.md`` has the physics):

* ``disk`` (spirals): an exponential disk of half-light radius ``R_sersic_disk`` (arcsec), with
  ``n_arms_disk`` logarithmic spiral arms of pitch angle ``pitch_disk`` (deg) and phase
  ``phase_disk`` (rad) holding ``arm_fraction_disk`` of the disk light, and ``n_knots_disk``
  star-forming clumps (galsim ``RandomKnots`` from ``seed_disk``) holding ``knot_fraction_disk``;
  inclination as the shear ``e1_disk``, ``e2_disk``.
* ``companion`` (mergers): a second Sersic galaxy, ``R_sersic_companion``, ``n_sersic_companion``,
  ``e1_companion``, ``e2_companion``, ``center_x_companion``, ``center_y_companion``.
* ``arc`` (rings, blue arc-like companions, tidal tails): light on a circle of radius
  ``radius_arc`` (arcsec) around ``center_x_arc``, ``center_y_arc``, Gaussian across (sigma
  ``width_arc``), centred on position angle ``angle_arc`` (rad, from +x towards +y) with a
  Gaussian angular profile of FWHM ``length_arc`` (rad; ``>= 2 pi`` is a full ring), then
  sheared by ``e1_arc``, ``e2_arc`` (an inclined ring).
* clumpy sources: ``n_knots_source`` knots of Gaussian sigma ``knot_sigma_source`` (arcsec)
  holding ``knot_fraction_source`` of the source light, placed by galsim ``RandomKnots`` from
  ``seed_source`` (0 knots: the smooth Sersic source).
* neighbours: :data:`N_NEIGHBOUR_SLOTS` slots ``nb0`` .. ``nb7``: ``center_x_nb<k>``,
  ``center_y_nb<k>``, ``R_sersic_nb<k>`` (0 = a star, a point source), ``n_sersic_nb<k>``,
  ``e1_nb<k>``, ``e2_nb<k>``, ``mag_nb<k>_<band>``; unused slots have no light.
  ``n_neighbours`` counts the used slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from simlens.constants import NO_LIGHT_MAG, NO_LIGHT_THRESHOLD

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "CRITERIA",
    "HEAD_COLUMNS",
    "NEIGHBOUR_PREFIXES",
    "N_NEIGHBOUR_SLOTS",
    "absent_columns",
    "empty_components",
    "extra_columns",
    "extra_mag_components",
    "flux_from_mag",
    "has_light",
    "required_columns",
]


def flux_from_mag(mag: float, zero_point: float) -> float:
    """Flux in counts of an AB magnitude at ``zero_point``; 0 for no light (NaN, or >= 50)."""
    if not mag < NO_LIGHT_THRESHOLD:  # NaN compares False
        return 0.0
    return float(10.0 ** (-0.4 * (mag - zero_point)))


def has_light(mag: Any) -> Any:
    """True where a magnitude (scalar or array) means light: finite and < 50."""
    m = np.asarray(mag, dtype=float)
    return np.isfinite(m) & (m < NO_LIGHT_THRESHOLD)


#: Truth columns of LensPop's four detectability criteria (booleans), in the order of
#: :mod:`simlens.population.detectability`.
CRITERIA = ("pass_snr", "pass_magnification", "pass_arcs_resolved", "pass_theta_E_resolved")

#: The first columns of every truth table, in this order.
HEAD_COLUMNS = ("label", "kind", "seed")

N_NEIGHBOUR_SLOTS = 8
NEIGHBOUR_PREFIXES = tuple(f"nb{k}" for k in range(N_NEIGHBOUR_SLOTS))

# column -> (absent value, dtype); magnitudes are added per band below
_SCALARS: dict[str, tuple[Any, str]] = {
    "gamma_slope": (2.0, "float64"),
    "gamma_ext": (0.0, "float64"),
    "psi_ext": (0.0, "float64"),
    "n_knots_source": (0, "int64"),
    "knot_fraction_source": (0.0, "float64"),
    "knot_sigma_source": (0.05, "float64"),
    "seed_source": (0, "int64"),
    "R_sersic_disk": (1.0, "float64"),
    "e1_disk": (0.0, "float64"),
    "e2_disk": (0.0, "float64"),
    "center_x_disk": (0.0, "float64"),
    "center_y_disk": (0.0, "float64"),
    "n_arms_disk": (0, "int64"),
    "pitch_disk": (20.0, "float64"),
    "phase_disk": (0.0, "float64"),
    "arm_fraction_disk": (0.0, "float64"),
    "n_knots_disk": (0, "int64"),
    "knot_fraction_disk": (0.0, "float64"),
    "seed_disk": (0, "int64"),
    "R_sersic_companion": (1.0, "float64"),
    "n_sersic_companion": (1.0, "float64"),
    "e1_companion": (0.0, "float64"),
    "e2_companion": (0.0, "float64"),
    "center_x_companion": (0.0, "float64"),
    "center_y_companion": (0.0, "float64"),
    "center_x_arc": (0.0, "float64"),
    "center_y_arc": (0.0, "float64"),
    "radius_arc": (1.0, "float64"),
    "angle_arc": (0.0, "float64"),
    "length_arc": (1.0, "float64"),
    "width_arc": (0.1, "float64"),
    "e1_arc": (0.0, "float64"),
    "e2_arc": (0.0, "float64"),
    "n_neighbours": (0, "int64"),
}
for _p in NEIGHBOUR_PREFIXES:
    _SCALARS.update(
        {
            f"center_x_{_p}": (0.0, "float64"),
            f"center_y_{_p}": (0.0, "float64"),
            f"R_sersic_{_p}": (0.0, "float64"),
            f"n_sersic_{_p}": (1.0, "float64"),
            f"e1_{_p}": (0.0, "float64"),
            f"e2_{_p}": (0.0, "float64"),
        }
    )


def extra_mag_components() -> tuple[str, ...]:
    """Components with per-band magnitudes ``mag_<component>_<band>`` beyond lens/source/star."""
    return ("disk", "companion", "arc", *NEIGHBOUR_PREFIXES)


def extra_columns(bands: Sequence[str]) -> list[str]:
    """Every column this module adds to the core schema, in table order."""
    cols = list(_SCALARS)
    for c in extra_mag_components():
        cols += [f"mag_{c}_{b}" for b in bands]
    return cols


def absent_columns(m: int, bands: Sequence[str]) -> dict[str, Any]:
    """The added columns for ``m`` rows, every component absent (no light, no knots)."""
    out: dict[str, Any] = {k: np.full(m, v, dtype=dt) for k, (v, dt) in _SCALARS.items()}
    for c in extra_mag_components():
        for b in bands:
            out[f"mag_{c}_{b}"] = np.full(m, NO_LIGHT_MAG)
    return out


def _core_absent(m: int, bands: Sequence[str]) -> dict[str, Any]:
    """The core columns (lens, source, star, lensing truth) of ``m`` rows, every one absent."""
    z = np.zeros(m)
    cols: dict[str, Any] = {
        "sigma_v": z.copy(),
        "z_lens": z.copy(),
        "z_source": z.copy(),
        "theta_E": z.copy(),
        "e1_mass": z.copy(),
        "e2_mass": z.copy(),
        "center_x_mass": z.copy(),
        "center_y_mass": z.copy(),
        "R_sersic_lens_light": np.ones(m),
        "n_sersic_lens_light": np.full(m, 4.0),
        "e1_lens_light": z.copy(),
        "e2_lens_light": z.copy(),
        "center_x_lens_light": z.copy(),
        "center_y_lens_light": z.copy(),
        "R_sersic_source": np.full(m, 0.1),
        "n_sersic_source": np.ones(m),
        "e1_source": z.copy(),
        "e2_source": z.copy(),
        "center_x_source": z.copy(),
        "center_y_source": z.copy(),
        "center_x_star": z.copy(),
        "center_y_star": z.copy(),
        "magnification": np.ones(m),
        "snr_source": z.copy(),
        "snr_band": np.array([bands[0]] * m, dtype=object),
        "fwhm_detection": z.copy(),
        **{c: np.zeros(m, dtype=bool) for c in CRITERIA},
        "resolved": np.zeros(m, dtype=bool),
        "detectable": np.zeros(m, dtype=bool),
    }
    for b in bands:
        cols[f"mag_lens_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_source_unlensed_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_source_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_star_{b}"] = np.full(m, NO_LIGHT_MAG)
    return cols


def empty_components(m: int, bands: Sequence[str]) -> dict[str, Any]:
    """Every component column of ``m`` rows set to "absent", so all kinds share one schema."""
    cols = _core_absent(m, bands)
    cols.update(absent_columns(m, bands))
    return cols


# the core columns the renderer reads (besides the per-band ones of required_columns)
_RENDER_CORE = (
    "seed",
    "theta_E",
    "e1_mass",
    "e2_mass",
    "center_x_mass",
    "center_y_mass",
    "R_sersic_lens_light",
    "n_sersic_lens_light",
    "e1_lens_light",
    "e2_lens_light",
    "center_x_lens_light",
    "center_y_lens_light",
    "R_sersic_source",
    "n_sersic_source",
    "e1_source",
    "e2_source",
    "center_x_source",
    "center_y_source",
    "center_x_star",
    "center_y_star",
)


def required_columns(bands: Sequence[str]) -> list[str]:
    """Truth columns that :func:`simlens.render.stamps.render_rows` reads."""
    cols = list(_RENDER_CORE)
    for b in bands:
        cols += [f"psf_fwhm_{b}", f"mag_lens_{b}", f"mag_source_unlensed_{b}", f"mag_star_{b}"]
    return cols + extra_columns(bands)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a truth table as dicts keyed by column name (``to_dict("records")``)."""
    # pandas types the keys as Hashable; truth-table columns are always strings.
    return cast("list[dict[str, Any]]", table.to_dict("records"))


def row_dict(row: pd.Series) -> dict[str, Any]:
    """One truth-table row as a dict keyed by column name."""
    return cast("dict[str, Any]", row.to_dict())
