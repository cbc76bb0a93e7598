"""LensPop's detectability (simlens.population.detectability) on hand-made systems, at each
criterion's boundary.

The reference is LensPop's released code (github.com/tcollett/LensPop: SignaltoNoise.SNfunc and
SourceMetaData, StochasticObserving.PSFfloor and SeeingTest, ModelAll.py's thresholds), restated
here independently: a brute-force S/N over pixel sets, a closed-form S/N for a flat source, and
the four inequalities written out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.cosmology import Planck18

from simlens.population import detectability as LP
from simlens.sampling.lens_systems import may_be_detectable
from simlens.sampling.truth import SamplerSettings, lensing_truth, row_grid
from simlens.schema import records
from simlens.survey import load_survey
from simlens.yields._fraction import free_candidates

SURVEY = load_survey("des-y3")
NPIX = 64
BANDS = SURVEY.band_names


class FlatGrid:
    """A ray-traced source stand-in: a k x k square of equal pixels with total flux ``mu``."""

    def __init__(self, mu: float, k: int = 6) -> None:
        self.mu = mu
        self.image = np.full((k, k), mu / k**2)
        self.x0 = self.y0 = NPIX // 2 - k // 2
        self.pixel_scale = SURVEY.pixel_scale

    @property
    def flux(self) -> float:
        return self.mu  # exactly, for the boundary tests


def base_row(**over: float) -> dict:
    """A lens that passes every criterion comfortably (no lens light unless asked)."""
    row = {
        "theta_E": 1.5,
        "R_sersic_source": 0.5,
        "center_x_source": 0.1,
        "center_y_source": 0.0,
        "z_source": 1.5,
        "R_sersic_lens_light": 1.0,
        "n_sersic_lens_light": 4.0,
        "e1_lens_light": 0.0,
        "e2_lens_light": 0.0,
        "center_x_lens_light": 0.0,
        "center_y_lens_light": 0.0,
    }
    for b in BANDS:
        row[f"psf_fwhm_{b}"] = 1.0
        row[f"mag_source_unlensed_{b}"] = 23.0
        row[f"mag_lens_{b}"] = 99.0
    row.update(over)
    return row


def crit(row: dict, mu: float = 6.0) -> dict:
    return LP.lenspop_criteria(FlatGrid(mu), row, SURVEY, NPIX)


# -------------------------------------------------------------------------------------------
# the S/N
# -------------------------------------------------------------------------------------------


def test_snfunc_is_the_best_prefix_by_pixel_snr_and_ranks_regions():
    rng = np.random.default_rng(0)
    d = np.zeros((9, 9))
    d[1:3, 1:4] = rng.uniform(1, 5, (2, 3))  # region A
    d[6:8, 5:8] = rng.uniform(1, 5, (2, 3))  # region B
    s = rng.uniform(0.5, 2.0, d.shape)
    out = LP.lenspop_snr(d, s)
    # brute force over prefixes of the d/s ranking, as SNfunc
    order = np.argsort(-(d / s).ravel())
    dd, ss = d.ravel()[order], s.ravel()[order]
    best = max(dd[: i + 1].sum() / math.sqrt((ss[: i + 1] ** 2).sum()) for i in range(dd.size))
    regions = []
    for sl in (np.s_[1:3, 1:4], np.s_[6:8, 5:8]):
        o = np.argsort(-(d[sl] / s[sl]).ravel())
        a, b = d[sl].ravel()[o], s[sl].ravel()[o]
        regions.append(
            max(a[: i + 1].sum() / math.sqrt((b[: i + 1] ** 2).sum()) for i in range(a.size))
        )
    np.testing.assert_allclose(out, sorted([best, *regions], reverse=True), rtol=1e-12)
    assert out.size == 3


def test_flat_source_snr_has_the_closed_form_with_sky_read_and_source_noise():
    """k^2 equal pixels: S/N = F / sqrt(F + k^2 (sky + read)) in electrons (sharp PSF)."""
    row = base_row(**{f"psf_fwhm_{b}": 0.02 for b in BANDS})
    out = crit(row, mu=4.0)
    b = out["snr_band"]
    band = SURVEY.band(b)
    epc = (
        band.n_exposures
        * SURVEY.exposure_time
        * 10 ** (-0.4 * (SURVEY.zero_point - band.zero_point_electron))
    )
    f_e = 4.0 * 10 ** (-0.4 * (23.0 - SURVEY.zero_point)) * epc
    sky_e = SURVEY.sky_counts_per_pixel(b) * epc
    read = band.n_exposures * SURVEY.read_noise**2
    expect = f_e / math.sqrt(f_e + 36 * (sky_e + read))
    assert out["snr_source"] == pytest.approx(expect, rel=1e-6)


def test_lens_light_photon_noise_lowers_the_snr():
    dark = crit(base_row())
    bright = crit(base_row(**{f"mag_lens_{b}": 17.0 for b in BANDS}))
    assert bright["snr_source"] < 0.8 * dark["snr_source"]


# -------------------------------------------------------------------------------------------
# each criterion just inside and just outside its boundary
# -------------------------------------------------------------------------------------------


def _flip(row_in: dict, row_out: dict, key: str, mu_in: float = 6.0, mu_out: float = 6.0):
    a, b = crit(row_in, mu_in), crit(row_out, mu_out)
    assert a[key]
    assert not b[key]
    assert a["detectable"]
    assert not b["detectable"]
    for other in LP.CRITERIA:
        if other != key:
            assert a[other], other
            assert b[other], other
    return a, b


def test_base_system_passes_all_four():
    out = crit(base_row())
    assert all(out[c] for c in LP.CRITERIA)
    assert out["detectable"]
    assert out["resolved"]


def test_snr_boundary():
    lo, hi = 20.0, 30.0  # source magnitudes bracketing S/N = 20
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        row = base_row(**{f"mag_source_unlensed_{b}": mid for b in BANDS})
        lo, hi = (mid, hi) if crit(row)["snr_source"] > 20.0 else (lo, mid)
    inside = base_row(**{f"mag_source_unlensed_{b}": lo - 1e-6 for b in BANDS})
    outside = base_row(**{f"mag_source_unlensed_{b}": hi + 1e-6 for b in BANDS})
    a, _b = _flip(inside, outside, "pass_snr")
    assert a["snr_source"] == pytest.approx(20.0, rel=1e-5)


def test_magnification_boundary():
    _flip(base_row(), base_row(), "pass_magnification", mu_in=3.0 + 1e-6, mu_out=3.0)


def test_arcs_resolved_boundary():
    """mu r_s > FWHM (strict): r_s just above and at FWHM / mu, with theta_E resolved."""
    mu, fw = 6.0, 1.0
    rs = fw / mu
    _flip(
        base_row(R_sersic_source=rs * (1 + 1e-6)),
        base_row(R_sersic_source=rs),
        "pass_arcs_resolved",
    )


def test_theta_E_resolved_boundary():
    """2 theta_E^2 >= 4 r_s^2 + FWHM^2 (LensPop's bfac = rfac = 2), not the looser
    theta_E^2 > r_s^2 + (FWHM/2)^2."""
    rs, fw = 0.5, 1.0
    th = math.sqrt((4 * rs**2 + fw**2) / 2)
    _flip(
        base_row(theta_E=th * (1 + 1e-9)),
        base_row(theta_E=th * (1 - 1e-6)),
        "pass_theta_E_resolved",
    )
    # the old, looser rule would have called this one resolved
    th_old = 1.01 * math.sqrt(rs**2 + (fw / 2) ** 2)
    assert not crit(base_row(theta_E=th_old))["pass_theta_E_resolved"]


def test_best_band_is_judged_by_its_own_fwhm():
    """The band with the best S/N among arc-resolving bands decides, with its own seeing."""
    row = base_row(**{f"psf_fwhm_{b}": 1.6 for b in BANDS})
    row["psf_fwhm_i"] = 0.8
    row["mag_source_unlensed_i"] = 22.5  # brightest and sharpest: the best band
    out = crit(row)
    assert out["snr_band"] == "i"
    assert out["fwhm_detection"] == 0.8
    # an unresolved band is ranked by its third S/N (0 for a single region) and loses
    row = base_row(R_sersic_source=0.2, theta_E=1.5, **{f"psf_fwhm_{b}": 1.5 for b in BANDS})
    row["psf_fwhm_g"] = 1.0
    row["mag_source_unlensed_r"] = 21.0  # brighter in r, but mu r_s = 1.2 < 1.5 there
    out = crit(row)
    assert out["snr_band"] == "g"
    assert out["pass_arcs_resolved"]


# -------------------------------------------------------------------------------------------
# LensPop's seeing rule (lenspop-des)
# -------------------------------------------------------------------------------------------


def test_observing_rule_strategies():
    rule = LP.observing_rule(load_survey("lenspop-des"))
    assert rule is not None
    assert rule.strategy == "optimal-coadd"
    assert rule.bands == ("g", "r", "i")
    assert LP.observing_rule(SURVEY) is None
    fw = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7])
    # floor = min(sqrt(2 theta^2 - 2 r_s^2), mu r_s): PSFfloor with bfac = rfac = 2
    th, rs, mu = 1.0, 0.5, 4.0
    floor = min(math.sqrt(2 * th**2 - 2 * rs**2), mu * rs)
    np.testing.assert_array_equal(rule.accept(fw, th, rs, mu), fw[fw < floor])
    np.testing.assert_array_equal(rule.accept(fw, th, rs, 2.0), fw[fw < 1.0])
    assert rule.accept(fw, 0.3, 0.5, 4.0).size == 0
    full = LP.ObservingRule("full-coadd", rule.bands, 10, rule.seeing_quantiles)
    best = LP.ObservingRule("best-epoch", rule.bands, 10, rule.seeing_quantiles)
    np.testing.assert_array_equal(full.accept(fw, th, rs, mu), fw)
    np.testing.assert_array_equal(best.accept(fw[::-1], th, rs, mu), [0.8])
    draws = np.concatenate([rule.draw(np.random.default_rng(i), "i") for i in range(300)])
    q = np.asarray(rule.seeing_quantiles["i"])
    assert q[0] <= draws.min()
    assert draws.max() <= q[-1]
    assert np.median(draws) == pytest.approx(q[20], rel=0.03)


def test_lenspop_des_rows_use_the_rule_and_are_pure():
    survey = load_survey("lenspop-des")
    cfg = SamplerSettings.load()
    cand = free_candidates(400, np.random.default_rng(5), survey, Planck18)
    rows = [r for r in records(cand) if r["theta_E"] > 1.0][:25]
    for row in rows:
        grid = row_grid(row, survey, NPIX, 3)
        a = lensing_truth(row, survey, NPIX, cfg, grid=grid)
        b = lensing_truth(dict(row), survey, NPIX, cfg, grid=grid)
        assert a == b  # the exposures drawn depend on the row only
        assert a["snr_band"] in ("g", "r", "i")
        if a["fwhm_detection"] > 0:
            rs, th, mu = row["R_sersic_source"], row["theta_E"], a["magnification"]
            # the optimal coadd keeps exposures sharper than both floors
            assert a["fwhm_detection"] < min(math.sqrt(max(2 * th**2 - 2 * rs**2, 0)), mu * rs)
            assert a["pass_arcs_resolved"]


# -------------------------------------------------------------------------------------------
# the sampler's cheap cuts never reject a detectable system
# -------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["des-y3", "lenspop-des"])
def test_cheap_cuts_reject_no_detectable_system(name):
    survey = load_survey(name)
    cfg = SamplerSettings.load()
    cand = free_candidates(6000, np.random.default_rng(11), survey, Planck18)
    cand = cand[cand["theta_E"] > 0.6].reset_index(drop=True)  # enrich: any subset must hold
    maybe = may_be_detectable(cand, survey)
    det = np.array(
        [lensing_truth(r, survey, 100, cfg)["detectable"] for r in records(cand)], dtype=bool
    )
    assert det.sum() >= 5
    assert not (det & ~maybe).any()


def test_criteria_columns_in_every_lens_table():
    import simlens

    t = simlens.Simulator("des-y3", npix=48).sample_lenses(3, rng=0)
    for c in (*LP.CRITERIA, "fwhm_detection", "snr_band", "resolved", "detectable"):
        assert c in t.columns
    assert isinstance(t, pd.DataFrame)
