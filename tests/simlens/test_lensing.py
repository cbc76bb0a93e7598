"""The batched lensing path against lenstronomy itself."""

import numpy as np
import pytest
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel

from simlens.physics.lensing import lensed_source_grid
from simlens.physics.profiles import (
    deflection,
    ray_shoot,
    sersic_surface_brightness,
    sie_deflection,
)

rng = np.random.default_rng(12)
CASES = [
    dict(theta_E=1.3, e1=0.1, e2=-0.05, center_x=0.03, center_y=-0.02),
    dict(theta_E=0.6, e1=-0.3, e2=0.2, center_x=-0.1, center_y=0.05),
    dict(theta_E=2.5, e1=0.0, e2=0.0, center_x=0.0, center_y=0.0),
    dict(theta_E=1.0, e1=0.45, e2=0.3, center_x=0.2, center_y=0.1),
]


@pytest.mark.parametrize("kw", CASES)
def test_sie_deflection_matches_lenstronomy(kw):
    x = rng.uniform(-6, 6, 5000)
    y = rng.uniform(-6, 6, 5000)
    ax, ay = LensModel(["SIE"]).alpha(x, y, [kw])
    bx, by = sie_deflection(x, y, **kw)
    norm = np.hypot(ax, ay)
    assert np.max(np.abs(ax - bx) / norm) < 1e-6
    assert np.max(np.abs(ay - by) / norm) < 1e-6


def test_sie_deflection_batched_parameters():
    """Per-point parameters: one call traces points of several lenses at once."""
    x = rng.uniform(-4, 4, (len(CASES), 300))
    y = rng.uniform(-4, 4, (len(CASES), 300))
    par = {k: np.array([c[k] for c in CASES])[:, None] for k in CASES[0]}
    bx, by = ray_shoot(x, y, **par)
    for i, kw in enumerate(CASES):
        ex, ey = LensModel(["SIE"]).ray_shooting(x[i], y[i], [kw])
        # deflection = x - beta; compare relative to its size, as for single lenses
        ax, ay = x[i] - ex, y[i] - ey
        norm = np.hypot(ax, ay)
        assert np.max(np.abs((x[i] - bx[i]) - ax) / norm) < 1e-6
        assert np.max(np.abs((y[i] - by[i]) - ay) / norm) < 1e-6


@pytest.mark.parametrize("n", [0.8, 1.0, 2.5, 4.0])
def test_sersic_shape_matches_lenstronomy(n):
    x = rng.uniform(-3, 3, 4000)
    y = rng.uniform(-3, 3, 4000)
    kw = dict(amp=1.0, R_sersic=0.4, n_sersic=n, e1=0.2, e2=-0.1, center_x=0.1, center_y=0.05)
    ref = LightModel(["SERSIC_ELLIPSE"]).surface_brightness(x, y, [kw])
    ours = sersic_surface_brightness(x, y, 1.0, 0.4, n, 0.2, -0.1, 0.1, 0.05)
    ratio = ref / ours
    # same profile up to the amplitude convention (lenstronomy: I at R_sersic; ours: total flux)
    assert np.ptp(ratio) / ratio.mean() < 1e-9


def test_sersic_total_flux_is_flux():
    h = 0.005
    g = np.arange(-6, 6, h) + h / 2
    xx, yy = np.meshgrid(g, g)
    sb = sersic_surface_brightness(xx, yy, 3.0, 0.3, 1.0, 0.1, 0.05)
    assert sb.sum() * h * h == pytest.approx(3.0, rel=1e-4)


