"""Draw truth tables: the LensPop-style lens population, non-lenses, and conditioning on controls.

Randomness: object ``i`` of a call with seed ``s`` is drawn from the generator of its block
``i // BLOCK`` (``SeedSequence(s, spawn_key=(block,))``), so the rows of ``n = 1000`` are a prefix
of the rows of ``n = 2000`` and a cluster can draw blocks independently (``start=``). Each row
also carries its own ``seed`` (from ``SeedSequence(s, spawn_key=(i, 1))``) that the renderer uses
for noise and nothing else.

Lenses (Collett 2015, "LensPop"):

* ``sigma_v`` from the Choi et al. (2007) velocity dispersion function, ``z_lens`` from the
  comoving volume, ``z_source`` and unlensed source magnitudes from faint-galaxy counts
  (:mod:`simlens.population`); a system is kept with probability ``(theta_E / theta_max)^2``,
  the strong-lensing cross-section, and the source centre is uniform in the disk of radius
  ``theta_E`` around the lens.
* ``theta_E`` fixed (scalar, range or array): for each object, ``theta_E_candidates`` redshift
  pairs are drawn from their priors, ``sigma_v`` is solved from ``theta_E`` for each, and one pair
  is chosen with weight ``p(sigma_v) * sigma_v`` -- the Jacobian ``d sigma / d theta_E =
  sigma / (2 theta_E)`` times the velocity dispersion function, i.e. exactly
  ``p(z_l, z_s | theta_E)`` of the cross-section-weighted population.
* ``mag_lens_r`` / ``mag_source_g`` fixed: ``candidates`` complete systems are drawn (respecting
  ``theta_E`` if fixed); one is chosen uniformly among those within ``mag_window`` of the
  requested value (the nearest if none is), and its lens light (all bands) or unlensed source
  (all bands) is shifted by the residual, so the requested magnitude is exact and the colours,
  sizes and redshifts are those of the population near that magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.fft
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from . import population as pop
from . import sed
from ._catalogs import catalog_file, load_toml
from .controls import Control, parse_control
from .errors import SimlensValueError
from .psf import FWHM_TO_SIGMA, psf_fwhm_draws
from .schema import absent_columns
from .sources import source_grid
from .survey import Survey

__all__ = ["BLOCK", "NONLENS_KINDS", "SamplerSettings", "sample_lenses", "sample_nonlenses"]

BLOCK = 64
DETECTABLE_CANDIDATES = 64  # candidates per row and round when detectable=True
DETECTABLE_ROUNDS = 40
NO_LIGHT_MAG = 99.0
NONLENS_KINDS = ("elliptical", "star", "spiral", "merger", "ring", "blue_companion", "field")
SOURCE_MODELS = ("sersic", "clumpy")
MAG_LENS_KINDS = ("elliptical", "ring", "blue_companion")
SOURCE_COLOURS = sed.TEMPLATES
_KNOT_STREAM = 1000  # side streams: adding knots or neighbours never shifts the other draws
C_KM_S = 299792.458
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0

F64 = NDArray[np.float64]


@cache
def _settings_table() -> dict[str, dict[str, float]]:
    raw = load_toml("simulation.toml")
    out: dict[str, dict[str, float]] = {}
    for section, entries in raw.items():
        out[section] = {}
        for key, e in entries.items():
            if not isinstance(e, dict) or not {"value", "unit", "source"} <= set(e):
                raise SimlensValueError(
                    f"catalogs/simulation.toml: {section}.{key} needs value, unit, source"
                )
            out[section][key] = float(e["value"])
    return out


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler choices from ``catalogs/simulation.toml`` (see that file for sources)."""

    table: dict[str, dict[str, float]]

    @classmethod
    def load(cls) -> SamplerSettings:
        return cls(_settings_table())

    def __getitem__(self, key: str) -> float:
        section, name = key.split(".")
        return self.table[section][name]


@cache
def _stellar_locus() -> F64:
    text = catalog_file("stellar_locus.csv").read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    return np.array([[float(x) for x in r.split(",")] for r in rows])


# -------------------------------------------------------------------------------------------
# seeds and blocks
# -------------------------------------------------------------------------------------------


