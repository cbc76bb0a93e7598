"""The two simplest non-lens kinds: lens-like ellipticals (deflectors without a source) and stars.

:mod:`simlens.sampling.nonlenses` and the composite kinds of :mod:`simlens.sampling.kinds` build
on them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens.sampling.lens_systems import draw_lens_systems, pick_nearest
from simlens.sampling.settings import SamplerSettings, stellar_locus

__all__ = ["elliptical_columns", "star_columns"]

F64 = NDArray[np.float64]


def elliptical_columns(
    df: pd.DataFrame,
    m: int,
    brng: np.random.Generator,
    cosmology: Cosmology,
    cfg: SamplerSettings,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    """Fill ``df`` (in place) with lens-like ellipticals: deflectors without source or mass."""
    # no source, so no per-source SED draw (a fixed template consumes no random numbers)
    sf = "star-forming"
    if ml is None:
        systems = draw_lens_systems(m, brng, cosmology, cfg, None, source_colour=sf)
    else:
        n_cand = int(cfg["conditioning.candidates"])
        cand = draw_lens_systems(m * n_cand, brng, cosmology, cfg, None, source_colour=sf)
        win = cfg["conditioning.mag_window"]
        u = brng.random(m)
        pick = np.array(
            [
                i * n_cand
                + pick_nearest(
                    cand["mag_lens_r"][i * n_cand : (i + 1) * n_cand], float(ml[i]), win, u[i]
                )
                for i in range(m)
            ]
        )
        systems = {k: v[pick] for k, v in cand.items()}
        shift = np.where(np.isnan(ml), 0.0, ml - systems["mag_lens_r"])
        for b in bands:
            systems[f"mag_lens_{b}"] = systems[f"mag_lens_{b}"] + shift
    keep = [
        k
        for k in systems
        if not (
            k.endswith("_source")
            or k.startswith("mag_source")
            or k.endswith("_mass")
            or k in ("theta_E", "z_source")
        )
    ]
    for k in keep:
        df[k] = systems[k]


def star_columns(
    df: pd.DataFrame,
    m: int,
    brng: np.random.Generator,
    cfg: SamplerSettings,
    bands: tuple[str, ...],
) -> None:
    """Fill ``df`` (in place) with stars: high-latitude counts, stellar-locus colours."""
    smin, smax = cfg["star.mag_r_min"], cfg["star.mag_r_max"]
    a = cfg["star.count_slope"] * math.log(10.0)
    # counts N(m) ∝ 10**(slope m): inverse CDF of an exponential on [smin, smax]
    u = brng.random(m)
    mag_r = smin + np.log1p(u * np.expm1(a * (smax - smin))) / a
    locus = stellar_locus()
    gr = brng.uniform(locus[0, 0], locus[-1, 0], m)
    order = np.argsort(locus[:, 0])
    ri = np.interp(gr, locus[order, 0], locus[order, 1])
    iz = np.interp(gr, locus[order, 0], locus[order, 2])
    mags = {"g": mag_r + gr, "r": mag_r, "i": mag_r - ri, "z": mag_r - ri - iz}
    for b in bands:
        df[f"mag_star_{b}"] = mags[b]
    cs = cfg["star.center_scatter"]
    df["center_x_star"] = cs * brng.standard_normal(m)
    df["center_y_star"] = cs * brng.standard_normal(m)
