"""LensPop's detectability, as its released code computes it (Collett 2015; tcollett/LensPop).

A lens is *detectable* when, in its best band ``b*``, all four of LensPop's criteria hold
(``SignaltoNoise.SourceMetaData`` with ``ModelAll.py``'s ``SNcutA = 20``, ``magcut = 3``,
``bfac = rfac = 2``; ``StochasticObserving.SeeingTest``):

1. ``S/N(b*) > 20``: the source S/N of :func:`lenspop_snr` (``SNfunc``), with the PSF-convolved
   lens light, lensed source, sky and read noise all in the noise;
2. ``mu > 3``: the extended-source magnification;
3. ``mu * r_s > FWHM(b*)``: the arcs are resolved (``r_s`` the source's half-light radius);
4. ``2 theta_E^2 >= 4 r_s^2 + FWHM(b*)^2``: the Einstein radius is resolved (``SeeingTest``).

The best band is the band of largest ``S/N_0`` among bands where criterion 3 holds, else of the
third-ranked S/N (``SNs[2]``, 0 if there is none) as LensPop ranks unresolved bands.

Seeing and depth per band come from the survey: the row's ``psf_fwhm_<b>`` and the preset's
``n_exposures``, unless the preset has a ``[lenspop]`` table
(``catalogs/surveys/lenspop-des.toml``): then, as LensPop's ``StochasticObserving``,
``n_draws`` exposures per band are drawn from the band's seeing table and the strategy keeps
some (``"optimal-coadd"``: seeing below
``min(sqrt(2 theta_E^2 - 2 r_s^2), mu r_s)``; ``"full-coadd"``: all; ``"best-epoch"``: the best);
the coadd's FWHM is the worst kept, its depth ``n_kept`` exposures. The draws use a generator
seeded by the row's geometry, so a row's verdict never depends on the other rows.

One deliberate difference: LensPop adds ``nexposures`` (10) read-noise variances even when it
stacks fewer exposures; we add one per stacked exposure (2.2 e^2 each, ~1e-3 of the sky).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
from numpy.typing import NDArray

from simlens._catalogs import catalog_file, load_toml
from simlens.errors import SimlensValueError
from simlens.physics.profiles import sersic_surface_brightness
from simlens.physics.psf import FWHM_TO_SIGMA
from simlens.schema import CRITERIA
from simlens.streams import EXPOSURE_STREAM, value_rng
from simlens.survey import Survey

__all__ = [
    "CRITERIA",
    "ObservingRule",
    "lenspop_criteria",
    "lenspop_snr",
    "observing_rule",
]

F64 = NDArray[np.float64]

SNR_MIN = 20.0  # ModelAll.py: a = 20
MAGNIFICATION_MIN = 3.0  # ModelAll.py: b = 3
BFAC = RFAC = 2.0  # ModelAll.py: S[survey].bfac = S[survey].rfac = 2
SIGNIFICANCE_FLOOR = 0.5  # SignaltoNoise.SNfunc: pixels below 0.5 sigma split regions


STRATEGIES = ("optimal-coadd", "full-coadd", "best-epoch")


def lenspop_snr(data: F64, sigma: F64) -> F64:
    """LensPop's ``SNfunc``: S/N of the best pixel set overall, then of each connected region.

    Pixels are ranked by ``data / sigma``; the S/N is the largest ``cumsum(data) /
    sqrt(cumsum(sigma^2))`` over that ranking. Regions are the 4-connected sets of pixels with
    ``data / sigma >= 0.5``. Returns every value (the overall one and one per region), sorted in
    decreasing order: ``[0]`` is the detection S/N, ``[2]`` LensPop's S/N of an unresolved band.
    """
    d = np.asarray(data, dtype=float)
    s = np.asarray(sigma, dtype=float)

    def best(dd: F64, ss: F64) -> float:
        order = np.argsort(-dd / ss, kind="stable")
        return float((np.cumsum(dd[order]) / np.sqrt(np.cumsum(ss[order] ** 2))).max())

    out = [best(d.ravel(), s.ravel())]
    keep = np.where(d / s < SIGNIFICANCE_FLOOR, 0.0, d)
    labels, n = scipy.ndimage.label(keep)
    if n:
        flat = labels.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
        kd, ks = keep.ravel()[order], s.ravel()[order]
        for i in range(n):
            lo, hi = bounds[i], bounds[i + 1]
            out.append(best(kd[lo:hi], ks[lo:hi]))
    return np.sort(np.asarray(out))[::-1]


@dataclass(frozen=True)
class ObservingRule:
    """LensPop's per-lens choice of exposures (``[lenspop]`` of a survey preset)."""

    strategy: str
    bands: tuple[str, ...]
    n_draws: int
    seeing_quantiles: dict[str, tuple[float, ...]]

    def draw(self, rng: np.random.Generator, band: str) -> F64:
        """``n_draws`` exposure FWHMs (arcsec) from the band's seeing table."""
        q = np.asarray(self.seeing_quantiles[band])
        levels = np.linspace(0.0, 1.0, q.size)
        return np.asarray(np.interp(rng.random(self.n_draws), levels, q))

    def accept(self, fwhm: F64, theta_E: float, r_s: float, mu: float) -> F64:
        """The kept exposures' FWHMs (``StochasticObserving.PSFfloor``)."""
        if self.strategy == "full-coadd":
            return fwhm
        if self.strategy == "best-epoch":
            return np.sort(fwhm)[:1]
        arg = BFAC * theta_E**2 - RFAC * r_s**2  # sic: LensPop's floor uses rfac r_s^2 here
        floor = min(math.sqrt(arg) if arg > 0 else 0.0, r_s * mu)
        return fwhm[fwhm < floor]


