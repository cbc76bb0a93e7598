"""SED colours and K-corrections measured against a direct skypy/speclite calculation."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from astropy.cosmology import Planck18

from simlens.errors import SimlensValueError
from simlens.physics import sed


@pytest.fixture(scope="module")
def kcorrect():
    with warnings.catch_warnings():
        # skypy's package init imports astropy's deprecated TestRunner
        warnings.simplefilter("ignore")
        from skypy.galaxies.spectrum import kcorrect

    return kcorrect


def direct(kcorrect, template, z):
    """skypy's own apparent magnitudes (speclite, no interpolation) for unit stellar mass."""
    c = sed.template_coefficients(template)
    z = np.atleast_1d(z)
    return kcorrect.apparent_magnitudes(
        np.tile(c, (z.size, 1)), z, list(sed.FILTERS), Planck18, resolution=0
    )


def direct_abs_r(kcorrect, template):
    c = sed.template_coefficients(template)
    return float(np.ravel(kcorrect.absolute_magnitudes(c[None, :], ["sdss2010-r"]))[0])


def test_templates_listed():
    assert set(sed.TEMPLATES) >= {"passive", "star-forming"}
    assert sed.BANDS == ("g", "r", "i", "z")


@pytest.mark.parametrize("template", sed.TEMPLATES)
def test_magnitudes_match_direct_skypy_calculation(kcorrect, template):
    # Below z = 1.7 the IGM (our addition) does not reach the DECam g band, so skypy's
    # kcorrect.apparent_magnitudes is an independent reference for K-correction + distance.
    z = np.random.default_rng(0).uniform(0.01, 1.7, 150)
    ref = direct(kcorrect, template, z)
    m_abs = direct_abs_r(kcorrect, template)
    got = sed.apparent_magnitudes(template, z, m_abs, Planck18)
    np.testing.assert_allclose(got, ref, atol=0.005)
    col = sed.colours(template, z)
    np.testing.assert_allclose(col, ref - ref[:, 1:2], atol=0.005)


def test_interpolation_matches_grid_free_computation(kcorrect):
    # off-grid redshifts at high z: compare with speclite on the IGM-attenuated spectrum
    import speclite.filters

    wave, flux = sed._kcorrect()
    c = sed.template_coefficients("star-forming")
    spec = c @ flux
    filters = speclite.filters.load_filters(*sed.FILTERS)
    for z in (2.0013, 2.9017, 3.7771):
        trans = sed._igm_transmission(0, wave.size, 1.0 + z)
        mags = np.array(
            [
                -2.5 * np.log10(f.create_shifted(z).get_ab_maggies(spec * trans, wave) * (1 + z))
                for f in filters
            ]
        )
        got = sed.colours("star-forming", z)
        np.testing.assert_allclose(got, mags - mags[1], atol=0.01)


def test_igm_dims_the_blue_bands_at_high_redshift(kcorrect):
    z = 3.0
    no_igm = direct(kcorrect, "star-forming", z)[0]
    got = sed.colours("star-forming", z)
    assert got[0] - (no_igm[0] - no_igm[1]) > 0.1  # Lyman-alpha forest in g (measured 0.155)
    assert sed.colours("star-forming", 5.9)[0] > 2  # g dropout (measured 2.94: red leak of g)


def test_passive_red_sequence_colours():
    gr = sed.colours("passive", [0.3, 0.4, 0.5])[:, 0]
    # old passive populations: observed g-r ~ 1.5 at z = 0.3 rising to ~ 1.75 at z = 0.4-0.5
    assert 1.4 < gr[0] < 1.65
    assert 1.6 < gr[1] < 1.9
    rs = sed.colours("red-sequence", 0.4)[0]
    assert 1.4 < rs < 1.7
    # rest frame: passive is redder than the mean red sequence, which is redder than blue
    assert gr[1] > rs > sed.colours("star-forming", 0.4)[0]


def test_star_forming_colours_at_source_redshifts():
    gr = sed.colours("star-forming", np.linspace(1.0, 2.0, 11))[:, 0]
    assert np.all((gr > 0.1) & (gr < 0.6))


