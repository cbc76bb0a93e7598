"""The lensed source's own PSF (``psf_scale_source``), measured on rendered images.

The paper's real-galaxy PSF test keeps the lens galaxy at its own PSF and re-convolves only the
simulated source. Checked with code independent of the renderer: the lens-light-only image does
not change; the source-only image's second moments grow by the Gaussian PSF's variance
``sigma^2 (s^2 - 1)`` per axis (moments of a convolution add) and its flux is kept; an unused
column leaves tables and images as they were.
"""

import math

import numpy as np
import pytest

from simlens import Simulator
from simlens.errors import SimlensValueError
from simlens.physics.psf import FWHM_TO_SIGMA


@pytest.fixture(scope="module")
def sim():
    return Simulator("des-sv")  # Gaussian PSF: the paper's training PSF


@pytest.fixture(scope="module")
def lens(sim):
    t = sim.sample_lenses(1, rng=11, theta_E=1.6, mag_source_g=20.5, neighbours=False)
    for b in sim.bands:
        t[f"mag_star_{b}"] = np.nan
    return t


def _only(sim, t, keep):
    """The row with only the lens light ("lens") or only the lensed source ("source")."""
    t = t.copy()
    for b in sim.bands:
        if keep == "lens":
            t[f"mag_source_unlensed_{b}"] = np.nan
        else:
            t[f"mag_lens_{b}"] = np.nan
    return t


def _moments(img, scale):
    """Flux and second central moments (arcsec^2) along x and y of one image plane."""
    n = img.shape[0]
    c = (np.arange(n) - (n - 1) / 2) * scale
    f = img.sum()
    mx, my = (img.sum(0) * c).sum() / f, (img.sum(1) * c).sum() / f
    vx = (img.sum(0) * (c - mx) ** 2).sum() / f
    vy = (img.sum(1) * (c - my) ** 2).sum() / f
    return f, vx, vy


def test_unused_column_changes_nothing(sim, lens):
    assert "psf_scale_source" not in lens.columns
    base = sim.render(lens, noise=True)
    same = sim.render(lens.assign(psf_scale_source=1.0), noise=True)
    nan = sim.render(lens.assign(psf_scale_source=np.nan), noise=True)
    np.testing.assert_array_equal(base, same)
    np.testing.assert_array_equal(base, nan)
    # vary to 1.0 renders the image bit for bit as before
    np.testing.assert_array_equal(base, sim.render(sim.vary(lens, "psf_scale_source", 1.0)))


@pytest.mark.parametrize("scale", [0.6, 2.0, 3.0])
def test_lens_light_keeps_its_psf(sim, lens, scale):
    only_lens = _only(sim, lens, "lens")
    a = sim.render(only_lens, noise=False)
    b = sim.render(sim.vary(only_lens, "psf_scale_source", scale), noise=False)
    np.testing.assert_array_equal(a, b)
    # the whole image at the varied source PSF is lens (unchanged) + source (varied)
    full = sim.render(sim.vary(lens, "psf_scale_source", scale), noise=False)
    src = sim.render(sim.vary(_only(sim, lens, "source"), "psf_scale_source", scale), noise=False)
    np.testing.assert_allclose(full, a + src, atol=1e-4 * float(full.max()))


@pytest.mark.parametrize("scale", [0.6, 1.5, 3.0])
def test_source_psf_variance_adds(sim, lens, scale):
    """Per band: var(s) - var(1) = sigma_psf^2 (s^2 - 1) to 0.1% (measured: < 1e-4)."""
    src = _only(sim, lens, "source")
    ps = sim.survey.pixel_scale
    one = sim.render(src, noise=False)[0]
    scaled = sim.render(sim.vary(src, "psf_scale_source", scale), noise=False)[0]
    for j, b in enumerate(sim.bands):
        sig = float(src[f"psf_fwhm_{b}"].iloc[0]) * FWHM_TO_SIGMA
        f1, vx1, vy1 = _moments(one[..., j].astype(np.float64), ps)
        fs, vxs, vys = _moments(scaled[..., j].astype(np.float64), ps)
        want = sig**2 * (scale**2 - 1.0)
        assert fs == pytest.approx(f1, rel=2e-3), b
        assert vxs - vx1 == pytest.approx(want, rel=1e-3), (b, "x")
        assert vys - vy1 == pytest.approx(want, rel=1e-3), (b, "y")
        # FWHM of the PSF the source sees, from the measured variance: scale x the row's
        assert math.sqrt((vxs - vx1) / (scale**2 - 1.0)) / sig == pytest.approx(1.0, abs=1e-3)


def test_nonlenses_do_not_change(sim):
    t = sim.sample_nonlenses(2, rng=3, kind="elliptical")
    a = sim.render(t, noise=True)
    np.testing.assert_array_equal(a, sim.render(sim.vary(t, "psf_scale_source", 2.5)))


def test_bad_values_are_named(sim, lens):
    with pytest.raises(SimlensValueError, match="psf_scale_source"):
        sim.vary(lens, "psf_scale_source", 0.0)
    with pytest.raises(SimlensValueError, match="psf_scale_source"):
        sim.render(lens.assign(psf_scale_source=-1.0))