@cache
def _rule(name: str) -> ObservingRule | None:
    if not catalog_file("surveys", f"{name}.toml").is_file():
        return None
    table = load_toml("surveys", f"{name}.toml").get("lenspop")
    if table is None:
        return None
    strategy = str(table["strategy"]["value"])
    if strategy not in STRATEGIES:
        raise SimlensValueError(
            f"catalogs/surveys/{name}.toml: [lenspop] strategy must be one of {STRATEGIES}, "
            f"got {strategy!r}"
        )
    bands = tuple(str(b) for b in table["bands"]["value"])
    return ObservingRule(
        strategy=strategy,
        bands=bands,
        n_draws=int(table["n_draws"]["value"]),
        seeing_quantiles={
            b: tuple(float(x) for x in table[f"seeing_quantiles_{b}"]["value"]) for b in bands
        },
    )


def observing_rule(survey: Survey) -> ObservingRule | None:
    """The LensPop seeing rule of a shipped preset (``[lenspop]`` table), or ``None``."""
    return _rule(survey.name)


def _row_rng(row: dict[str, Any]) -> np.random.Generator:
    """A generator seeded by the row's geometry: pure, independent of the other rows."""
    keys = ("theta_E", "R_sersic_source", "center_x_source", "center_y_source", "z_source")
    return value_rng(*(float(row[k]) for k in keys), stream=EXPOSURE_STREAM)


def _gauss_kernel(sigma_px: float, half: int) -> F64:
    """LensPop's pixel-sampled, normalised Gaussian PSF."""
    r = np.arange(-half, half + 1, dtype=float)
    k = np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2) / sigma_px**2)
    return k / k.sum()


def _lens_light(row: dict[str, Any], x: F64, y: F64, ps: float, ss: int = 3) -> F64:
    """Unit-flux lens light per pixel centred at ``x, y`` (arcsec), ``ss^2`` samples each."""
    off = (np.arange(ss) + 0.5) / ss - 0.5
    acc = np.zeros_like(x)
    for dy in off:
        for dx in off:
            acc += sersic_surface_brightness(
                x + dx * ps,
                y + dy * ps,
                1.0,
                row["R_sersic_lens_light"],
                row["n_sersic_lens_light"],
                row["e1_lens_light"],
                row["e2_lens_light"],
                row["center_x_lens_light"],
                row["center_y_lens_light"],
            )
    return np.asarray(acc * ps**2 / ss**2)


def _convolver(img: F64, half: int) -> Any:
    """``convolve(kernel)``: ``img`` convolved with a ``(2 half + 1)^2`` kernel, same shape
    (zero outside ``img``); the image's transform is computed once for every kernel."""
    shape = [a + 2 * half for a in img.shape]
    fimg = scipy.fft.rfft2(img, shape)

    def convolve(kernel: F64) -> F64:
        f = scipy.fft.irfft2(fimg * scipy.fft.rfft2(kernel, shape), shape, axes=(-2, -1))
        return np.asarray(f[half : half + img.shape[0], half : half + img.shape[1]])

    return convolve


def _band_observations(
    row: dict[str, Any], survey: Survey, th: float, rs: float, mu: float
) -> tuple[tuple[str, ...], dict[str, float], dict[str, float]]:
    """Bands, seeing (arcsec) and number of stacked exposures per band (0: band unusable).

    From the row's PSF and the survey's exposures, or (with an observing rule) from the
    exposures the rule draws and accepts for this lens.
    """
    rule = observing_rule(survey)
    bands = rule.bands if rule is not None else survey.band_names
    rng = _row_rng(row) if rule is not None else None
    seeing: dict[str, float] = {}
    n_exp: dict[str, float] = {}
    for b in bands:
        if rule is None:
            seeing[b], n_exp[b] = float(row[f"psf_fwhm_{b}"]), survey.band(b).n_exposures
        else:
            assert rng is not None
            kept = rule.accept(rule.draw(rng, b), th, rs, mu)
            seeing[b], n_exp[b] = (float(kept.max()), float(kept.size)) if kept.size else (0, 0)
    return bands, seeing, n_exp