def resolve_entropy(rng: np.random.Generator | int | None) -> int:
    """A non-negative integer seed from ``rng`` (an int is used as is)."""
    if rng is None:
        return int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise SimlensValueError(f"rng must be a numpy Generator, an int or None, got {rng!r}")
    if rng < 0:
        raise SimlensValueError(f"rng seed must be >= 0, got {rng}")
    return int(rng)


def row_seeds(entropy: int, start: int, n: int) -> NDArray[np.int64]:
    """Per-row render seeds (noise) for rows ``start .. start + n - 1``."""
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        st = np.random.SeedSequence(entropy, spawn_key=(start + k, 1)).generate_state(2, np.uint32)
        out[k] = (int(st[0]) << 31) ^ int(st[1])
    return out


def _block_rng(entropy: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(block, 0, stream)))


def _iterate_blocks(
    n: int,
    start: int,
    entropy: int,
    stream: int,
    draw: Callable[[int, np.random.Generator, slice], pd.DataFrame],
) -> pd.DataFrame:
    """Run ``draw(m, rng, rows)`` for every block overlapping ``start .. start + n``."""
    parts = []
    first, last = start // BLOCK, (start + n - 1) // BLOCK
    for b in range(first, last + 1):
        lo, hi = b * BLOCK, (b + 1) * BLOCK
        df = draw(BLOCK, _block_rng(entropy, b, stream), slice(lo, hi))
        a, z = max(start, lo) - lo, min(start + n, hi) - lo
        parts.append(df.iloc[a:z])
    return pd.concat(parts, ignore_index=True)


def _control_values(
    ctrl: Control, rng: np.random.Generator, rows: slice, m: int, start: int
) -> F64 | None:
    u = rng.random(m)  # always consumed, so adding a control never shifts other draws
    if ctrl.kind == "array":
        idx = np.arange(rows.start, rows.stop) - start
        v = np.full(m, np.nan)
        ok = (idx >= 0) & (idx < ctrl.values.size)
        v[ok] = ctrl.values[idx[ok]]
        return v
    return ctrl.draw(u)


# -------------------------------------------------------------------------------------------
# population draws
# -------------------------------------------------------------------------------------------


def _draw_systems_free(
    m: int, rng: np.random.Generator, cosmo: Cosmology, cfg: SamplerSettings
) -> dict[str, F64]:
    """``m`` (sigma, z_l, z_s, source mag) drawn with the lensing cross-section weight.

    The cross-section ``pi theta_E^2`` is proportional to ``sigma^4 (D_ls / D_s)^2``: sigma is
    drawn from the VDF times ``sigma^4`` directly, and each (z_l, z_s) pair is accepted with
    probability ``(D_ls / D_s)^2 <= 1``.
    """
    smax = cfg["lens.sigma_v_max"]
    got: dict[str, list[F64]] = {
        "sigma_v": [],
        "z_lens": [],
        "z_source": [],
        "mag_i": [],
        "theta_E": [],
    }
    have = 0
    while have < m:
        k = max(4 * (m - have), 256)
        sig = pop.sample_velocity_dispersion(
            k, rng, sigma_min=100.0, sigma_max=smax, weight_power=4.0
        )
        zl = pop.sample_lens_redshift(k, rng, cosmo, z_max=cfg["lens.z_max"])
        src = pop.sample_sources(k, rng)
        zs = np.asarray(src["z_source"], dtype=float)
        behind = zs > zl + 1e-3
        th = np.where(
            behind, pop.einstein_radius(sig, zl, np.where(behind, zs, zl + 1.0), cosmo), 0.0
        )
        ratio = th / (4.0 * math.pi * (sig / C_KM_S) ** 2 * ARCSEC_PER_RAD)  # D_ls / D_s
        keep = behind & (rng.random(k) < ratio**2)
        for key, arr in (
            ("sigma_v", sig),
            ("z_lens", zl),
            ("z_source", zs),
            ("mag_i", src["mag_i"]),
            ("theta_E", th),
        ):
            got[key].append(np.asarray(arr, dtype=float)[keep])
        have += int(keep.sum())
    return {k: np.concatenate(v)[:m] for k, v in got.items()}


