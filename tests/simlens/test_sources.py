"""Richer sources: clumpy (galsim RandomKnots, ray-traced source-plane image), free Sersic index,
source colour templates."""

import numpy as np
import pytest

from simlens import SimlensValueError, Simulator
from simlens.physics import sed
from simlens.physics.lensing import lensed_source_grid


def _grid(theta_E, knots, **kw):
    args = dict(
        theta_E=theta_E,
        e1_mass=0.05,
        e2_mass=-0.02,
        center_x_mass=0.0,
        center_y_mass=0.0,
        R_sersic=0.3,
        n_sersic=1.0,
        e1_source=0.1,
        e2_source=0.05,
        center_x_source=0.1,
        center_y_source=-0.05,
        flux=1.0,
        npix=80,
        pixel_scale=0.263,
    )
    args.update(kw)
    return lensed_source_grid(**args, knots=knots)


def test_clumpy_source_conserves_flux_without_lensing():
    # theta_E -> 0: the image plane is the source plane; unit flux must come back
    g = _grid(1e-6, (20, 0.5, 0.06, 7))
    assert g.flux == pytest.approx(1.0, abs=0.005)
    only_knots = _grid(1e-6, (15, 1.0, 0.05, 3))
    assert only_knots.flux == pytest.approx(1.0, abs=0.005)


def test_clumpy_magnification_is_surface_brightness_conserving():
    # a compact clumpy source far from caustics: magnification close to the smooth one's
    smooth = _grid(1.2, None, center_x_source=0.6, center_y_source=0.3)
    clumpy = _grid(1.2, (10, 0.4, 0.05, 5), center_x_source=0.6, center_y_source=0.3)
    assert clumpy.flux == pytest.approx(smooth.flux, rel=0.15)
    # supersampling doubled: flux unchanged (the clumps are resolved)
    fine = _grid(1.2, (10, 0.4, 0.05, 5), center_x_source=0.6, center_y_source=0.3, supersampling=6)
    assert fine.flux == pytest.approx(clumpy.flux, rel=0.01)


def test_clumpy_lenses_truth_and_images():
    sim = Simulator("des-y3", npix=48, neighbours=False)
    c = sim.sample_lenses(4, rng=3, source_model="clumpy")
    s = sim.sample_lenses(4, rng=3)
    assert (c["n_knots_source"] > 0).all()
    assert (s["n_knots_source"] == 0).all()
    assert (c["seed_source"] > 0).all()
    # same systems (side stream), different light distribution
    np.testing.assert_array_equal(c["theta_E"], s["theta_E"])
    a, b = sim.render(c, noise=False), sim.render(c.iloc[[2]], noise=False)
    np.testing.assert_array_equal(a[2], b[0])
    assert not np.allclose(a, sim.render(s, noise=False))


def test_free_sersic_index_and_colour():
    sim = Simulator("des-y3", npix=48, neighbours=False)
    t = sim.sample_lenses(6, rng=4, n_sersic_source=(0.5, 4.0))
    assert t["n_sersic_source"].between(0.5, 4.0).all()
    assert t["n_sersic_source"].nunique() == 6
    assert (sim.sample_lenses(2, rng=4, n_sersic_source=2.5)["n_sersic_source"] == 2.5).all()
    red = sim.sample_lenses(6, rng=4, source_colour="passive")
    blue = sim.sample_lenses(6, rng=4)
    gi_red = red["mag_source_unlensed_g"] - red["mag_source_unlensed_i"]
    gi_blue = blue["mag_source_unlensed_g"] - blue["mag_source_unlensed_i"]
    assert gi_red.mean() > gi_blue.mean() + 0.5
    exp = sed.colours("passive", red["z_source"].to_numpy())
    np.testing.assert_allclose(gi_red, exp[:, 0] - exp[:, 2], atol=1e-9)
    with pytest.raises(SimlensValueError, match="n_sersic_source"):
        sim.sample_lenses(2, n_sersic_source=20.0)
    with pytest.raises(SimlensValueError, match="source_model"):
        sim.sample_lenses(2, source_model="knotty")
    with pytest.raises(SimlensValueError, match="source_colour"):
        sim.sample_lenses(2, source_colour="green")