def _band_snrs(
    grid: Any,
    row: dict[str, Any],
    survey: Survey,
    npix: int,
    usable: list[str],
    seeing: dict[str, float],
    n_exp: dict[str, float],
) -> dict[str, F64]:
    """LensPop S/N values (:func:`lenspop_snr`) of the lensed source in each usable band."""
    ps = survey.pixel_scale
    sig_px = max([seeing[b] for b in usable], default=ps) * FWHM_TO_SIGMA / ps
    half = math.ceil(5.0 * sig_px) + 1
    src = np.pad(np.asarray(grid.image, dtype=float), half)
    ny, nx = src.shape
    c = (npix - 1) / 2.0
    # pixel centres of the padded patch, arcsec from the stamp centre; the lens light is drawn
    # on a patch wider by ``half`` on each side so its convolution is exact on the padded patch
    yy, xx = np.mgrid[-half : ny + half, -half : nx + half].astype(float)
    xs = (xx + grid.x0 - half - c) * ps
    ys = (yy + grid.y0 - half - c) * ps
    conv_src = _convolver(src, half)
    conv_lens = _convolver(_lens_light(row, xs, ys, ps), half)
    snrs: dict[str, F64] = {}
    for b in usable:
        k = _gauss_kernel(seeing[b] * FWHM_TO_SIGMA / ps, half)
        zp = survey.zero_point
        s = np.clip(conv_src(k), 0.0, None) * 10.0 ** (
            -0.4 * (row[f"mag_source_unlensed_{b}"] - zp)
        )
        big = np.clip(conv_lens(k), 0.0, None)[half:-half, half:-half]
        g = big * 10.0 ** (-0.4 * (row[f"mag_lens_{b}"] - zp))
        band = survey.band(b)
        # electrons per image count of a coadd of n_exp[b] exposures
        epc = n_exp[b] * survey.exposure_time * 10.0 ** (-0.4 * (zp - band.zero_point_electron))
        var_e = (s + g + survey.sky_counts_per_pixel(b)) * epc + n_exp[b] * survey.read_noise**2
        snrs[b] = lenspop_snr(s * epc, np.sqrt(var_e))
    return snrs


def lenspop_criteria(
    grid: Any,
    row: dict[str, Any],
    survey: Survey,
    npix: int,
    *,
    snr_min: float = SNR_MIN,
    magnification_min: float = MAGNIFICATION_MIN,
) -> dict[str, Any]:
    """LensPop's four criteria for one lens row (module docstring), and its verdict.

    ``grid`` is the ray-traced unit-flux lensed source (:func:`simlens.physics.sources.source_grid`,
    no PSF). Returns ``magnification``, ``snr_source`` (S/N in the best band), ``snr_band``,
    ``fwhm_detection`` (the best band's FWHM, arcsec), the four ``pass_*`` booleans,
    ``resolved`` (criteria 3 and 4) and ``detectable`` (all four).
    """
    mu = float(grid.flux)
    th = float(row["theta_E"])
    rs = float(row["R_sersic_source"])
    bands, seeing, n_exp = _band_observations(row, survey, th, rs, mu)
    usable = [b for b in bands if n_exp[b] > 0]
    snrs = _band_snrs(grid, row, survey, npix, usable, seeing, n_exp)
    arcs = {b: mu * rs > seeing[b] for b in usable}

    def rank(b: str) -> float:
        v = snrs[b]
        if arcs[b]:
            return float(v[0])
        return float(v[2]) if v.size > 2 else 0.0

    best = max(usable, key=rank) if usable else bands[0]
    snr = float(snrs[best][0]) if usable else 0.0
    fw = seeing[best] if usable else 0.0
    passes = {
        "pass_snr": snr > snr_min,
        "pass_magnification": mu > magnification_min,
        "pass_arcs_resolved": bool(usable) and bool(arcs[best]),
        "pass_theta_E_resolved": bool(usable) and BFAC * th**2 >= (RFAC * rs) ** 2 + fw**2,
    }
    return {
        "magnification": mu,
        "snr_source": snr,
        "snr_band": best,
        "fwhm_detection": fw,
        **passes,
        "resolved": passes["pass_arcs_resolved"] and passes["pass_theta_E_resolved"],
        "detectable": all(passes.values()),
    }