def _draw_systems_given_theta(
    theta: F64, rng: np.random.Generator, cosmo: Cosmology, cfg: SamplerSettings
) -> dict[str, F64]:
    """Redshifts and sigma_v conditioned on each ``theta`` (see module docstring)."""
    m = theta.size
    K = int(cfg["conditioning.theta_E_candidates"])
    zl = pop.sample_lens_redshift(m * K, rng, cosmo, z_max=cfg["lens.z_max"]).reshape(m, K)
    src = pop.sample_sources(m * K, rng)
    zs = np.asarray(src["z_source"], dtype=float).reshape(m, K)
    mag_i = np.asarray(src["mag_i"], dtype=float).reshape(m, K)
    ok = zs > zl + 1e-3
    th = np.broadcast_to(theta[:, None], (m, K))
    sig = np.where(
        ok, pop.sigma_from_einstein_radius(th, zl, np.where(ok, zs, zl + 1.0), cosmo), np.nan
    )
    smax = cfg["lens.sigma_v_max_conditioned"]
    with np.errstate(invalid="ignore"):
        w = np.where(
            ok & (sig >= 100.0) & (sig <= smax),
            # unnormalised VDF (per km/s) times the Jacobian sigma: only ratios matter
            pop.vdf_dn_dsigma(np.clip(np.nan_to_num(sig, nan=100.0), 100.0, smax))
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
        "z_source": zs[r, choice],
        "mag_i": mag_i[r, choice],
        "theta_E": theta.copy(),
    }


def _axis_angle(q: F64, phi: F64) -> tuple[F64, F64]:
    e1, e2 = pop.ellipticity_components(q, phi)
    return np.asarray(e1, dtype=float), np.asarray(e2, dtype=float)


def _lens_systems(
    m: int,
    rng: np.random.Generator,
    cosmo: Cosmology,
    cfg: SamplerSettings,
    theta: F64 | None,
    *,
    source_colour: str = "star-forming",
    n_sersic: F64 | None = None,
) -> dict[str, F64]:
    """Complete lens systems (no PSF, no magnification yet), one per entry of ``theta``.

    ``source_colour`` is the SED template of the source; ``n_sersic`` its Sersic index per
    system (default: ``source.n_sersic`` of the settings, exponential).
    """
    if theta is None:
        d = _draw_systems_free(m, rng, cosmo, cfg)
    else:
        d = _draw_systems_given_theta(theta, rng, cosmo, cfg)
    sig, zl, zs = d["sigma_v"], d["z_lens"], d["z_source"]
    # light from the sigma-luminosity relation, capped where it stops being valid (only
    # reached when a large theta_E is requested: see catalogs/simulation.toml)
    sig_light = np.minimum(sig, cfg["lens.light_sigma_max"])
    abs_r, r_eff = pop.lens_light_from_sigma(sig_light, zl, rng, cosmo)
    mags_lens = sed.apparent_magnitudes("passive", zl, abs_r, cosmo)
    q_l = np.asarray(pop.lens_axis_ratio(sig_light, rng), dtype=float)
    phi_l = rng.uniform(0.0, np.pi, m)
    q_m = np.clip(q_l + cfg["lens.mass_light_q_scatter"] * rng.standard_normal(m), 0.2, 1.0)
    phi_m = phi_l + np.deg2rad(cfg["lens.mass_light_angle_scatter"]) * rng.standard_normal(m)
    cs = cfg["lens.center_scatter"]
    cx, cy = cs * rng.standard_normal(m), cs * rng.standard_normal(m)
    # source: uniform in the disk of radius theta_E around the lens
    rr = d["theta_E"] * cfg["source.position_radius"] * np.sqrt(rng.random(m))
    ang = rng.uniform(0.0, 2 * np.pi, m)
    mag_i = d["mag_i"]
    r_src = np.asarray(pop.source_size(mag_i, zs, rng, cosmo), dtype=float)
    q_s = np.asarray(pop.source_axis_ratio(m, rng), dtype=float)
    phi_s = rng.uniform(0.0, np.pi, m)
    col = np.asarray(sed.colours(source_colour, zs), dtype=float)  # m_b - m_r
    i_idx = 2
    mag_src = mag_i[:, None] - col[:, i_idx : i_idx + 1] + col
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


def _approx_magnification(sys: dict[str, F64]) -> F64:
    """Point-source SIS magnification ``2 theta_E / beta``, softened by the source size.

    Used only to pick candidates near a requested observed source magnitude; the exact
    extended-source magnification is computed afterwards.
    """
    beta = np.hypot(
        sys["center_x_source"] - sys["center_x_mass"], sys["center_y_source"] - sys["center_y_mass"]
    )
    return 2.0 * sys["theta_E"] / np.maximum(beta, sys["R_sersic_source"]) + 1.0


