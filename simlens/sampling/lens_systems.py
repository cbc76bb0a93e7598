"""LensPop lens systems: their draws from the population, and their derived lensing truth.

Draws: ``sigma_v``, ``z_lens``, ``z_source`` and the unlensed source magnitude, either weighted
by the lensing cross-section or conditioned on ``theta_E`` (see the :mod:`simlens.sampling.truth`
docstring), completed into full systems (lens light, mass, source;
:mod:`simlens.population.relations`,
:mod:`simlens.physics.sed`, or LensPop's own sources, :mod:`simlens.population.lenspop_sources`),
and the
nearest-magnitude pick used when a magnitude is fixed. Derived truth: the extended-source
magnification, best-band source S/N and LensPop detectability of a system (:func:`lensing_truth`),
and ``may_be_detectable``, the cheap necessary cut that skips hopeless
candidates. :mod:`simlens.sampling.truth` re-exports the names the samplers' callers use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens.constants import ARCSEC_PER_RAD, SPEED_OF_LIGHT_KM_S
from simlens.physics import sed
from simlens.physics.sources import source_grid
from simlens.population import lenspop_sources as plp
from simlens.population import relations
from simlens.population.detectability import lenspop_criteria, observing_rule
from simlens.sampling.settings import SamplerSettings
from simlens.survey import Survey

__all__ = [
    "SOURCE_BEHIND_DZ",
    "approx_magnification",
    "draw_lens_systems",
    "lensing_truth",
    "may_be_detectable",
    "pick_nearest",
    "row_grid",
]

F64 = NDArray[np.float64]

SOURCE_BEHIND_DZ = 1e-3
"""A source lies behind its deflector when ``z_source > z_lens + SOURCE_BEHIND_DZ``."""


# -------------------------------------------------------------------------------------------
# population draws
# -------------------------------------------------------------------------------------------


def _draw_sources(k: int, rng: np.random.Generator, source_population: str) -> dict[str, F64]:
    """``k`` unlensed sources: ``mag_i``, ``z_source`` (and, for ``"lenspop"``, the catalogue's
    ``mag_{g,r,z}`` and ``abs_mag_r``)."""
    if source_population == plp.LENSPOP:
        return plp.sample_lenspop_sources(k, rng)
    s = relations.sample_sources(k, rng)
    return {"mag_i": np.asarray(s["mag_i"], dtype=float), "z_source": s["z_source"]}


def _draw_systems_free(
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: SamplerSettings,
    source_population: str = plp.DEEP_FIELD,
) -> dict[str, F64]:
    """``m`` (sigma, z_l, z_s, source mag) drawn with the lensing cross-section weight.

    The cross-section ``pi theta_E^2`` is proportional to ``sigma^4 (D_ls / D_s)^2``: sigma is
    drawn from the VDF times ``sigma^4`` directly, and each (z_l, z_s) pair is accepted with
    probability ``(D_ls / D_s)^2 <= 1``.
    """
    smax = cfg["lens.sigma_v_max"]
    got: dict[str, list[F64]] = {"sigma_v": [], "z_lens": [], "theta_E": []}
    have = 0
    while have < m:
        k = max(4 * (m - have), 256)
        sig = relations.sample_velocity_dispersion(
            k, rng, sigma_min=relations.SIGMA_V_MIN_KM_S, sigma_max=smax, weight_power=4.0
        )
        zl = relations.sample_lens_redshift(k, rng, cosmo, z_max=cfg["lens.z_max"])
        src = _draw_sources(k, rng, source_population)
        zs = np.asarray(src["z_source"], dtype=float)
        behind = zs > zl + SOURCE_BEHIND_DZ
        th = np.where(
            behind, relations.einstein_radius(sig, zl, np.where(behind, zs, zl + 1.0), cosmo), 0.0
        )
        # D_ls / D_s
        ratio = th / (4.0 * math.pi * (sig / SPEED_OF_LIGHT_KM_S) ** 2 * ARCSEC_PER_RAD)
        keep = behind & (rng.random(k) < ratio**2)
        for key, arr in (("sigma_v", sig), ("z_lens", zl), ("theta_E", th), *src.items()):
            got.setdefault(key, []).append(np.asarray(arr, dtype=float)[keep])
        have += int(keep.sum())
    return {k: np.concatenate(v)[:m] for k, v in got.items()}


def _draw_systems_given_theta(
    theta: F64,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: SamplerSettings,
    source_population: str = plp.DEEP_FIELD,
) -> dict[str, F64]:
    """Redshifts and sigma_v conditioned on each ``theta`` (see the :mod:`simlens.sampling.truth`
    docstring)."""
    m = theta.size
    K = int(cfg["conditioning.theta_E_candidates"])
    zl = relations.sample_lens_redshift(m * K, rng, cosmo, z_max=cfg["lens.z_max"]).reshape(m, K)
    src = {
        k: np.asarray(v, dtype=float).reshape(m, K)
        for k, v in _draw_sources(m * K, rng, source_population).items()
    }
    zs = src["z_source"]
    ok = zs > zl + SOURCE_BEHIND_DZ
    th = np.broadcast_to(theta[:, None], (m, K))
    sig = np.where(
        ok, relations.sigma_from_einstein_radius(th, zl, np.where(ok, zs, zl + 1.0), cosmo), np.nan
    )
    smin, smax = relations.SIGMA_V_MIN_KM_S, cfg["lens.sigma_v_max_conditioned"]
    with np.errstate(invalid="ignore"):
        w = np.where(
            ok & (sig >= smin) & (sig <= smax),
            # unnormalised VDF (per km/s) times the Jacobian sigma: only ratios matter
            relations.vdf_dn_dsigma(np.clip(np.nan_to_num(sig, nan=smin), smin, smax))
            * np.nan_to_num(sig),
            0.0,
        )
    choice = np.empty(m, dtype=int)
    for i in range(m):
        if w[i].sum() > 0:
            p = w[i] / w[i].sum()
            choice[i] = int(rng.choice(K, p=p))
        else:
            # no pair gives an allowed sigma_v: take the pair needing the smallest sigma_v
            s = np.where(ok[i], sig[i], np.inf)
            choice[i] = int(np.argmin(s))
    r = np.arange(m)
    return {
        "sigma_v": sig[r, choice],
        "z_lens": zl[r, choice],
        "theta_E": theta.copy(),
        **{k: v[r, choice] for k, v in src.items()},
    }


def _axis_angle(q: F64, phi: F64) -> tuple[F64, F64]:
    e1, e2 = relations.ellipticity_components(q, phi)
    return np.asarray(e1, dtype=float), np.asarray(e2, dtype=float)


def _source_magnitudes(
    d: dict[str, F64], rng: np.random.Generator, source_colour: str, lenspop_src: bool
) -> F64:
    """Unlensed g, r, i, z source magnitudes ``(m, 4)`` from the drawn i magnitudes and colours.

    LensPop's catalogue sources keep their own colours; otherwise an SED per source (the
    mixture: the last draw of a system, so every draw before is as for a single template) or
    one template for all.
    """
    zs = d["z_source"]
    if lenspop_src:
        col = np.stack([d[f"mag_{b}"] - d["mag_r"] for b in "griz"], axis=1)
    elif source_colour == sed.MIXTURE:
        col = sed.colours_from_coefficients(sed.source_coefficients(zs, rng), zs)  # m_b - m_r
    else:
        col = np.asarray(sed.colours(source_colour, zs), dtype=float)
    i_idx = 2
    return np.asarray(d["mag_i"][:, None] - col[:, i_idx : i_idx + 1] + col, dtype=float)


def draw_lens_systems(
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: SamplerSettings,
    theta: F64 | None,
    *,
    source_colour: str = "mixture",
    n_sersic: F64 | None = None,
    source_population: str = plp.DEEP_FIELD,
) -> dict[str, F64]:
    """Complete lens systems (no PSF, no magnification yet), one per entry of ``theta``.

    ``source_colour`` is ``"mixture"`` (an SED drawn per source, :func:`sed.source_coefficients`)
    or one SED template for all; ``n_sersic`` the Sersic index per
    system (default: ``source.n_sersic`` of the settings, exponential). ``source_population``
    ``"lenspop"`` takes sources from LensPop's catalogue (:mod:`simlens.population.lenspop_sources`:
    its redshifts, g/r/i/z magnitudes and size law; ``source_colour`` is then unused).
    """
    plp.check_source_population(source_population)
    if theta is None:
        d = _draw_systems_free(m, rng, cosmo, cfg, source_population)
    else:
        d = _draw_systems_given_theta(theta, rng, cosmo, cfg, source_population)
    sig, zl, zs = d["sigma_v"], d["z_lens"], d["z_source"]
    # light from the sigma-luminosity relation, capped where it stops being valid (only
    # reached when a large theta_E is requested: see catalogs/simulation.toml)
    sig_light = np.minimum(sig, cfg["lens.light_sigma_max"])
    abs_r, r_eff = relations.lens_light_from_sigma(sig_light, zl, rng, cosmo)
    mags_lens = sed.apparent_magnitudes("passive", zl, abs_r, cosmo)
    q_l = np.asarray(relations.lens_axis_ratio(sig_light, rng), dtype=float)
    phi_l = rng.uniform(0.0, np.pi, m)
    q_m = np.clip(q_l + cfg["lens.mass_light_q_scatter"] * rng.standard_normal(m), 0.2, 1.0)
    phi_m = phi_l + np.deg2rad(cfg["lens.mass_light_angle_scatter"]) * rng.standard_normal(m)
    cs = cfg["lens.center_scatter"]
    cx, cy = cs * rng.standard_normal(m), cs * rng.standard_normal(m)
    # source: uniform in the disk of radius theta_E around the lens
    rr = d["theta_E"] * cfg["source.position_radius"] * np.sqrt(rng.random(m))
    ang = rng.uniform(0.0, 2 * np.pi, m)
    mag_i = d["mag_i"]
    lenspop_src = source_population == plp.LENSPOP
    if lenspop_src:
        r_src = plp.lenspop_source_size(d["abs_mag_r"], zs, rng, cosmo)
    else:
        r_src = np.asarray(relations.source_size(mag_i, zs, rng, cosmo), dtype=float)
    q_s = np.asarray(relations.source_axis_ratio(m, rng), dtype=float)
    phi_s = rng.uniform(0.0, np.pi, m)
    mag_src = _source_magnitudes(d, rng, source_colour, lenspop_src)
    e1l, e2l = _axis_angle(q_l, phi_l)
    e1m, e2m = _axis_angle(q_m, phi_m)
    e1s, e2s = _axis_angle(q_s, phi_s)
    return {
        "sigma_v": sig,
        "z_lens": zl,
        "z_source": zs,
        "theta_E": d["theta_E"],
        "e1_mass": e1m,
        "e2_mass": e2m,
        "center_x_mass": cx,
        "center_y_mass": cy,
        "R_sersic_lens_light": np.asarray(r_eff, dtype=float),
        "n_sersic_lens_light": np.full(m, cfg["lens.n_sersic"]),
        "e1_lens_light": e1l,
        "e2_lens_light": e2l,
        "center_x_lens_light": cx.copy(),
        "center_y_lens_light": cy.copy(),
        "R_sersic_source": r_src,
        "n_sersic_source": np.full(m, cfg["source.n_sersic"]) if n_sersic is None else n_sersic,
        "e1_source": e1s,
        "e2_source": e2s,
        "center_x_source": cx + rr * np.cos(ang),
        "center_y_source": cy + rr * np.sin(ang),
        **{f"mag_lens_{b}": mags_lens[:, j] for j, b in enumerate("griz")},
        **{f"mag_source_unlensed_{b}": mag_src[:, j] for j, b in enumerate("griz")},
    }


def approx_magnification(systems: dict[str, F64]) -> F64:
    """Point-source SIS magnification ``2 theta_E / beta``, softened by the source size.

    Used only to pick candidates near a requested observed source magnitude; the exact
    extended-source magnification is computed afterwards.
    """
    beta = np.hypot(
        systems["center_x_source"] - systems["center_x_mass"],
        systems["center_y_source"] - systems["center_y_mass"],
    )
    return 2.0 * systems["theta_E"] / np.maximum(beta, systems["R_sersic_source"]) + 1.0


def may_be_detectable(df: pd.DataFrame, survey: Survey) -> NDArray[np.bool_]:
    """Cheap necessary conditions for LensPop detectability, to skip hopeless candidates.

    Generous on purpose (the exact test follows): LensPop's ``2 theta_E^2 >= 4 r_s^2 + FWHM^2``
    at the *sharpest* band's PSF (the best exposure of the table for a preset with LensPop's
    seeing rule), implied by the same inequality at the best band's;
    approximate magnification above 2 (threshold 3); and, in some band, an approximate lensed
    magnitude within 0.75 mag of the depth needed for S/N 20 of a point source (the largest
    excess seen among 56 detectable systems of 6000 was 0.33 mag, magnification ratio >= 0.63).
    ``tests/simlens/test_sampling.py`` checks it rejects no detectable system.
    """
    bands = survey.band_names
    fw = df[[f"psf_fwhm_{b}" for b in bands]].to_numpy(dtype=float).min(axis=1)
    rule = observing_rule(survey)
    if rule is not None:  # LensPop's seeing rule: any exposure of its table may be kept
        fw = np.full(len(df), min(min(q) for q in rule.seeing_quantiles.values()))
    th = df["theta_E"].to_numpy(dtype=float)
    rs = df["R_sersic_source"].to_numpy(dtype=float)
    # LensPop's own inequality at the sharpest FWHM: implied by it at the best band's FWHM
    resolved = 2.0 * th**2 >= 4.0 * rs**2 + fw**2
    sysd = {
        k: df[k].to_numpy(dtype=float)
        for k in (
            "center_x_source",
            "center_x_mass",
            "center_y_source",
            "center_y_mass",
            "theta_E",
            "R_sersic_source",
        )
    }
    mu = approx_magnification(sysd)
    bright = np.zeros(len(df), dtype=bool)
    for b in bands:
        m_obs = df[f"mag_source_unlensed_{b}"].to_numpy(dtype=float) - 2.5 * np.log10(mu)
        # S/N 20 for a point source is 0.75 mag brighter than the 10-sigma depth
        bright |= m_obs < survey.depth(b) - 0.75 + 0.75
    return np.asarray(resolved & (mu > 2.0) & bright)


def pick_nearest(values: F64, target: float, window: float, u: float) -> int:
    """Index of a value within ``window`` of ``target``, chosen by the uniform deviate ``u``
    (the nearest if none is). ``u`` is drawn by the caller for every row, so the generator
    advances by the same amount whatever the values: rows stay independent of each other."""
    d = np.abs(values - target)
    ok = np.flatnonzero(d <= window)
    if ok.size:
        return int(ok[min(int(u * ok.size), ok.size - 1)])
    return int(np.argmin(d))


# -------------------------------------------------------------------------------------------
# derived truth: magnification, S/N, detectability
# -------------------------------------------------------------------------------------------


def row_grid(row: dict[str, Any], survey: Survey, npix: int, supersampling: int) -> Any:
    return source_grid(row, npix, survey.pixel_scale, supersampling)


def lensing_truth(
    row: dict[str, Any],
    survey: Survey,
    npix: int,
    cfg: SamplerSettings,
    grid: Any = None,
    *,
    supersampling: int = 3,
) -> dict[str, Any]:
    """Magnification, best-band source S/N and LensPop detectability of one lens row.

    ``magnification`` is the extended-source magnification (lensed flux / unlensed flux), from
    the same adaptive ray tracing the renderer uses. The S/N, the best band and the four
    criteria are LensPop's (:func:`simlens.population.detectability.lenspop_criteria`): S/N > 20 in
    the best
    band with the lens light in the noise, mu > 3, mu r_s > FWHM and 2 theta_E^2 >= 4 r_s^2 +
    FWHM^2 (columns ``pass_snr``, ``pass_magnification``, ``pass_arcs_resolved``,
    ``pass_theta_E_resolved``; ``resolved`` is the last two, ``detectable`` all four). ``grid``
    reuses a ray-traced source (it depends on geometry only, not on magnitudes or PSF).
    """
    if grid is None:
        grid = row_grid(row, survey, npix, supersampling)
    return lenspop_criteria(
        grid,
        row,
        survey,
        npix,
        snr_min=cfg["detectability.snr_min"],
        magnification_min=cfg["detectability.magnification_min"],
    )
