"""Contract tests over every kind (lens, non-lens kinds, field mixture): one schema, shape,
finite pixels, fluxes equal to the magnitude columns, ranges, determinism, chunk invariance.

Fluxes are measured by summing noise-free images of large stamps (npix 240) without neighbours
and compared with the sum over components of ``10**(-0.4 (mag - 30))`` -- independent of the
renderer's code.
"""

import numpy as np
import pandas as pd
import pytest

from simlens import SimlensValueError, Simulator
from simlens.sampling.kinds import FIELD_KINDS, field_fractions
from simlens.sampling.truth import NONLENS_KINDS, SamplerSettings
from simlens.schema import required_columns

NPIX = 48
KINDS = ("lens", *NONLENS_KINDS)


@pytest.fixture(scope="module")
def sim():
    return Simulator("des-y3", npix=NPIX)


def _sample(sim, kind, n, rng=1, **kw):
    if kind == "lens":
        return sim.sample_lenses(n, rng=rng, theta_E=(1.0, 2.0), **kw)
    return sim.sample_nonlenses(n, rng=rng, kind=kind, **kw)


def _component_flux(t, band, zp=30.0):
    """Total expected flux in ``band`` from every magnitude column (observed source)."""
    tot = np.zeros(len(t))
    for c in t.columns:
        if not (c.startswith("mag_") and c.endswith(f"_{band}")):
            continue
        if c.startswith("mag_source_unlensed_"):
            continue  # the lensed (observed) source is mag_source_<band>
        m = t[c].to_numpy(dtype=float)
        tot += np.where(m < 50, 10 ** (-0.4 * (m - zp)), 0.0)
    return tot


@pytest.fixture(scope="module")
def tables(sim):
    return {k: _sample(sim, k, 5) for k in KINDS}


def test_one_schema_for_every_kind(sim, tables):
    cols = list(tables["lens"].columns)
    for k, t in tables.items():
        assert list(t.columns) == cols, k
        # NaN only where a component has no light (its magnitudes)
        nan_cols = [c for c in t.columns if t[c].isna().any()]
        assert all(c.startswith("mag_") for c in nan_cols), (k, nan_cols)
        assert set(required_columns(sim.bands)) <= set(t.columns)
    both = pd.concat(tables.values(), ignore_index=True)
    imgs = sim.render(both)
    assert imgs.shape == (len(both), NPIX, NPIX, 4)
    assert imgs.dtype == np.float32
    assert np.all(np.isfinite(imgs))


@pytest.mark.parametrize("kind", KINDS)
def test_render_is_deterministic_and_chunk_invariant(sim, tables, kind):
    t = tables[kind]
    a = sim.render(t)
    b = sim.render(t, chunk_size=2)
    np.testing.assert_array_equal(a, b)
    for k in (0, 3):
        np.testing.assert_array_equal(sim.render(t.iloc[[k]])[0], a[k])
    pd.testing.assert_frame_equal(_sample(sim, kind, 5), t)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_do_not_depend_on_chunking_of_sampling(sim, kind):
    whole = _sample(sim, kind, 6)
    part = (
        sim.sample_lenses(3, rng=1, theta_E=(1.0, 2.0), start=3)
        if kind == "lens"
        else sim.sample_nonlenses(3, rng=1, kind=kind, start=3)
    )
    pd.testing.assert_frame_equal(part, whole.iloc[3:].reset_index(drop=True))


@pytest.mark.parametrize("kind", KINDS)
def test_flux_matches_magnitude_columns(kind):
    big = Simulator("des-y3", npix=320, neighbours=False)
    t = _sample(big, kind, 3, rng=3)
    img = big.render(t, noise=False).astype(float)
    for j, b in enumerate(big.bands):
        dm = -2.5 * np.log10(img[..., j].sum(axis=(1, 2)) / _component_flux(t, b))
        assert np.abs(dm).max() < 0.01, (kind, b, dm)


def test_neighbour_flux_matches_magnitudes():
    big = Simulator("des-y3", npix=200)
    t = big.sample_nonlenses(6, rng=4, kind="star")
    assert t["n_neighbours"].sum() > 0
    # keep every neighbour's light on the stamp: move them inwards, cap their size (the
    # profiles are truncated at 20 half-light radii), and switch the central star off
    for b in big.bands:
        t[f"mag_star_{b}"] = 99.0
    for k in range(8):
        t[f"R_sersic_nb{k}"] = np.minimum(t[f"R_sersic_nb{k}"], 0.6)
        for ax in "xy":
            t[f"center_{ax}_nb{k}"] = t[f"center_{ax}_nb{k}"] * 0.3
    img = big.render(t, noise=False).astype(float)
    for j, b in enumerate(big.bands):
        exp = _component_flux(t, b)
        sel = exp > 0
        dm = -2.5 * np.log10(img[sel, :, :, j].sum(axis=(1, 2)) / exp[sel])
        assert np.abs(dm).max() < 0.01, (b, dm)