def _may_be_detectable(df: pd.DataFrame, survey: Survey) -> NDArray[np.bool_]:
    """Cheap necessary conditions for LensPop detectability, to skip hopeless candidates.

    Generous on purpose (the exact test follows): arcs resolved at the *sharpest* band's PSF;
    approximate magnification above 2 (threshold 3); and, in some band, an approximate lensed
    magnitude within 0.75 mag of the depth needed for S/N 20 of a point source (the largest
    excess seen among 56 detectable systems of 6000 was 0.33 mag, magnification ratio >= 0.63).
    ``tests/simlens/test_sampling.py`` checks it rejects no detectable system.
    """
    bands = survey.band_names
    fw = df[[f"psf_fwhm_{b}" for b in bands]].to_numpy(dtype=float).min(axis=1)
    th = df["theta_E"].to_numpy(dtype=float)
    rs = df["R_sersic_source"].to_numpy(dtype=float)
    resolved = th**2 > rs**2 + (fw / 2.0) ** 2
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
    mu = _approx_magnification(sysd)
    bright = np.zeros(len(df), dtype=bool)
    for b in bands:
        m_obs = df[f"mag_source_unlensed_{b}"].to_numpy(dtype=float) - 2.5 * np.log10(mu)
        # S/N 20 for a point source is 0.75 mag brighter than the 10-sigma depth
        bright |= m_obs < survey.depth(b) - 0.75 + 0.75
    return np.asarray(resolved & (mu > 2.0) & bright)


def _pick_nearest(values: F64, target: float, window: float, u: float) -> int:
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


def _row_grid(row: dict[str, Any], survey: Survey, npix: int, supersampling: int) -> Any:
    return source_grid(row, npix, survey.pixel_scale, supersampling)


