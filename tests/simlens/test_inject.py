"""Injection of lensed sources into "real-like" cutouts (made here, nothing downloaded)."""

import numpy as np
import pytest
from astropy.io import fits

from simlens import SimlensValueError, Simulator
from simlens.render.inject import read_cutouts


@pytest.fixture(scope="module")
def sim():
    return Simulator("des-y3", npix=64, neighbours=False)


@pytest.fixture(scope="module")
def truth(sim):
    return sim.sample_lenses(3, rng=11, theta_E=(1.0, 1.8), mag_source_g=(20.0, 21.0))


def _real_like(sim, n, seed=0):
    """Cutouts standing in for real ones: simulated ellipticals with noise, other seeds."""
    t = sim.sample_nonlenses(n, rng=seed + 100, kind="elliptical", neighbours=True)
    return sim.render(t)


def test_injecting_into_zeros_equals_the_source_render(sim, truth):
    zero = np.zeros((3, 64, 64, 4), np.float32)
    imgs, out = sim.inject(zero, truth)
    ref = sim.render(truth.assign(**{f"mag_lens_{b}": 99.0 for b in sim.bands}), noise=False)
    np.testing.assert_allclose(imgs, ref, rtol=0, atol=1e-6 * ref.max())
    assert (out["kind"] == "injected").all()
    assert out["mag_lens_r"].isna().all()


@pytest.mark.parametrize("zp", [30.0, 22.5])
def test_injected_flux_equals_lensed_magnitude(zp):
    big = Simulator("des-y3", npix=200, neighbours=False)
    t = big.sample_lenses(3, rng=12, theta_E=(1.0, 2.0))
    cut = _real_like(big, 3) * 10 ** (-0.4 * (30.0 - zp))
    imgs, _ = big.inject(cut, t, psf_fwhm=[1.3, 1.1, 1.0, 0.9], zero_point=zp)
    added = (imgs - cut).astype(float).sum(axis=(1, 2))
    for j, b in enumerate(big.bands):
        m = zp - 2.5 * np.log10(added[:, j])
        np.testing.assert_allclose(m, t[f"mag_source_{b}"], atol=0.01)


def test_psf_image_and_fwhm_agree(sim, truth):
    from galsim import Moffat

    assert sim.psf_profile == "moffat"  # des-y3's PSF
    fw = [1.2, 1.0, 0.95, 0.9]
    beta = sim.survey.moffat_beta
    psf = np.stack(
        [Moffat(beta=beta, fwhm=f).drawImage(nx=61, ny=61, scale=0.263).array for f in fw]
    )
    zero = np.zeros((3, 64, 64, 4), np.float32)
    a, _ = sim.inject(zero, truth, psf_fwhm=fw)
    b, _ = sim.inject(zero, truth, psf_image=psf)
    np.testing.assert_allclose(a, b, atol=2e-3 * a.max())


def test_fits_directory_round_trip(tmp_path, sim, truth):
    cut = _real_like(sim, 3, seed=1)
    for k in range(3):
        for j, b in enumerate(sim.bands):
            fits.PrimaryHDU(cut[k, :, :, j]).writeto(tmp_path / f"obj{k:02d}_{b}.fits")
    arr, names = read_cutouts(tmp_path, sim.bands)
    assert names == ["obj00", "obj01", "obj02"]
    np.testing.assert_array_equal(arr, cut)
    a, _ = sim.inject(str(tmp_path), truth)
    b, _ = sim.inject(cut, truth)
    np.testing.assert_array_equal(a, b)


def test_inject_errors(sim, truth):
    with pytest.raises(SimlensValueError, match="cutouts"):
        sim.inject(np.zeros((3, 64, 60, 4)), truth)
    with pytest.raises(SimlensValueError, match="one row per cutout"):
        sim.inject(np.zeros((2, 64, 64, 4)), truth)
    with pytest.raises(SimlensValueError, match="psf_fwhm"):
        sim.inject(np.zeros((3, 64, 64, 4)), truth, psf_fwhm=[1.0, 2.0])
    with pytest.raises(SimlensValueError, match="zero_point"):
        sim.inject(np.zeros((3, 64, 64, 4)), truth, zero_point=-1.0)


def test_cli_inject_and_generate_field(tmp_path, sim):
    from simlens import load
    from simlens.cli import main

    cut = _real_like(sim, 2, seed=2)
    d = tmp_path / "cutouts"
    d.mkdir()
    for k in range(2):
        for j, b in enumerate(sim.bands):
            fits.PrimaryHDU(cut[k, :, :, j]).writeto(d / f"c{k}_{b}.fits")
    out = tmp_path / "inj.h5"
    rc = main(
        ["inject", "--cutouts", str(d), "--out", str(out), "--psf-fwhm", "1.0", "--seed", "3"]
    )
    assert rc == 0
    ds = load(out)
    assert ds.images.shape == (2, 64, 64, 4)
    assert list(ds.truth["cutout"]) == ["c0", "c1"]
    assert (ds.images.sum(axis=(1, 2, 3)) > cut.sum(axis=(1, 2, 3))).all()
    f = tmp_path / "field.h5"
    assert (
        main(
            [
                "generate",
                "--kind",
                "field",
                "--n",
                "3",
                "--npix",
                "32",
                "--out",
                str(f),
                "--quiet",
                "--no-neighbours",
            ]
        )
        == 0
    )
    t = load(f).truth
    assert (t["label"] == 0).all()
    assert (t["n_neighbours"] == 0).all()
