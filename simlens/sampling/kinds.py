"""Field non-lens kinds: spirals, mergers, rings, ellipticals with blue arc-like companions, and
the ``"field"`` mixture. Numbers from ``catalogs/simulation.toml`` (``[field_counts]``,
``[field]``, ``[spiral]``, ``[merger]``, ``[ring]``, ``[blue_companion]``).

* ``"spiral"``: r magnitude from galaxy counts on ``[spiral.mag_r_min, spiral.mag_r_max]``,
  redshift from ``p(z | r)``; a de Vaucouleurs bulge (``lens_light`` columns, passive colours,
  bulge-to-total 0.05-0.5) and an exponential disk (``disk`` columns, star-forming colours) with
  2-4 logarithmic arms (pitch 10-35 deg, 20-50% of the disk light) and 5-30 clumps (5-20%),
  inclination uniform in ``cos i`` (axis ratio >= 0.25). See :mod:`simlens.physics.morphology`.
* ``"merger"``: two galaxies at one redshift (``lens_light`` and ``companion``), 0.8-4 arcsec
  apart, flux ratio 1-4, each passive (de Vaucouleurs) with probability ``red_fraction`` else
  star-forming (exponential), plus a tidal tail (``arc`` columns, 5-15% of the light) curving
  around the pair.
* ``"ring"``: a lens-like elliptical (exactly the ``"elliptical"`` kind) with a star-forming
  ring (``arc`` with ``length_arc = 2 pi``) at 1-3 half-light radii (>= 1.2 arcsec), inclined
  (axis ratio 0.5-1), 0.3-2 mag fainter in r.
* ``"blue_companion"``: a lens-like elliptical with a tangentially elongated blue arc-like
  companion (star-forming colours at z 0.5-2) 1.2-3.5 arcsec away, 0.5-3 mag fainter in r.
* ``"field"``: each row is one of the kinds above or a star, with the fractions of
  ``[field]``; every galaxy's r magnitude follows the galaxy counts on
  ``[field.mag_r_min, field.mag_r_max]`` (ellipticals, rings and blue companions: the
  lens-like elliptical conditioned on that magnitude), stars their own counts. Each row's
  ``kind`` names what it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens.physics import sed
from simlens.population import relations
from simlens.sampling.basic_kinds import elliptical_columns, star_columns
from simlens.sampling.neighbours import count_magnitudes, field_redshifts, field_sizes

__all__ = ["FIELD_KINDS", "draw_kind", "field_fractions"]

F64 = NDArray[np.float64]
FIELD_KINDS = ("spiral", "elliptical", "star", "merger", "blue_companion", "ring")


def field_fractions(cfg: Any) -> dict[str, float]:
    """Fraction of each kind in the ``"field"`` mixture (sums to 1)."""
    fr = {k: cfg[f"field.frac_{k}"] for k in FIELD_KINDS}
    total = sum(fr.values())
    return {k: v / total for k, v in fr.items()}


def _mags(template: str, z: F64, mag_r: F64) -> F64:
    return np.asarray(mag_r[:, None] + np.asarray(sed.colours(template, z), dtype=float))


def _set_mags(df: pd.DataFrame, comp: str, mags: F64, bands: tuple[str, ...]) -> None:
    for b in bands:
        df[f"mag_{comp}_{b}"] = mags[:, sed.BANDS.index(b)]


def _shape(q: F64, rng: np.random.Generator) -> tuple[F64, F64]:
    e1, e2 = relations.ellipticity_components(q, rng.uniform(0.0, np.pi, q.size))
    return np.asarray(e1, dtype=float), np.asarray(e2, dtype=float)


def _flux_split(mag: F64, frac: F64) -> F64:
    """Magnitude of the part holding ``frac`` of the light of a total ``mag``."""
    return np.asarray(mag - 2.5 * np.log10(frac))


def _spiral(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cfg: Any,
    bands: tuple[str, ...],
    mag_r: F64 | None,
) -> None:
    if mag_r is None:
        mag_r = count_magnitudes(
            m, rng, cfg["spiral.mag_r_min"], cfg["spiral.mag_r_max"], cfg["field_counts.slope"]
        )
    z = field_redshifts(mag_r, rng)
    bt = rng.uniform(cfg["spiral.bulge_fraction_min"], cfg["spiral.bulge_fraction_max"], m)
    r_disk = field_sizes(mag_r, rng) * cfg["spiral.disk_size_boost"]
    q_disk = np.maximum(rng.random(m), cfg["spiral.q_min"])  # uniform in cos(inclination)
    phi = rng.uniform(0.0, np.pi, m)
    e1d, e2d = relations.ellipticity_components(q_disk, phi)
    q_b = rng.uniform(0.7, 1.0, m)
    e1b, e2b = relations.ellipticity_components(q_b, phi)
    cs = cfg["lens.center_scatter"]
    cx, cy = cs * rng.standard_normal(m), cs * rng.standard_normal(m)
    df["z_lens"] = z
    df["R_sersic_lens_light"] = np.maximum(cfg["spiral.bulge_size_ratio"] * r_disk, 0.05)
    df["n_sersic_lens_light"] = 4.0
    df["e1_lens_light"], df["e2_lens_light"] = e1b, e2b
    df["center_x_lens_light"], df["center_y_lens_light"] = cx, cy
    _set_mags(df, "lens", _mags("passive", z, _flux_split(mag_r, bt)), bands)
    df["R_sersic_disk"] = r_disk
    df["e1_disk"], df["e2_disk"] = e1d, e2d
    df["center_x_disk"], df["center_y_disk"] = cx, cy
    df["n_arms_disk"] = rng.integers(
        int(cfg["spiral.arms_min"]), int(cfg["spiral.arms_max"]) + 1, m
    )
    df["pitch_disk"] = rng.uniform(cfg["spiral.pitch_min"], cfg["spiral.pitch_max"], m)
    df["phase_disk"] = rng.uniform(0.0, 2.0 * np.pi, m)
    df["arm_fraction_disk"] = rng.uniform(
        cfg["spiral.arm_fraction_min"], cfg["spiral.arm_fraction_max"], m
    )
    df["n_knots_disk"] = rng.integers(
        int(cfg["spiral.knots_min"]), int(cfg["spiral.knots_max"]) + 1, m
    )
    df["knot_fraction_disk"] = rng.uniform(
        cfg["spiral.knot_fraction_min"], cfg["spiral.knot_fraction_max"], m
    )
    df["seed_disk"] = rng.integers(1, 2**31 - 1, m)
    _set_mags(df, "disk", _mags("star-forming", z, _flux_split(mag_r, 1.0 - bt)), bands)


def _merger(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cfg: Any,
    bands: tuple[str, ...],
    mag_r: F64 | None,
) -> None:
    if mag_r is None:
        mag_r = count_magnitudes(
            m, rng, cfg["field.mag_r_min"], cfg["field.mag_r_max"], cfg["field_counts.slope"]
        )
    z = field_redshifts(mag_r, rng)
    ratio = rng.uniform(1.0, cfg["merger.flux_ratio_max"], m)
    tail = rng.uniform(cfg["merger.tail_fraction_min"], cfg["merger.tail_fraction_max"], m)
    f1 = (1.0 - tail) * ratio / (1.0 + ratio)
    f2 = (1.0 - tail) / (1.0 + ratio)
    sep = rng.uniform(cfg["merger.separation_min"], cfg["merger.separation_max"], m)
    ang = rng.uniform(0.0, 2.0 * np.pi, m)
    cs = cfg["lens.center_scatter"]
    cx, cy = cs * rng.standard_normal(m), cs * rng.standard_normal(m)
    for comp, frac, x, y in (
        ("lens_light", f1, cx, cy),
        ("companion", f2, cx + sep * np.cos(ang), cy + sep * np.sin(ang)),
    ):
        red = rng.random(m) < cfg["field_counts.red_fraction"]
        mg = _flux_split(mag_r, frac)
        mags = np.where(red[:, None], _mags("passive", z, mg), _mags("star-forming", z, mg))
        _set_mags(df, "lens" if comp == "lens_light" else comp, mags, bands)
        df[f"R_sersic_{comp}"] = field_sizes(mg, rng)
        df[f"n_sersic_{comp}"] = np.where(red, 4.0, 1.0)
        df[f"e1_{comp}"], df[f"e2_{comp}"] = _shape(
            np.asarray(relations.source_axis_ratio(m, rng), dtype=float), rng
        )
        df[f"center_x_{comp}"], df[f"center_y_{comp}"] = x, y
    # tidal tail: an arc around the pair's midpoint, sweeping away from the companion
    df["z_lens"] = z
    df["center_x_arc"] = cx + 0.5 * sep * np.cos(ang)
    df["center_y_arc"] = cy + 0.5 * sep * np.sin(ang)
    df["radius_arc"] = sep * rng.uniform(0.8, 1.5, m)
    df["angle_arc"] = ang + rng.choice([-1.0, 1.0], m) * rng.uniform(0.5 * np.pi, np.pi, m)
    df["length_arc"] = rng.uniform(1.0, 2.5, m)
    df["width_arc"] = rng.uniform(0.2, 0.5, m)
    _set_mags(df, "arc", _mags("star-forming", z, _flux_split(mag_r, tail)), bands)


def _elliptical(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: Any,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    elliptical_columns(df, m, rng, cosmo, cfg, ml, bands)


def _ring(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: Any,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    _elliptical(df, m, rng, cosmo, cfg, ml, bands)
    reff = df["R_sersic_lens_light"].to_numpy(dtype=float)
    rad = np.maximum(
        rng.uniform(cfg["ring.radius_min"], cfg["ring.radius_max"], m) * reff,
        cfg["ring.radius_floor"],
    )
    df["center_x_arc"] = df["center_x_lens_light"].to_numpy()
    df["center_y_arc"] = df["center_y_lens_light"].to_numpy()
    df["radius_arc"] = rad
    df["length_arc"] = 2.0 * np.pi
    df["width_arc"] = rng.uniform(cfg["ring.width_min"], cfg["ring.width_max"], m)
    df["e1_arc"], df["e2_arc"] = _shape(rng.uniform(0.5, 1.0, m), rng)
    dmag = rng.uniform(cfg["ring.dmag_min"], cfg["ring.dmag_max"], m)
    z = df["z_lens"].to_numpy(dtype=float)
    _set_mags(df, "arc", _mags("star-forming", z, df["mag_lens_r"].to_numpy() + dmag), bands)


def _blue_companion(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: Any,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    _elliptical(df, m, rng, cosmo, cfg, ml, bands)
    c = "blue_companion"
    df["center_x_arc"] = df["center_x_lens_light"].to_numpy()
    df["center_y_arc"] = df["center_y_lens_light"].to_numpy()
    df["radius_arc"] = rng.uniform(cfg[f"{c}.radius_min"], cfg[f"{c}.radius_max"], m)
    df["angle_arc"] = rng.uniform(0.0, 2.0 * np.pi, m)
    df["length_arc"] = rng.uniform(cfg[f"{c}.length_min"], cfg[f"{c}.length_max"], m)
    df["width_arc"] = rng.uniform(cfg[f"{c}.width_min"], cfg[f"{c}.width_max"], m)
    z_c = rng.uniform(cfg[f"{c}.z_min"], cfg[f"{c}.z_max"], m)
    dmag = rng.uniform(cfg[f"{c}.dmag_min"], cfg[f"{c}.dmag_max"], m)
    _set_mags(df, "arc", _mags("star-forming", z_c, df["mag_lens_r"].to_numpy() + dmag), bands)


def draw_kind(
    kind: str,
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: Any,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> pd.DataFrame:
    """Fill the all-absent table ``df`` of ``m`` rows with objects of ``kind`` (not PSF)."""
    if kind == "spiral":
        _spiral(df, m, rng, cfg, bands, None)
    elif kind == "merger":
        _merger(df, m, rng, cfg, bands, None)
    elif kind == "ring":
        _ring(df, m, rng, cosmo, cfg, ml, bands)
    elif kind == "blue_companion":
        _blue_companion(df, m, rng, cosmo, cfg, ml, bands)
    elif kind == "field":
        return _field(df, m, rng, cosmo, cfg, bands)
    else:
        raise AssertionError(kind)
    return df


def _field(
    df: pd.DataFrame,
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: Any,
    bands: tuple[str, ...],
) -> pd.DataFrame:
    fr = field_fractions(cfg)
    edges = np.cumsum([fr[k] for k in FIELD_KINDS])
    which = np.minimum(np.searchsorted(edges, rng.random(m), side="right"), len(FIELD_KINDS) - 1)
    # one child generator per kind, made in a fixed order: a kind's rows never shift another's
    children = [np.random.default_rng(int(s)) for s in rng.integers(0, 2**63, len(FIELD_KINDS))]
    df["kind"] = np.array(FIELD_KINDS, dtype=object)[which]
    cols = {c: df[c].to_numpy(copy=True) for c in df.columns}
    lo, hi, slope = cfg["field.mag_r_min"], cfg["field.mag_r_max"], cfg["field_counts.slope"]
    for j, kind in enumerate(FIELD_KINDS):
        idx = np.flatnonzero(which == j)
        if idx.size == 0:
            continue
        k, crng = idx.size, children[j]
        sub = df.iloc[idx].copy().reset_index(drop=True)
        mag_r = count_magnitudes(k, crng, lo, hi, slope)
        if kind == "star":
            star_columns(sub, k, crng, cfg, bands)
        elif kind == "spiral":
            _spiral(sub, k, crng, cfg, bands, mag_r)
        elif kind == "merger":
            _merger(sub, k, crng, cfg, bands, mag_r)
        elif kind == "elliptical":
            _elliptical(sub, k, crng, cosmo, cfg, mag_r, bands)
        elif kind == "ring":
            _ring(sub, k, crng, cosmo, cfg, mag_r, bands)
        else:
            _blue_companion(sub, k, crng, cosmo, cfg, mag_r, bands)
        for c in sub.columns:
            if not pd.api.types.is_numeric_dtype(sub[c]):  # kind, snr_band: not drawn here
                continue
            col = cols[c]
            if col.dtype != sub[c].dtype:
                col = cols[c] = col.astype(np.result_type(col.dtype, sub[c].to_numpy().dtype))
            col[idx] = sub[c].to_numpy()
    return pd.DataFrame(cols)
