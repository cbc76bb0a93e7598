"""Per-image PSF draws and galsim PSF profiles."""

import math

import numpy as np
import pytest

from simlens import load_survey
from simlens.physics.psf import galsim_psf, psf_fwhm_draws, psf_transfer


def test_fwhm_distribution_around_preset():
    s = load_survey("des-y3")
    f = psf_fwhm_draws(s, np.ones(20000), np.random.default_rng(1))
    med = np.median(f, axis=0)
    np.testing.assert_allclose(med, [1.12, 0.96, 0.88, 0.84], rtol=0.01)
    # lognormal width as configured, and a varying (not constant) seeing
    np.testing.assert_allclose(np.log(f).std(axis=0), s.psf_log_scatter, rtol=0.03)
    # seeing correlated across bands
    c = np.corrcoef(np.log(f).T)
    assert c[0, 1] == pytest.approx(s.psf_band_correlation, abs=0.03)


def test_mean_statistic_for_des_sv_and_scaling():
    s = load_survey("des-sv")
    f = psf_fwhm_draws(s, np.full(40000, 1.0), np.random.default_rng(2))
    np.testing.assert_allclose(f.mean(axis=0)[:3], [1.27, 1.08, 0.98], rtol=0.005)
    g = psf_fwhm_draws(s, np.full(40000, 2.0), np.random.default_rng(2))
    np.testing.assert_allclose(g, 2.0 * f)


@pytest.mark.parametrize("profile", ["gaussian", "moffat"])
def test_galsim_psf_has_requested_fwhm(profile):
    p = galsim_psf(profile, 0.9)
    assert p.calculateFWHM() == pytest.approx(0.9, rel=1e-3)
    assert p.flux == pytest.approx(1.0)


@pytest.mark.parametrize("profile", ["gaussian", "moffat"])
def test_transfer_function_is_normalised_and_matches_profile(profile):
    n, scale = 64, 0.263
    tf = psf_transfer(profile, 1.0, n, scale)
    assert abs(tf[0, 0]) == pytest.approx(1.0, rel=2e-3)
    # the inverse transform is the PSF centred on pixel 0: its FWHM along x
    k = np.fft.irfft2(tf, s=(n, n))
    prof = np.fft.fftshift(k)[n // 2, :]
    half = prof.max() / 2
    above = np.flatnonzero(prof >= half)
    # linear interpolation of the two half-maximum crossings
    lo, hi = above[0], above[-1]
    x_lo = lo - 1 + (half - prof[lo - 1]) / (prof[lo] - prof[lo - 1])
    x_hi = hi + (prof[hi] - half) / (prof[hi] - prof[hi + 1])
    assert (x_hi - x_lo) * scale == pytest.approx(1.0, rel=0.03)


def test_bad_fwhm():
    with pytest.raises(ValueError, match="fwhm"):
        galsim_psf("gaussian", -1.0)
    with pytest.raises(ValueError, match="psf_profile"):
        galsim_psf("airy", 1.0)
    assert math.isfinite(galsim_psf("gaussian", 0.5).calculateFWHM())


@pytest.mark.parametrize("beta", [2.0, 3.0, 4.765])
def test_moffat_transfer_matches_galsim(beta):
    """The analytic Moffat transform (and its tabulated use in psf_transfer) == galsim kValue."""
    import galsim

    from simlens.physics.psf import moffat_transfer, psf_transfer

    m = galsim.Moffat(beta=beta, fwhm=0.9)
    f = np.linspace(0.0, 3.0, 61)  # cycles / arcsec
    ref = np.array([m.kValue(2 * np.pi * x, 0.0).real for x in f])
    np.testing.assert_allclose(moffat_transfer(f, 0.9, beta), ref, atol=1e-12)
    n, ps = 96, 0.263
    fx, fy = np.fft.rfftfreq(n)[None, :], np.fft.fftfreq(n)[:, None]
    grid = np.hypot(fx, fy) / ps
    tab = psf_transfer("moffat", 0.9, n, ps, beta=beta)
    some = [(0, 0), (3, 5), (40, 20), (70, 47)]
    for i, j in some:
        assert tab[i, j] == pytest.approx(m.kValue(2 * np.pi * grid[i, j], 0.0).real, abs=1e-6)