def _lenstronomy_lensed(p, npix, scale, ss, gamma_slope=2.0, gamma_ext=0.0, psi_ext=0.0):
    """Pixel-integrated lensed source by lenstronomy's ImageModel (no PSF), flux per pixel;
    SIE, or EPL where ``gamma_slope != 2``, plus SHEAR where ``gamma_ext != 0``."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel

    models, kw_lens = _lenstronomy_mass(p, gamma_slope, gamma_ext, psi_ext)
    c = (npix - 1) / 2 * scale
    data = ImageData(
        image_data=np.zeros((npix, npix)),
        ra_at_xy_0=-c,
        dec_at_xy_0=-c,
        transform_pix2angle=np.array([[scale, 0], [0, scale]]),
    )
    im = ImageModel(
        data,
        PSF(psf_type="NONE"),
        lens_model_class=LensModel(models),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics={"supersampling_factor": ss},
    )
    kw_src = [
        dict(
            amp=1.0,
            R_sersic=p["R_sersic"],
            n_sersic=p["n_sersic"],
            e1=p["e1_source"],
            e2=p["e2_source"],
            center_x=p["center_x_source"],
            center_y=p["center_y_source"],
        )
    ]
    img = im.image(kw_lens, kw_src, None, None, unconvolved=True)
    # lenstronomy images are surface brightness x pixel area with amp at R_sersic: rescale
    amp_to_flux = sersic_surface_brightness(
        p["R_sersic"], 0.0, 1.0, p["R_sersic"], p["n_sersic"], 0.0, 0.0
    )
    return img * amp_to_flux


def _lenstronomy_mass(p, gamma_slope, gamma_ext, psi_ext):
    main = dict(
        theta_E=p["theta_E"],
        e1=p["e1_mass"],
        e2=p["e2_mass"],
        center_x=p["center_x_mass"],
        center_y=p["center_y_mass"],
    )
    models, kws = (
        (["SIE"], [main]) if gamma_slope == 2.0 else (["EPL"], [{**main, "gamma": gamma_slope}])
    )
    if gamma_ext:
        models.append("SHEAR")
        kws.append(
            dict(
                gamma1=gamma_ext * np.cos(2 * psi_ext),
                gamma2=gamma_ext * np.sin(2 * psi_ext),
                ra_0=p["center_x_mass"],
                dec_0=p["center_y_mass"],
            )
        )
    return models, kws


MASS_CASES = [
    dict(gamma_slope=2.0, gamma_ext=0.08, psi_ext=0.7),
    dict(gamma_slope=1.7, gamma_ext=0.0, psi_ext=0.0),
    dict(gamma_slope=2.3, gamma_ext=0.15, psi_ext=-1.2),
]


@pytest.mark.parametrize("mass", MASS_CASES)
@pytest.mark.parametrize("kw", CASES[:2] + CASES[3:])
def test_shear_and_epl_deflection_match_lenstronomy(kw, mass):
    x = rng.uniform(-6, 6, 3000)
    y = rng.uniform(-6, 6, 3000)
    p = dict(
        theta_E=kw["theta_E"],
        e1_mass=kw["e1"],
        e2_mass=kw["e2"],
        center_x_mass=kw["center_x"],
        center_y_mass=kw["center_y"],
    )
    models, kws = _lenstronomy_mass(p, **mass)
    ax, ay = LensModel(models).alpha(x, y, kws)
    bx, by = deflection(x, y, **kw, **mass)
    norm = np.hypot(ax, ay)
    assert np.max(np.abs(ax - bx) / norm) < 1e-6
    assert np.max(np.abs(ay - by) / norm) < 1e-6


@pytest.mark.parametrize("mass", MASS_CASES)
def test_lensed_source_grid_with_shear_and_slope_matches_lenstronomy(mass):
    """Pixels and magnification (total lensed flux) of the adaptive grid with shear / EPL
    against lenstronomy's ImageModel at 16x16 supersampling everywhere."""
    npix, scale = 40, 0.263
    ours = lensed_source_grid(
        **PARAMS, flux=1.0, npix=npix, pixel_scale=scale, supersampling=8, **mass
    )
    ref = _lenstronomy_lensed(PARAMS, npix, scale, 16, **mass)
    stamp = np.zeros((npix, npix))
    h, w = ours.image.shape
    ys, xs = (
        slice(max(ours.y0, 0), min(ours.y0 + h, npix)),
        slice(max(ours.x0, 0), min(ours.x0 + w, npix)),
    )
    stamp[ys, xs] = ours.image[
        ys.start - ours.y0 : ys.stop - ours.y0, xs.start - ours.x0 : xs.stop - ours.x0
    ]
    assert np.max(np.abs(stamp - ref)) < 1e-3 * ref.max()
    # the patch holds every image: its flux is lenstronomy's magnification
    assert ours.flux == pytest.approx(ref.sum(), rel=2e-3)
    plain = lensed_source_grid(**PARAMS, flux=1.0, npix=npix, pixel_scale=scale, supersampling=8)
    assert abs(ours.flux - plain.flux) > 0.01 * plain.flux  # the mass model matters


PARAMS = dict(
    theta_E=1.4,
    e1_mass=0.12,
    e2_mass=-0.04,
    center_x_mass=0.02,
    center_y_mass=-0.03,
    R_sersic=0.35,
    n_sersic=1.0,
    e1_source=0.1,
    e2_source=0.05,
    center_x_source=0.25,
    center_y_source=0.1,
)


def test_lensed_source_grid_matches_lenstronomy_pixels():
    """lenstronomy (16x16 everywhere) vs our adaptive grid (16x16 where bright): 1e-4 of peak."""
    npix, scale = 40, 0.263
    # supersampling 8 refines this 0.35" source on a 16x16 sub-grid, as lenstronomy below
    ours = lensed_source_grid(**PARAMS, flux=1.0, npix=npix, pixel_scale=scale, supersampling=8)
    ref = _lenstronomy_lensed(PARAMS, npix, scale, 16)
    stamp = np.zeros((npix, npix))
    h, w = ours.image.shape
    # place our patch into the stamp grid
    ys, xs = (
        slice(max(ours.y0, 0), min(ours.y0 + h, npix)),
        slice(max(ours.x0, 0), min(ours.x0 + w, npix)),
    )
    stamp[ys, xs] = ours.image[
        ys.start - ours.y0 : ys.stop - ours.y0, xs.start - ours.x0 : xs.stop - ours.x0
    ]
    assert np.max(np.abs(stamp - ref)) < 1e-4 * ref.max()


def test_lensed_source_flux_is_magnification_and_converges():
    fine = lensed_source_grid(**PARAMS, flux=1.0, npix=100, pixel_scale=0.263, supersampling=32)
    for ss in (4, 8):
        g = lensed_source_grid(**PARAMS, flux=1.0, npix=100, pixel_scale=0.263, supersampling=ss)
        assert g.flux == pytest.approx(fine.flux, rel=2e-3)
    # a source well inside the Einstein radius of an SIS-like lens is strongly magnified
    assert fine.flux > 3.0


def test_far_source_is_unmagnified():
    p = dict(PARAMS, theta_E=0.05, center_x_source=3.0, center_y_source=0.0)
    g = lensed_source_grid(**p, flux=1.0, npix=100, pixel_scale=0.263, supersampling=8)
    # weak lensing far from a tiny lens: mu = 1 / (1 - theta_E / r) ~ 1.017
    assert g.flux == pytest.approx(1.0 / (1.0 - 0.05 / 3.0), rel=5e-3)