def test_shapes_broadcast_and_errors():
    out = sed.apparent_magnitudes("passive", np.array([0.3, 0.5]), -22.0, Planck18)
    assert out.shape == (2, 4)
    assert sed.colours("passive", 0.3).shape == (4,)
    assert np.all(sed.colours("passive", [0.0, 1.0])[:, 1] == 0.0)
    with pytest.raises(SimlensValueError, match="template"):
        sed.colours("spiral", 0.3)
    with pytest.raises(SimlensValueError, match=r"z: .*\[0, 6\]"):
        sed.colours("passive", 6.5)
    with pytest.raises(SimlensValueError, match=r"z: .*\(0, 6\]"):
        sed.apparent_magnitudes("passive", 0.0, -22.0, Planck18)
    with pytest.raises(SimlensValueError, match="abs_mag"):
        sed.apparent_magnitudes("passive", 0.3, np.nan, Planck18)
    with pytest.raises(SimlensValueError, match="abs_band"):
        sed.apparent_magnitudes("passive", 0.3, -22.0, Planck18, abs_band="nope-x")


def test_abs_band_changes_only_the_normalisation():
    z = np.array([0.3, 0.8])
    a = sed.apparent_magnitudes("passive", z, -22.0, Planck18, abs_band="sdss2010-r")
    b = sed.apparent_magnitudes("passive", z, -22.0, Planck18, abs_band="sdss2010-g")
    diff = a - b
    np.testing.assert_allclose(diff, diff[0, 0])  # a constant: the rest-frame g-r colour
    assert 0.6 < diff[0, 0] < 0.9  # measured 0.750


def test_fast_on_many_objects():
    r = np.random.default_rng(1)
    z = r.uniform(0.05, 3.0, 100_000)
    m = r.normal(-22, 1, 100_000)
    sed.apparent_magnitudes("passive", z[:10], m[:10], Planck18)  # warm the caches
    t0 = time.perf_counter()
    sed.apparent_magnitudes("passive", z, m, Planck18)
    sed.colours("star-forming", z)
    assert time.perf_counter() - t0 < 0.5  # measured ~0.04 s; generous for loaded CI machines


# -------------------------------------------------------------------------------------------
# per-source SEDs (source_colour = "mixture")
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [0.3, 1.0, 1.8])
def test_source_coefficients_follow_skypys_dirichlet_model(z):
    """Same distribution as skypy's dirichlet_coefficients (global numpy state there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skypy.galaxies.spectrum import dirichlet_coefficients
    a0, a1, w, z1, _ = sed._mixture()
    n = 20000
    ours = sed.source_coefficients(np.full(n, z), np.random.default_rng(1))
    state = np.random.get_state()  # noqa: NPY002 (skypy draws from the global state)
    try:
        np.random.seed(2)  # noqa: NPY002
        ref = dirichlet_coefficients(np.full(n, z), a0, a1, z1, w)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)
    se = np.sqrt(ours.var(axis=0) / n + ref.var(axis=0) / n)
    assert np.all(np.abs(ours.mean(axis=0) - ref.mean(axis=0)) < 5 * se + 1e-12)
    np.testing.assert_allclose(ours.std(axis=0), ref.std(axis=0), rtol=0.05)


def test_mixture_colours_match_skypy_per_source(kcorrect):
    """colours_from_coefficients against skypy's apparent magnitudes, source by source."""
    rng = np.random.default_rng(3)
    z = rng.uniform(0.05, 1.7, 60)
    c = sed.source_coefficients(z, rng)
    ref = kcorrect.apparent_magnitudes(c, z, list(sed.FILTERS), Planck18, resolution=0)
    np.testing.assert_allclose(sed.colours_from_coefficients(c, z), ref - ref[:, 1:2], atol=0.005)


def test_mixture_spreads_colours_around_the_star_forming_mean():
    rng = np.random.default_rng(4)
    z = np.full(5000, 1.0)
    col = sed.colours_from_coefficients(sed.source_coefficients(z, rng), z)
    mean = sed.colours("star-forming", 1.0)
    np.testing.assert_allclose(np.median(col, axis=0), mean, atol=0.05)
    assert 0.08 < col[:, 0].std() < 0.4  # g - r: a spread, not one colour
    with pytest.raises(SimlensValueError, match="coefficients"):
        sed.colours_from_coefficients(np.ones((3, 4)), np.ones(3))
