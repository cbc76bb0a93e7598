"""LensPop's own source population (simlens.population.lenspop_sources, issue 12).

Checked against LensPop's released code and numbers (github.com/tcollett/LensPop): the size law
``RofMz`` written out here independently with astropy distances, the catalogue's own facts
(34,331 galaxies in 0.2 x 0.2 deg, a third fainter than i = 27), and LensPop's full-sky count of
strong lenses (``ModelAll.py``: nall = 12,530,000 lenses with the lsst sources over its 42,000 deg^2
sky, i.e. ~298 per deg^2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM, Planck18
from scipy import stats

from simlens import yields as Y
from simlens.errors import SimlensValueError
from simlens.population import lenspop_sources as plp
from simlens.population import relations as pop
from simlens.sampling import truth as sampling
from simlens.survey import load_survey


def test_catalogue_is_lenspops_released_one():
    cat = plp.lenspop_source_catalogue()
    assert len(cat) == 34331
    assert list(cat.columns) == ["z_source", "mag_g", "mag_r", "mag_i", "mag_z", "abs_mag_r"]
    # LensPop: "lsst sim has a source density of ~0.06 per square arcsecond" (0.04 deg^2 field)
    assert len(cat) / (0.04 * 3600.0**2) == pytest.approx(0.06, rel=0.15)
    assert (cat["mag_i"] > 27).mean() == pytest.approx(0.331, abs=0.002)
    assert plp.lenspop_source_density() == pytest.approx(0.06 * 3600.0**2)


def test_size_law_is_lenspops_rofmz():
    m = np.array([-22.0, -19.3, -17.0, -15.5])
    z = np.array([0.3, 1.35, 2.5, 5.0])
    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    got = plp.lenspop_source_size(m, z, np.random.default_rng(0), cosmo, scatter=False)
    r_kpc = 10 ** (-(m + 18.0) / 4.0) * ((1.0 + z) / 1.6) ** -1.2
    expected = r_kpc / cosmo.angular_diameter_distance(z).to_value("kpc") * 206264.806
    assert np.allclose(got, expected, rtol=1e-4)
    # 0.35 dex lognormal scatter (LensPop RofMz)
    g = np.random.default_rng(1)
    many = plp.lenspop_source_size(np.full(40000, -19.0), 1.0, g, cosmo)
    one = plp.lenspop_source_size(-19.0, 1.0, g, cosmo, scatter=False)
    assert np.std(np.log10(many / one)) == pytest.approx(0.35, rel=0.03)
    with pytest.raises(SimlensValueError):
        plp.lenspop_source_size(-19.0, 0.0, g, cosmo)


def test_draws_are_catalogue_rows_and_seeded():
    a = plp.sample_lenspop_sources(20000, np.random.default_rng(5))
    b = plp.sample_lenspop_sources(20000, np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    cat = plp.lenspop_source_catalogue()
    assert stats.ks_2samp(a["z_source"], cat["z_source"]).pvalue > 1e-3
    rows = set(map(tuple, cat[["z_source", "mag_i", "mag_g"]].to_numpy()))
    assert all(
        (z, i, g) in rows
        for z, i, g in zip(a["z_source"][:500], a["mag_i"][:500], a["mag_g"][:500], strict=True)
    )
    with pytest.raises(SimlensValueError):
        plp.sample_lenspop_sources(-1, np.random.default_rng(0))


def test_lens_systems_take_sources_from_the_catalogue():
    cfg = sampling.SamplerSettings.load()
    sys = sampling.draw_lens_systems(
        300, np.random.default_rng(2), Planck18, cfg, None, source_population="lenspop"
    )
    cat = plp.lenspop_source_catalogue()
    keys = set(map(tuple, cat[["z_source", "mag_i"]].to_numpy().round(3)))
    zs, mi = sys["z_source"], sys["mag_source_unlensed_i"]
    assert all((round(z, 3), round(i, 3)) in keys for z, i in zip(zs, mi, strict=True))
    assert np.all(zs > sys["z_lens"])
    # g - r from the catalogue row, not from an SED model
    gr = dict(
        zip(
            map(tuple, cat[["z_source", "mag_i"]].to_numpy().round(3)),
            cat["mag_g"] - cat["mag_r"],
            strict=False,
        )
    )
    got = sys["mag_source_unlensed_g"] - sys["mag_source_unlensed_r"]
    assert np.allclose(
        got[:50],
        [gr[(round(z, 3), round(i, 3))] for z, i in zip(zs[:50], mi[:50], strict=True)],
        atol=2e-3,
    )
    with pytest.raises(SimlensValueError):
        sampling.draw_lens_systems(
            4, np.random.default_rng(0), Planck18, cfg, None, source_population="x"
        )


def test_presets_select_their_source_population():
    assert plp.survey_source_population(load_survey("lenspop-des")) == "lenspop"
    assert plp.survey_source_population("des-y3") == "deep-field"
    assert plp.survey_source_population("des-sv") == "deep-field"
    df = sampling.sample_lenses(
        3, survey=load_survey("lenspop-des"), cosmology=Planck18, rng=4, npix=48
    )
    cat = plp.lenspop_source_catalogue()
    assert set(df["z_source"].round(4)) <= set(cat["z_source"])


def test_lenspop_strong_lens_density_matches_lenspops_count():
    # LensPop: 12.53e6 strong lenses (lsst sources) on its 42,000 deg^2 sky, (0.3, 0.7, 0.7)
    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    d = Y.lens_density(cosmo, source_population="lenspop")
    assert d.per_deg2 == pytest.approx(12.53e6 / 42000.0, rel=0.05)
    # independent Monte Carlo over the unweighted deflectors and catalogue sources
    g = np.random.default_rng(7)
    n = 300_000
    sig = pop.sample_velocity_dispersion(n, g, sigma_min=100.0, sigma_max=400.0)
    zl = pop.sample_lens_redshift(n, g, cosmo, z_max=2.0)
    zs = plp.sample_lenspop_sources(n, g)["z_source"]
    behind = zs > zl + 1e-3
    th = np.where(behind, pop.einstein_radius(sig, zl, np.where(behind, zs, zl + 1), cosmo), 0)
    th_rad = th / (180.0 / math.pi * 3600.0)
    n_vdf, _ = __import__("scipy").integrate.quad(pop.vdf_dn_dsigma, 100.0, 400.0)
    z = np.linspace(0.0, 2.0, 4001)
    vol = np.trapezoid(pop.distances(cosmo).differential_comoving_volume(z), z)
    src_per_sr = 0.06 * (180.0 / math.pi * 3600.0) ** 2
    per_sr = 0.7**3 * n_vdf * vol * src_per_sr * math.pi * np.mean(th_rad**2)
    err = np.std(th_rad**2) / np.sqrt(n) / np.mean(th_rad**2)
    assert d.per_sr == pytest.approx(per_sr, rel=4 * err)
    # a magnitude cut keeps the share of rows: 22 <= i <= 27 is ~53% of the lenses
    cut = Y.lens_density(cosmo, source_population="lenspop", mag_min=22.0, mag_max=27.0)
    assert 0.45 < cut.per_deg2 / d.per_deg2 < 0.6
    with pytest.raises(SimlensValueError):
        Y.lens_density(source_population="lenspop", mag_min=40.0, mag_max=41.0)


def test_sky_density_source_population_override_and_determinism():
    a = Y.sky_density("lenspop-des", n=512, rng=3, npix=64)
    b = Y.sky_density("lenspop-des", n=512, rng=3, npix=64)
    assert (a.fraction.k, a.fraction.n_traced) == (b.fraction.k, b.fraction.n_traced)
    assert a.fraction.detectable.equals(b.fraction.detectable)
    deep = Y.sky_density("lenspop-des", n=256, rng=3, npix=64, source_population="deep-field")
    assert deep.strong_per_deg2 == Y.lens_density().per_deg2
    assert deep.density.settings["source_population"] == "deep-field"
    with pytest.raises(SimlensValueError, match="source_population"):
        Y.detectable_fraction(8, survey="lenspop-des", source_population="cosmos")