def _source_snr(grid: Any, row: dict[str, Any], survey: Survey) -> tuple[float, str]:
    """Best-band LensPop-like S/N of the PSF-convolved lensed source, and that band."""
    bands = survey.band_names
    ps = survey.pixel_scale
    sig = np.array([row[f"psf_fwhm_{b}"] for b in bands]) * FWHM_TO_SIGMA / ps
    pad = math.ceil(4 * float(sig.max())) + 1
    img = np.pad(grid.image, pad)
    n0, n1 = img.shape
    f2 = np.fft.fftfreq(n0)[:, None] ** 2 + np.fft.rfftfreq(n1)[None, :] ** 2
    tf = np.exp(-2 * np.pi**2 * sig[:, None, None] ** 2 * f2[None])
    conv = scipy.fft.irfft2(scipy.fft.rfft2(img)[None] * tf, s=img.shape, axes=(-2, -1))
    zp = survey.zero_point
    best_snr, best_band = 0.0, bands[0]
    for j, b in enumerate(bands):
        s = conv[j] * 10.0 ** (-0.4 * (row[f"mag_source_unlensed_{b}"] - zp))
        bkg = survey.background_sigma(b) ** 2
        sel = s > math.sqrt(bkg)
        if sel.any():
            ss = s[sel]
            snr = float(
                ss.sum() / math.sqrt(ss.size * bkg + ss.sum() / survey.electrons_per_count(b))
            )
            if snr > best_snr:
                best_snr, best_band = snr, b
    return best_snr, best_band


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
    the same adaptive ray tracing the renderer uses. The S/N in band ``b`` is LensPop-like:
    ``sum(s) / sqrt(sum(var))`` over pixels where the PSF-convolved lensed source ``s`` exceeds
    the background noise, with ``var`` the sky + read + source Poisson variance. ``resolved``:
    ``theta_E^2 > R_sersic_source^2 + (FWHM/2)^2`` in the best band. ``grid`` reuses a
    ray-traced source (it depends on geometry only, not on magnitudes or PSF).
    """
    if grid is None:
        grid = _row_grid(row, survey, npix, supersampling)
    mu = grid.flux
    best_snr, best_band = _source_snr(grid, row, survey)
    fwhm = row[f"psf_fwhm_{best_band}"]
    resolved = row["theta_E"] ** 2 > row["R_sersic_source"] ** 2 + (fwhm / 2.0) ** 2
    detectable = (
        (best_snr > cfg["detectability.snr_min"])
        and (mu > cfg["detectability.magnification_min"])
        and resolved
    )
    return {
        "magnification": mu,
        "snr_source": best_snr,
        "snr_band": best_band,
        "resolved": bool(resolved),
        "detectable": bool(detectable),
    }


# -------------------------------------------------------------------------------------------
# public samplers
# -------------------------------------------------------------------------------------------


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise SimlensValueError(f"n must be a positive integer, got {n!r}")


def _finish(
    df: pd.DataFrame, survey: Survey, psf_scale: F64, rng: np.random.Generator
) -> pd.DataFrame:
    fw = psf_fwhm_draws(survey, psf_scale, rng)
    new = {
        "psf_scale": psf_scale,
        **{f"psf_fwhm_{b}": fw[:, j] for j, b in enumerate(survey.band_names)},
    }
    # one concat (not many inserts): keeps the wide frame in few blocks
    return pd.concat(
        [df.drop(columns=[c for c in new if c in df.columns]), pd.DataFrame(new, index=df.index)],
        axis=1,
    )


_COLUMN_ORDER_HEAD = ["label", "kind", "seed"]


def _empty_components(m: int, bands: tuple[str, ...]) -> dict[str, Any]:
    """Columns of every component set to "absent", so all kinds share one schema."""
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
        "resolved": np.zeros(m, dtype=bool),
        "detectable": np.zeros(m, dtype=bool),
    }
    for b in bands:
        cols[f"mag_lens_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_source_unlensed_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_source_{b}"] = np.full(m, NO_LIGHT_MAG)
        cols[f"mag_star_{b}"] = np.full(m, NO_LIGHT_MAG)
    cols.update(absent_columns(m, bands))
    return cols


def sample_lenses(
    n: int,
    *,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    rng: np.random.Generator | int | None = 0,
    theta_E: Any = None,
    psf_scale: Any = 1.0,
    mag_lens_r: Any = None,
    mag_source_g: Any = None,
    detectable: bool = False,
    start: int = 0,
    supersampling: int = 3,
    source_model: str = "sersic",
    n_sersic_source: Any = None,
    source_colour: str = "star-forming",
    neighbours: bool = True,
) -> pd.DataFrame:
    """Truth table of ``n`` strong lenses (see the module docstring for the population).

    ``source_model``: ``"sersic"`` (smooth) or ``"clumpy"`` (Sersic plus star-forming clumps,
    :mod:`simlens.sources`; clump numbers, fractions and seeds from ``catalogs/simulation.toml``
    ``[clumpy]``, drawn from a side stream so the systems are those of ``"sersic"``).
    ``n_sersic_source``: the source's Sersic index (control: scalar, range or array, in
    [0.5, 8]; default exponential, 1). ``source_colour``: SED template of the source colours
    (one of :data:`simlens.sed.TEMPLATES`). ``neighbours``: add interloping field galaxies and
    stars (:mod:`simlens.neighbours`).

    ``detectable=True`` keeps only systems that pass LensPop's detectability (best-band S/N
    > 20, magnification > 3, arcs resolved), redrawing the others from the population under
    the same controls, so the set is LensPop's "detectable lenses" (as the paper's training and
    test sims were). The default keeps every strongly lensed system, flagged in ``detectable``.
    """
    _check_n(n)
    if survey.band_names != ("g", "r", "i", "z"):
        raise SimlensValueError(
            f"survey bands must be g, r, i, z for the lens population, got {survey.band_names}"
        )
    cfg = SamplerSettings.load()
    c_theta = parse_control("theta_E", theta_E, n)
    c_psf = parse_control("psf_scale", psf_scale, n)
    c_ml = parse_control("mag_lens_r", mag_lens_r, n)
    c_ms = parse_control("mag_source_g", mag_source_g, n)
    c_ns = parse_control("n_sersic_source", n_sersic_source, n)
    if source_model not in SOURCE_MODELS:
        raise SimlensValueError(
            f"source_model must be one of {SOURCE_MODELS}, got {source_model!r}"
        )
    if source_colour not in SOURCE_COLOURS:
        raise SimlensValueError(
            f"source_colour must be one of {SOURCE_COLOURS}, got {source_colour!r}"
        )
    entropy = resolve_entropy(rng)
    bands = survey.band_names

    def candidates(
        brng: np.random.Generator,
        ps: F64,
        th: F64 | None,
        ml: F64 | None,
        msg: F64 | None,
        ns: F64,
        kn: dict[str, Any],
        per_row: int = 1,
    ) -> pd.DataFrame:
        """``per_row`` candidate systems per entry of ``ps`` (consecutive), no lensing truth yet."""
        m = ps.size * per_row
        ps, ns = np.repeat(ps, per_row), np.repeat(ns, per_row)
        th, ml, msg = (None if a is None else np.repeat(a, per_row) for a in (th, ml, msg))
        opts = {"source_colour": source_colour}
        if ml is None and msg is None:
            sys = _lens_systems(m, brng, cosmology, cfg, th, n_sersic=ns, **opts)
        else:
            K = int(cfg["conditioning.candidates"])
            cand = _lens_systems(
                m * K,
                brng,
                cosmology,
                cfg,
                None if th is None else np.repeat(th, K),
                n_sersic=np.repeat(ns, K),
                **opts,
            )
            win = cfg["conditioning.mag_window"]
            obs_g = cand["mag_source_unlensed_g"] - 2.5 * np.log10(_approx_magnification(cand))
            pick = np.empty(m, dtype=int)
            u = brng.random(m)
            for i in range(m):
                sl = slice(i * K, (i + 1) * K)
                if ml is not None and msg is not None:
                    d = np.hypot(cand["mag_lens_r"][sl] - ml[i], obs_g[sl] - msg[i])
                    pick[i] = i * K + _pick_nearest(d, 0.0, win, u[i])
                elif ml is not None:
                    pick[i] = i * K + _pick_nearest(cand["mag_lens_r"][sl], float(ml[i]), win, u[i])
                else:
                    assert msg is not None
                    pick[i] = i * K + _pick_nearest(obs_g[sl], float(msg[i]), win, u[i])
            sys = {k: v[pick] for k, v in cand.items()}
            if ml is not None:
                shift = ml - sys["mag_lens_r"]
                for b in bands:
                    sys[f"mag_lens_{b}"] = sys[f"mag_lens_{b}"] + shift
        if msg is not None:
            sys["_target_g"] = msg
        cols = _empty_components(m, bands)
        cols.update(sys)
        cols.update({k: np.repeat(v, per_row) for k, v in kn.items()})
        cols["knot_sigma_source"] = np.maximum(
            cfg["clumpy.knot_sigma"] * np.asarray(cols["R_sersic_source"]),
            cfg["clumpy.knot_sigma_min"],
        )
        df = _finish(pd.DataFrame(cols), survey, ps, brng)
        df["label"] = 1
        df["kind"] = "lens"
        return df

    def complete(row: dict[str, Any]) -> dict[str, Any]:
        """Exact magnification, S/N and detectability; pins the observed g if requested."""
        grid = _row_grid(row, survey, npix, supersampling)
        target = row.pop("_target_g", None)
        if target is not None:
            shift = target + 2.5 * math.log10(grid.flux) - row["mag_source_unlensed_g"]
            for b in bands:
                row[f"mag_source_unlensed_{b}"] += shift
        row.update(lensing_truth(row, survey, npix, cfg, grid=grid))
        for b in bands:
            row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"] - 2.5 * math.log10(
                row["magnification"]
            )
        return row

    def draw(m: int, brng: np.random.Generator, rows: slice) -> pd.DataFrame:
        th = _control_values(c_theta, brng, rows, m, start)
        ps = _control_values(c_psf, brng, rows, m, start)
        ml = _control_values(c_ml, brng, rows, m, start)
        msg = _control_values(c_ms, brng, rows, m, start)
        # array controls hold NaN on block rows outside the requested range: any value will do
        ps = np.ones(m) if ps is None else np.where(np.isnan(ps), 1.0, ps)
        th = None if th is None else np.where(np.isnan(th), 1.0, th)
        ml = None if ml is None else np.where(np.isnan(ml), 20.0, ml)
        msg = None if msg is None else np.where(np.isnan(msg), 22.0, msg)
        # source index and clumps from a side stream: the systems are those of the defaults
        srng = _block_rng(entropy, rows.start // BLOCK, _KNOT_STREAM)
        ns = _control_values(c_ns, srng, rows, m, start)
        ns = np.full(m, cfg["source.n_sersic"]) if ns is None else np.where(np.isnan(ns), 1.0, ns)
        kn = _knot_columns(m, srng, cfg, source_model)
        recs0 = candidates(brng, ps, th, ml, msg, ns, kn).to_dict("records")
        # Ray trace only the rows asked for: the others of the block are drawn (so the
        # generator advances identically) but dropped by _iterate_blocks.
        want = [start <= rows.start + i < start + n for i in range(m)]
        out = [complete(r) if w else _placeholder(r, bands) for r, w in zip(recs0, want)]
        if detectable:
            # keep LensPop-detectable systems only: redraw the others from the same controls,
            # ray tracing candidates one at a time until one passes (cheap cuts first)
            k = DETECTABLE_CANDIDATES

            def sub(a: F64 | None, i: int) -> F64 | None:
                return None if a is None else a[i : i + 1]

            for rnd in range(DETECTABLE_ROUNDS):
                bad = [i for i, r in enumerate(out) if want[i] and not r["detectable"]]
                if not bad:
                    break
                for i in bad:
                    # each row redraws from its own stream: rows stay independent of each other
                    rrng = np.random.default_rng(
                        np.random.SeedSequence(entropy, spawn_key=(rows.start + i, 2, rnd))
                    )
                    kni = {key: v[i : i + 1] for key, v in kn.items()}
                    cand = candidates(
                        rrng,
                        ps[i : i + 1],
                        sub(th, i),
                        sub(ml, i),
                        sub(msg, i),
                        ns[i : i + 1],
                        kni,
                        k,
                    )
                    maybe = _may_be_detectable(cand, survey)
                    recs = cand.to_dict("records")
                    for j in np.flatnonzero(maybe):
                        r = complete(recs[j])
                        if r["detectable"]:
                            out[i] = r
                            break
            else:
                raise SimlensValueError(
                    "detectable=True: no LensPop-detectable lens found for some rows after "
                    f"{DETECTABLE_ROUNDS * DETECTABLE_CANDIDATES} candidates each; the controls "
                    f"(theta_E={theta_E!r}, psf_scale={psf_scale!r}, mag_lens_r={mag_lens_r!r}, "
                    f"mag_source_g={mag_source_g!r}) leave (almost) no detectable systems"
                )
        return pd.DataFrame(out)

    out = _iterate_blocks(n, start, entropy, 0, draw)
    out["seed"] = row_seeds(entropy, start, n)
    return _order(_with_neighbours(out, neighbours, survey, npix, entropy, start, 0))


def _knot_columns(
    m: int, rng: np.random.Generator, cfg: SamplerSettings, source_model: str
) -> dict[str, Any]:
    """Clump columns of ``m`` sources (always drawn, so the stream never depends on the model)."""
    nk = rng.integers(int(cfg["clumpy.knots_min"]), int(cfg["clumpy.knots_max"]) + 1, m)
    fk = rng.uniform(cfg["clumpy.knot_fraction_min"], cfg["clumpy.knot_fraction_max"], m)
    seeds = rng.integers(1, 2**31 - 1, m)
    if source_model == "sersic":
        nk, fk, seeds = np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m, dtype=np.int64)
    return {"n_knots_source": nk, "knot_fraction_source": fk, "seed_source": seeds}


def _with_neighbours(
    df: pd.DataFrame, on: bool, survey: Survey, npix: int, entropy: int, start: int, kind: int
) -> pd.DataFrame:
    if not on:
        return df
    from .neighbours import neighbour_table

    nb = neighbour_table(
        len(df), survey=survey, npix=npix, entropy=entropy, start=start, kind_stream=kind
    )
    return pd.DataFrame(
        {c: (nb[c].to_numpy() if c in nb.columns else df[c].to_numpy()) for c in df.columns}
    )


def _placeholder(row: dict[str, Any], bands: tuple[str, ...]) -> dict[str, Any]:
    """A block row outside the requested range: complete in schema, never returned."""
    row.pop("_target_g", None)
    row.update(magnification=1.0, snr_source=0.0, snr_band=bands[0], resolved=False)
    row["detectable"] = True  # never redrawn
    for b in bands:
        row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"]
    return row


def _order(df: pd.DataFrame) -> pd.DataFrame:
    cols = _COLUMN_ORDER_HEAD + [c for c in df.columns if c not in _COLUMN_ORDER_HEAD]
    df = df[cols].reset_index(drop=True).copy()
    df["label"] = df["label"].astype(np.int64)
    df["kind"] = df["kind"].astype(object)
    df["snr_band"] = df["snr_band"].astype(object)
    return df


def sample_nonlenses(
    n: int,
    *,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    rng: np.random.Generator | int | None = 0,
    kind: str = "elliptical",
    psf_scale: Any = 1.0,
    mag_lens_r: Any = None,
    start: int = 0,
    neighbours: bool = True,
) -> pd.DataFrame:
    """Truth table of ``n`` non-lenses of ``kind``.

    ``"elliptical"``: lens-like massive ellipticals, drawn exactly as the deflectors of
    :func:`sample_lenses` (same cross-section-weighted population) with no source and no mass,
    the negatives of the paper's Network A. ``mag_lens_r`` fixes their r magnitude as for lenses.
    ``"star"``: a point source with high-latitude star counts and colours on the stellar locus.
    ``"spiral"``, ``"merger"``, ``"ring"``, ``"blue_companion"`` and the ``"field"`` mixture:
    see :mod:`simlens.kinds` (``mag_lens_r`` also fixes the elliptical of ``"ring"`` and
    ``"blue_companion"``). ``neighbours`` adds interlopers (:mod:`simlens.neighbours`).
    """
    _check_n(n)
    if kind not in NONLENS_KINDS:
        raise SimlensValueError(f"kind must be one of {NONLENS_KINDS}, got {kind!r}")
    if kind not in MAG_LENS_KINDS and mag_lens_r is not None:
        raise SimlensValueError(
            f"mag_lens_r applies to kind in {MAG_LENS_KINDS} only, not {kind!r} "
            "(it fixes the r magnitude of a lens-like elliptical)"
        )
    cfg = SamplerSettings.load()
    c_psf = parse_control("psf_scale", psf_scale, n)
    c_ml = parse_control("mag_lens_r", mag_lens_r, n)
    entropy = resolve_entropy(rng)
    bands = survey.band_names
    stream = 1 + NONLENS_KINDS.index(kind)

    def draw(m: int, brng: np.random.Generator, rows: slice) -> pd.DataFrame:
        ps = _control_values(c_psf, brng, rows, m, start)
        ml = _control_values(c_ml, brng, rows, m, start)
        assert ps is not None
        ps = np.where(np.isnan(ps), 1.0, ps)
        df = pd.DataFrame(_empty_components(m, bands))
        if kind == "elliptical":
            _elliptical_columns(df, m, brng, cosmology, cfg, ml, bands)
        elif kind == "star":
            _star_columns(df, m, brng, cfg, bands)
        else:
            from .kinds import draw_kind

            df = draw_kind(kind, df, m, brng, cosmology, cfg, ml, bands).copy()  # defragment
        df = _finish(df, survey, ps, brng)
        df["label"] = 0
        if kind != "field":  # field rows carry the kind each was drawn as
            df["kind"] = kind
        return df

    out = _iterate_blocks(n, start, entropy, stream, draw)
    out["seed"] = row_seeds(entropy, start, n)
    return _order(_with_neighbours(out, neighbours, survey, npix, entropy, start, stream))


def _elliptical_columns(
    df: pd.DataFrame,
    m: int,
    brng: np.random.Generator,
    cosmology: Cosmology,
    cfg: SamplerSettings,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    """Fill ``df`` (in place) with lens-like ellipticals: deflectors without source or mass."""
    if ml is None:
        sys = _lens_systems(m, brng, cosmology, cfg, None)
    else:
        K = int(cfg["conditioning.candidates"])
        cand = _lens_systems(m * K, brng, cosmology, cfg, None)
        win = cfg["conditioning.mag_window"]
        u = brng.random(m)
        pick = np.array(
            [
                i * K
                + _pick_nearest(cand["mag_lens_r"][i * K : (i + 1) * K], float(ml[i]), win, u[i])
                for i in range(m)
            ]
        )
        sys = {k: v[pick] for k, v in cand.items()}
        shift = np.where(np.isnan(ml), 0.0, ml - sys["mag_lens_r"])
        for b in bands:
            sys[f"mag_lens_{b}"] = sys[f"mag_lens_{b}"] + shift
    keep = [
        k
        for k in sys
        if not (
            k.endswith("_source")
            or k.startswith("mag_source")
            or k.endswith("_mass")
            or k in ("theta_E", "z_source")
        )
    ]
    for k in keep:
        df[k] = sys[k]


def _star_columns(
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
    locus = _stellar_locus()
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