def test_truth_ranges(tables):
    for kind, t in tables.items():
        assert set(t["label"]) == ({1} if kind == "lens" else {0})
        if kind != "field":
            assert set(t["kind"]) == {kind}
        mags = t[[c for c in t.columns if c.startswith("mag_")]].to_numpy(dtype=float)
        assert np.all(np.isnan(mags) | ((mags >= 10) & (mags <= 40))), kind
        assert np.all(t["n_neighbours"].between(0, 8))
        for c in ("knot_fraction_source", "knot_fraction_disk", "arm_fraction_disk"):
            assert t[c].between(0, 1).all()
        e = np.hypot(t["e1_disk"], t["e2_disk"])
        assert (e < 1).all()
    sp = tables["spiral"]
    assert (sp["n_arms_disk"].between(2, 4)).all()
    assert (sp["R_sersic_disk"] > 0).all()
    assert (sp["mag_disk_r"] < 50).all()
    assert (sp["mag_lens_r"] < 50).all()
    assert (tables["merger"]["mag_companion_r"] < 50).all()
    ring = tables["ring"]
    assert (ring["length_arc"] >= 2 * np.pi).all()
    assert (ring["mag_arc_r"] > ring["mag_lens_r"]).all()
    bc = tables["blue_companion"]
    assert (bc["mag_arc_g"] - bc["mag_arc_r"] < bc["mag_lens_g"] - bc["mag_lens_r"]).all()  # bluer
    assert (tables["star"]["mag_star_r"] < 50).all()


def test_field_mixture_fractions_and_counts(sim):
    t = sim.sample_nonlenses(256, rng=7, kind="field", neighbours=False)
    fr = field_fractions(SamplerSettings.load())
    got = t["kind"].value_counts(normalize=True)
    for k in FIELD_KINDS:
        # binomial sd for 256 draws is <= 0.031
        assert got.get(k, 0.0) == pytest.approx(fr[k], abs=0.09), k
    # galaxy counts rise with magnitude: more objects in the faintest mag than the brightest
    gal = t[t["kind"].isin(["spiral", "merger"])]
    tot_r = -2.5 * np.log10(_component_flux(gal, "r") / 1e12)
    assert (tot_r > 21).sum() > (tot_r < 18).sum()


def test_neighbours_switch_and_density():
    on = Simulator("des-y3", npix=100)
    off = Simulator("des-y3", npix=100, neighbours=False)
    a = on.sample_lenses(64, rng=2)
    b = off.sample_lenses(64, rng=2)
    nb_cols = [c for c in a.columns if "_nb" in c or c.startswith("mag_nb") or c == "n_neighbours"]
    pd.testing.assert_frame_equal(a.drop(columns=nb_cols), b.drop(columns=nb_cols))
    assert (b["n_neighbours"] == 0).all()
    assert b["mag_nb0_r"].isna().all()
    many = on.sample_nonlenses(640, rng=3, kind="star")["n_neighbours"]
    # 2.4 galaxies + 0.2 stars per 100x100 stamp (catalogs/simulation.toml)
    assert many.mean() == pytest.approx(2.6, abs=0.25)
    assert on.sample_nonlenses(4, rng=3, kind="star", neighbours=False)["n_neighbours"].sum() == 0


def test_kind_errors(sim):
    with pytest.raises(SimlensValueError, match="kind"):
        sim.sample_nonlenses(2, kind="galaxy")
    with pytest.raises(SimlensValueError, match="mag_lens_r"):
        sim.sample_nonlenses(2, kind="spiral", mag_lens_r=20.0)
    with pytest.raises(SimlensValueError, match="neighbours"):
        Simulator(neighbours="yes")
    t = sim.sample_nonlenses(2, kind="ring", mag_lens_r=19.0)
    assert np.allclose(t["mag_lens_r"], 19.0)


def test_unlensed_matched_negatives(sim):
    t = sim.sample_lenses(3, rng=5, theta_E=1.5, mag_source_g=20.5)
    u = sim.unlensed(t)
    assert (u["label"] == 0).all()
    assert (u["kind"] == "unlensed").all()
    assert u["mag_source_g"].isna().all()
    same = [
        c
        for c in t.columns
        if not c.startswith("mag_source")
        and c not in ("label", "kind", "magnification", "snr_source", "detectable")
        and c not in ("pass_snr", "pass_magnification")  # no source light: both fail
    ]
    pd.testing.assert_frame_equal(u[same], t[same])
    assert not u["pass_snr"].any()
    assert not u["pass_magnification"].any()
    lens, neg = sim.render(t, noise=False), sim.render(u, noise=False)
    src = sim.render(
        t.assign(**{f"mag_lens_{b}": 99.0 for b in sim.bands}).pipe(
            lambda d: d.assign(**{c: 99.0 for c in d.columns if c.startswith("mag_nb")})
        ),
        noise=False,
    )
    np.testing.assert_allclose(lens - neg, src, atol=1e-3 * src.max())
    # same noise deviates: where the source has no light the noisy pixels are equal
    nl, nn = sim.render(t), sim.render(u)
    dark = src < 1e-6 * src.max()
    np.testing.assert_allclose(nl[dark], nn[dark], rtol=1e-4, atol=1e-3)
