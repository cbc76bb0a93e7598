"""Population ingredients measured against independent code (astropy, scipy, lenstronomy)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from astropy import constants
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM, LambdaCDM, Planck18
from scipy import integrate, stats

from simlens._catalogs import load_toml
from simlens.errors import SimlensValueError
from simlens.population import relations as pop

SEED = 20150811


def rng(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- catalogue


def test_every_catalogue_entry_has_value_unit_source():
    table = load_toml("population.toml")

    def leaves(node, path=""):
        for k, v in node.items():
            if isinstance(v, dict) and "value" not in v:
                yield from leaves(v, f"{path}{k}.")
            else:
                yield f"{path}{k}", v

    entries = list(leaves(table))
    assert len(entries) > 30
    for name, entry in entries:
        assert isinstance(entry, dict), name
        assert set(entry) == {"value", "unit", "source"}, name
        assert str(entry["source"]).strip(), name


def test_parameters_frozen_and_validated():
    p = pop.population_parameters()
    assert p is pop.population_parameters()
    with pytest.raises(AttributeError):
        p.vdf_alpha = 3.0  # type: ignore[misc]
    table = copy.deepcopy(load_toml("population.toml"))
    table["vdf"]["sigma_star"]["value"] = -1.0
    with pytest.raises(SimlensValueError, match="sigma_star"):
        pop.load_population_parameters(table)
    del table["vdf"]["sigma_star"]["source"]
    with pytest.raises(SimlensValueError, match="source"):
        pop.load_population_parameters(table)


# ---------------------------------------------------------------------------- distances


@pytest.mark.parametrize(
    "cosmo",
    [Planck18, FlatLambdaCDM(H0=70, Om0=0.3), LambdaCDM(70, 0.3, 0.6), LambdaCDM(70, 0.3, 0.8)],
    ids=["planck18", "flat", "open", "closed"],
)
def test_distance_table_matches_astropy(cosmo):
    t = pop.distances(cosmo)
    z = np.linspace(0.005, 9.9, 301)
    np.testing.assert_allclose(
        t.angular_diameter_distance(z), cosmo.angular_diameter_distance(z).value, rtol=2e-6
    )
    np.testing.assert_allclose(t.distmod(z), cosmo.distmod(z).value, atol=1e-5)
    np.testing.assert_allclose(
        t.differential_comoving_volume(z),
        cosmo.differential_comoving_volume(z).value,
        rtol=5e-6,
    )
    z1, z2 = np.linspace(0.1, 2.0, 40), np.linspace(0.3, 6.0, 40)
    np.testing.assert_allclose(
        t.angular_diameter_distance_z1z2(z1, z2),
        cosmo.angular_diameter_distance(z1, z2).value,
        rtol=2e-6,
    )
    assert pop.distances(cosmo) is t  # built once


def test_distance_table_range_checked():
    with pytest.raises(SimlensValueError, match=r"z: .*\[0, 10\]"):
        pop.distances(Planck18).angular_diameter_distance(10.5)
    with pytest.raises(SimlensValueError, match="cosmology"):
        pop.distances("Planck18")


# ---------------------------------------------------------------------------- VDF


def test_vdf_matches_choi_formula_and_normalises():
    s = np.array([100.0, 161.0, 250.0])
    x = s / 161.0
    expected = 8e-3 * x**2.32 * np.exp(-(x**2.67)) * 2.67 / math.gamma(2.32 / 2.67) / s
    np.testing.assert_allclose(pop.vdf_dn_dsigma(s), expected, rtol=1e-12)
    total, _ = integrate.quad(lambda v: float(pop.vdf_dn_dsigma(v)), 1e-3, 2000, limit=200)
    assert total == pytest.approx(8e-3, rel=1e-6)  # phi_star is the total number density
    norm, _ = integrate.quad(lambda v: float(pop.vdf_pdf(v)), 100, 400)
    assert norm == pytest.approx(1.0, rel=1e-6)
    assert pop.vdf_pdf(99.0) == 0.0


@pytest.mark.parametrize("power", [0.0, 4.0])
def test_velocity_dispersion_sample_follows_pdf(power):
    draws = pop.sample_velocity_dispersion(20000, rng(), weight_power=power)
    assert draws.min() >= 100
    assert draws.max() <= 400
    grid = np.linspace(100, 400, 3001)
    cdf = integrate.cumulative_trapezoid(pop.vdf_pdf(grid, weight_power=power), grid, initial=0)
    ks = stats.kstest(draws, lambda v: np.interp(v, grid, cdf))
    assert ks.pvalue > 0.01


def test_sampling_is_deterministic_and_uses_only_the_generator():
    a = pop.sample_velocity_dispersion(50, rng(1))
    b = pop.sample_velocity_dispersion(50, rng(1))
    np.testing.assert_array_equal(a, b)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state must not move)
    pop.sample_sources(10, rng(2))
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    with pytest.raises(SimlensValueError, match="rng"):
        pop.sample_velocity_dispersion(5, 0)  # type: ignore[arg-type]
    with pytest.raises(SimlensValueError, match="n:"):
        pop.sample_velocity_dispersion(-1, rng())
    with pytest.raises(SimlensValueError, match="sigma_min"):
        pop.sample_velocity_dispersion(5, rng(), sigma_min=300, sigma_max=200)


# ---------------------------------------------------------------------------- lens redshift


def test_lens_redshift_follows_comoving_volume():
    draws = pop.sample_lens_redshift(20000, rng(), Planck18, z_max=2.0)
    assert draws.min() >= 0
    assert draws.max() <= 2.0
    grid = np.linspace(0, 2, 2001)
    dv = Planck18.differential_comoving_volume(grid).value  # astropy, independent of our table
    cdf = integrate.cumulative_trapezoid(dv, grid, initial=0)
    cdf /= cdf[-1]
    assert stats.kstest(draws, lambda v: np.interp(v, grid, cdf)).pvalue > 0.01


# ---------------------------------------------------------------------------- Einstein radius


def test_einstein_radius_known_value():
    # independent: astropy units and distances
    sigma = 250 * u.km / u.s
    d_ls = Planck18.angular_diameter_distance(0.5, 2.0)
    d_s = Planck18.angular_diameter_distance(2.0)
    expected = (4 * np.pi * (sigma / constants.c) ** 2 * d_ls / d_s).decompose().value
    expected *= u.rad.to(u.arcsec)
    got = pop.einstein_radius(250.0, 0.5, 2.0, Planck18)
    assert got == pytest.approx(expected, rel=1e-5)
    assert got == pytest.approx(1.1416, abs=1e-3)
    assert pop.einstein_radius(250.0, 1.0, 0.8, Planck18) == 0.0
    assert pop.einstein_radius(250.0, 1.0, 1.0, Planck18) == 0.0


def test_sigma_theta_round_trip():
    r = rng()
    zl = r.uniform(0.05, 1.5, 1000)
    zs = zl + r.uniform(0.05, 3.0, 1000)
    sigma = r.uniform(80, 450, 1000)
    theta = pop.einstein_radius(sigma, zl, zs, Planck18)
    np.testing.assert_allclose(pop.sigma_from_einstein_radius(theta, zl, zs, Planck18), sigma)
    assert pop.sigma_from_einstein_radius(0.0, 0.5, 0.3, Planck18) == 0.0
    with pytest.raises(SimlensValueError, match="z_source"):
        pop.sigma_from_einstein_radius(1.0, 0.5, 0.3, Planck18)
    with pytest.raises(SimlensValueError, match="theta_E"):
        pop.sigma_from_einstein_radius(-1.0, 0.5, 2.0, Planck18)


# ---------------------------------------------------------------------------- lens light, shapes


def test_lens_light_mean_relation_and_scatter():
    sigma = np.full(40000, 200.0)
    z = np.full(40000, 0.4)
    mag0, r0 = pop.lens_light_from_sigma(sigma[:1], z[:1], rng(), Planck18, scatter=False)
    # invert independently: the mean magnitude must reproduce log10 sigma on the quadratic
    c0, c1, c2 = -2.97, -0.37, -0.006
    assert c0 + c1 * mag0[0] + c2 * mag0[0] ** 2 == pytest.approx(math.log10(200.0), abs=1e-10)
    assert -23.0 < mag0[0] < -21.5  # brighter galaxies have larger sigma
    r_kpc = 10 ** (2.46 - 2.79 * math.log10(200) + 0.84 * math.log10(200) ** 2)
    d_a = Planck18.angular_diameter_distance(0.4).to_value(u.kpc)
    assert r0[0] == pytest.approx(r_kpc / d_a * u.rad.to(u.arcsec), rel=1e-5)
    mag, r = pop.lens_light_from_sigma(sigma, z, rng(), Planck18)
    assert np.std(mag) == pytest.approx(0.0625, rel=0.03)
    assert np.std(np.log10(r)) == pytest.approx(0.11, rel=0.03)
    m300, _ = pop.lens_light_from_sigma(300.0, 0.4, rng(), Planck18, scatter=False)
    assert m300 < mag0[0]


def test_axis_ratios_truncated_rayleigh():
    sigma = np.full(30000, 250.0)
    q = pop.lens_axis_ratio(sigma, rng())
    assert q.min() >= 0.2
    assert q.max() <= 1.0
    scale = 0.378 - 0.000572 * 250.0
    f_max = stats.rayleigh.cdf(0.8, scale=scale)
    ks = stats.kstest(1 - q, lambda x: stats.rayleigh.cdf(x, scale=scale) / f_max)
    assert ks.pvalue > 0.01
    qs = pop.source_axis_ratio(30000, rng(3))
    assert qs.min() >= 0.2
    assert qs.max() <= 1.0
    f_max = stats.rayleigh.cdf(0.8, scale=0.3)
    ks = stats.kstest(1 - qs, lambda x: stats.rayleigh.cdf(x, scale=0.3) / f_max)
    assert ks.pvalue > 0.01
    assert np.mean(qs == 0.2) < 1e-3  # no pile-up at the bound


def test_ellipticity_matches_lenstronomy():
    from lenstronomy.Util.param_util import ellipticity2phi_q, phi_q2_ellipticity

    r = rng()
    q = r.uniform(0.2, 1.0, 200)
    phi = r.uniform(-np.pi, np.pi, 200)
    e1, e2 = pop.ellipticity_components(q, phi)
    ref = np.array([phi_q2_ellipticity(p, qq) for p, qq in zip(phi, q)])
    np.testing.assert_allclose(e1, ref[:, 0], atol=1e-14)
    np.testing.assert_allclose(e2, ref[:, 1], atol=1e-14)
    q2, phi2 = pop.axis_ratio_angle(e1, e2)
    ref_inv = np.array([ellipticity2phi_q(a, b) for a, b in zip(e1, e2)])
    np.testing.assert_allclose(q2, ref_inv[:, 1], atol=1e-12)
    np.testing.assert_allclose(phi2, ref_inv[:, 0], atol=1e-12)
    np.testing.assert_allclose(q2, q, atol=1e-12)
    with pytest.raises(SimlensValueError, match="q"):
        pop.ellipticity_components(0.0, 0.1)


# ---------------------------------------------------------------------------- sources


def test_source_magnitudes_follow_power_law_counts():
    s = pop.sample_sources(30000, rng(), mag_min=22.0, mag_max=27.0)
    m = s["mag_i"]
    assert m.min() >= 22
    assert m.max() <= 27
    # fitted slope of log N per 0.25 mag bin
    counts, edges = np.histogram(m, bins=np.arange(22, 27.01, 0.25))
    centres = 0.5 * (edges[1:] + edges[:-1])
    slope = np.polyfit(centres, np.log10(counts), 1)[0]
    assert slope == pytest.approx(0.33, abs=0.02)


def test_source_redshift_given_magnitude():
    n = 20000
    s = pop.sample_sources(n, rng(), mag_min=24.0, mag_max=24.001)
    z0 = 0.05980 * 24.0 - 1.08457
    ks = stats.kstest(s["z_source"], stats.gamma(a=3, scale=z0).cdf)
    assert ks.pvalue > 0.01
    # truncation below: per-object z_min
    zmin = np.linspace(0.5, 2.0, n)
    t = pop.sample_sources(n, rng(), z_min=zmin)
    assert np.all(t["z_source"] >= zmin)
    assert np.all(t["z_source"] <= 6.0)
    with pytest.raises(SimlensValueError, match="z_min"):
        pop.sample_sources(3, rng(), z_min=np.zeros(4))


@pytest.mark.parametrize(("m1", "m2", "median"), [(22.0, 22.5, 0.66), (24.5, 25.0, 1.06)])
def test_source_redshift_medians_match_cosmos(m1, m2, median):
    """Deep-field reference: COSMOS 30-band photo-z medians (Ilbert et al. 2009, abstract)."""
    s = pop.sample_sources(40000, rng(), mag_min=m1, mag_max=m2)
    assert np.median(s["z_source"]) == pytest.approx(median, abs=0.015)


def test_source_size_relation():
    m = np.array([24.1, 25.0])
    z = np.array([1.85, 1.85])
    r = pop.source_size(m, z, rng(), Planck18, scatter=False)
    # independent evaluation of the documented relation with astropy distances
    abs_mag = m - Planck18.distmod(z).value + 2.5 * np.log10(1 + z)
    log_r = math.log10(2.0) - 0.4 * 0.27 * (abs_mag + 21.0) - 1.2 * np.log10((1 + z) / 3.0)
    d_a = Planck18.angular_diameter_distance(z).to_value(u.kpc)
    np.testing.assert_allclose(r, 10**log_r / d_a * u.rad.to(u.arcsec), rtol=1e-5)
    assert 0.1 < r[0] < 0.6  # arcsec: median LensPop source at its median redshift
    rs = pop.source_size(np.full(20000, 24.1), np.full(20000, 1.85), rng(), Planck18)
    assert np.std(np.log10(rs)) == pytest.approx(0.26, rel=0.03)


def test_functions_are_pure():
    sigma = np.array([150.0, 250.0])
    z = np.array([0.3, 0.6])
    before = (sigma.copy(), z.copy())
    pop.lens_light_from_sigma(sigma, z, rng(), Planck18)
    pop.einstein_radius(sigma, z, z + 1, Planck18)
    np.testing.assert_array_equal(sigma, before[0])
    np.testing.assert_array_equal(z, before[1])
    a = pop.lens_light_from_sigma(sigma, z, rng(5), Planck18)
    b = pop.lens_light_from_sigma(sigma, z, rng(5), Planck18)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
