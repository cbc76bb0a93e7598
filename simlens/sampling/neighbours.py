"""Interloping field galaxies and stars ("neighbours") at the sky density of a DES coadd.

Every image, lens or not, can carry neighbours (on by default: ``neighbours=True`` on the
samplers and :class:`simlens.Simulator`). Per image the numbers of galaxies and of stars are
Poisson with means ``density x area``, the area being the stamp minus a disk of radius
``neighbours.exclusion_radius`` around its centre (where the catalogued object sits):

* galaxies with ``mag_r_min < r < mag_r_max`` from counts ``N(<r) = n_ref 10**(slope (r -
  m_ref))`` (``catalogs/simulation.toml [field_counts]``): 2.4 per 100x100 DES stamp;
* stars with ``16 < r < 23.5`` at ``star_density``: 0.2 per stamp.

Galaxy redshifts follow ``p(z | r) ~ z^2 exp(-z / z0(r))``; a fraction ``red_fraction`` is
passive (de Vaucouleurs, ``n = 4``), the rest star-forming disks (``n = 1``), with colours from
those SED templates at their redshift; half-light radii from the field size-magnitude relation;
axis ratios as the lensed sources'. Stars take colours on the stellar locus. Positions are
uniform over the stamp outside the exclusion disk.

Schema: :data:`simlens.schema.N_NEIGHBOUR_SLOTS` = 8 slots (``nb0`` .. ``nb7``) hold the
brightest (in r) of an image's neighbours, brightest first; ``n_neighbours`` is the number used
(Poisson(2.6) exceeds 8 in 0.3% of 100x100 stamps; larger stamps keep the 8 brightest). Draws
come from their own block stream (``SeedSequence(seed, spawn_key=(block, 0, NEIGHBOUR_STREAM +
k))``, ``k`` the kind's stream, :mod:`simlens.streams`, so lenses and each non-lens kind of one
seed get different neighbours), so switching neighbours on or off leaves every other column
unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens.constants import ARCSEC_PER_DEG, NO_LIGHT_MAG, NO_LIGHT_THRESHOLD
from simlens.physics import sed
from simlens.population import relations
from simlens.sampling.seeding import iterate_blocks
from simlens.sampling.settings import SamplerSettings, stellar_locus
from simlens.schema import (
    N_NEIGHBOUR_SLOTS,
    NEIGHBOUR_PREFIXES,
    absent_columns,
)
from simlens.streams import NEIGHBOUR_STREAM
from simlens.survey import Survey

__all__ = [
    "count_magnitudes",
    "field_redshifts",
    "field_sizes",
    "neighbour_table",
    "sky_densities",
]

F64 = NDArray[np.float64]


def _cfg() -> Any:
    return SamplerSettings.load()


def count_magnitudes(m: int, rng: np.random.Generator, lo: float, hi: float, slope: float) -> F64:
    """``m`` magnitudes on ``[lo, hi]`` with counts ``dN/dm ~ 10**(slope m)`` (inverse CDF)."""
    a = slope * math.log(10.0)
    u = rng.random(m)
    return np.asarray(lo + np.log1p(u * np.expm1(a * (hi - lo))) / a)


def field_redshifts(mag_r: F64, rng: np.random.Generator) -> F64:
    """Redshifts from ``p(z | m) ~ z^2 exp(-z / z0)``, ``z0 = max(0.0417 m - 0.744, z0_min)``."""
    cfg = _cfg()
    z0 = np.maximum(
        cfg["field_counts.z0_slope"] * mag_r + cfg["field_counts.z0_intercept"],
        cfg["field_counts.z0_min"],
    )
    return np.asarray(np.clip(z0 * rng.gamma(3.0, 1.0, mag_r.shape), 0.01, 5.5))


def field_sizes(mag_r: F64, rng: np.random.Generator) -> F64:
    """Half-light radii (arcsec): ``log10 R = log10 size_ref + size_slope (r - 20) + N(0, s)``."""
    cfg = _cfg()
    log_r = (
        math.log10(cfg["field_counts.size_ref"])
        + cfg["field_counts.size_slope"] * (mag_r - 20.0)
        + cfg["field_counts.size_scatter"] * rng.standard_normal(mag_r.shape)
    )
    return np.asarray(np.maximum(10.0**log_r, cfg["field_counts.size_min"]))


def sky_densities(npix: int, pixel_scale: float) -> tuple[float, float]:
    """Mean numbers of neighbour galaxies and stars per stamp (outside the exclusion disk)."""
    cfg = _cfg()
    half = 0.5 * npix * pixel_scale
    r_ex = cfg["neighbours.exclusion_radius"]
    area = (4.0 * half**2 - _disk_in_square(r_ex, half)) / ARCSEC_PER_DEG**2  # deg^2
    s, nref, mref = (cfg[f"field_counts.{k}"] for k in ("slope", "n_ref", "m_ref"))
    lo, hi = cfg["neighbours.mag_r_min"], cfg["neighbours.mag_r_max"]
    n_gal = nref * (10.0 ** (s * (hi - mref)) - 10.0 ** (s * (lo - mref)))
    return n_gal * area, cfg["field_counts.star_density"] * area


def _disk_in_square(r: float, half: float) -> float:
    """Area of a disk of radius ``r`` centred in a square of half-side ``half``: the exclusion
    disk can overflow a small stamp (npix < 16 at DES scale), where pi r^2 exceeds the stamp."""
    if r <= half:
        return math.pi * r**2
    if r >= math.sqrt(2.0) * half:
        return 4.0 * half**2
    # Disk minus the four circular segments that stick out of the square's sides.
    segment = r**2 * math.acos(half / r) - half * math.sqrt(r**2 - half**2)
    return math.pi * r**2 - 4.0 * segment


def _positions(k: int, rng: np.random.Generator, half: float, r_ex: float) -> F64:
    """``k`` positions uniform in the square ``[-half, half]^2`` outside radius ``r_ex``."""
    out = np.empty((k, 2))
    have = 0
    while have < k:
        p = rng.uniform(-half, half, (2 * (k - have) + 4, 2))
        p = p[np.hypot(p[:, 0], p[:, 1]) >= r_ex][: k - have]
        out[have : have + len(p)] = p
        have += len(p)
    return out


def _is_neighbour_column(name: str) -> bool:
    return name == "n_neighbours" or any(
        name.endswith(f"_{p}") or name.startswith(f"mag_{p}_") for p in NEIGHBOUR_PREFIXES
    )


def _block(
    m: int, rng: np.random.Generator, bands: tuple[str, ...], npix: int, ps: float
) -> pd.DataFrame:
    cfg = _cfg()
    cols = {k: v for k, v in absent_columns(m, bands).items() if _is_neighbour_column(k)}
    mu_gal, mu_star = sky_densities(npix, ps)
    n_gal = rng.poisson(mu_gal, m)
    n_star = rng.poisson(mu_star, m)
    half = 0.5 * npix * ps
    r_ex = cfg["neighbours.exclusion_radius"]
    locus = stellar_locus()
    order = np.argsort(locus[:, 0])
    for i in range(m):
        g, st = int(n_gal[i]), int(n_star[i])
        k = g + st
        if k == 0:
            continue
        pos = _positions(k, rng, half, r_ex)
        mag_r = np.concatenate(
            [
                count_magnitudes(
                    g,
                    rng,
                    cfg["neighbours.mag_r_min"],
                    cfg["neighbours.mag_r_max"],
                    cfg["field_counts.slope"],
                ),
                count_magnitudes(
                    st, rng, cfg["star.mag_r_min"], cfg["star.mag_r_max"], cfg["star.count_slope"]
                ),
            ]
        )
        z = field_redshifts(mag_r[:g], rng)
        red = rng.random(g) < cfg["field_counts.red_fraction"]
        size = field_sizes(mag_r[:g], rng)
        q = np.asarray(relations.source_axis_ratio(g, rng), dtype=float)
        phi = rng.uniform(0.0, np.pi, g)
        e1, e2 = relations.ellipticity_components(q, phi)
        col = np.where(
            red[:, None],
            np.asarray(sed.colours("passive", z), dtype=float),
            np.asarray(sed.colours("star-forming", z), dtype=float),
        )
        gr = rng.uniform(locus[0, 0], locus[-1, 0], st)
        ri = np.interp(gr, locus[order, 0], locus[order, 1])
        iz = np.interp(gr, locus[order, 0], locus[order, 2])
        star_col = np.stack([gr, np.zeros(st), -ri, -ri - iz], axis=1)
        mags = mag_r[:, None] + np.concatenate([col, star_col])
        is_gal = np.arange(k) < g
        keep = np.argsort(mag_r, kind="stable")[:N_NEIGHBOUR_SLOTS]
        cols["n_neighbours"][i] = len(keep)
        for slot, j in enumerate(keep):
            p = NEIGHBOUR_PREFIXES[slot]
            cols[f"center_x_{p}"][i], cols[f"center_y_{p}"][i] = pos[j]
            for jb, b in enumerate(sed.BANDS):
                if b in bands:
                    mj = float(mags[j, jb])  # an SED with no flux in a band reads ~99: none
                    cols[f"mag_{p}_{b}"][i] = mj if mj < NO_LIGHT_THRESHOLD else NO_LIGHT_MAG
            if is_gal[j]:
                cols[f"R_sersic_{p}"][i] = size[j]
                cols[f"n_sersic_{p}"][i] = 4.0 if red[j] else 1.0
                cols[f"e1_{p}"][i], cols[f"e2_{p}"][i] = e1[j], e2[j]
            else:
                cols[f"R_sersic_{p}"][i] = 0.0  # a star: point source
    return pd.DataFrame(cols)


def neighbour_table(
    n: int, *, survey: Survey, npix: int, entropy: int, start: int = 0, kind_stream: int = 0
) -> pd.DataFrame:
    """Neighbour columns (``*_nb<k>``, ``n_neighbours``) of rows ``start .. start + n - 1``."""

    bands = survey.band_names
    ps = survey.pixel_scale
    return iterate_blocks(
        n,
        start,
        entropy,
        NEIGHBOUR_STREAM + kind_stream,
        lambda m, rng, rows: _block(m, rng, bands, npix, ps),
    )
