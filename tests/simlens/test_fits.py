"""Tests of simlens.io.fits: one system to multi-extension FITS, read back with astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.dataset import Dataset
from simlens.io.fits import to_fits

BANDS = ("g", "r", "i", "z")
PIXEL_SCALE = 0.263
META = {
    "version": "9.9.9",
    "survey": {"name": "des-y3", "pixel_scale": PIXEL_SCALE, "zero_point": 30.0},
}


def make_set(n: int = 3, npix: int = 12) -> Dataset:
    rng = np.random.default_rng(3)
    images = rng.normal(0.0, 4.0, size=(n, npix, npix, 4)).astype(np.float32)
    truth = pd.DataFrame(
        {
            "label": [1, 0, 1][:n],
            "kind": pd.Series(["lens", "elliptical", "lens"][:n], dtype="str"),
            "seed": np.array([11, 22, 2**62 + 3][:n], dtype=np.int64),
            "theta_E": [1.25, np.nan, 2.5][:n],
            **{
                f"psf_fwhm_{b}": [0.9 + 0.1 * k + 0.01 * j for j in range(n)]
                for k, b in enumerate(BANDS)
            },
        }
    )
    return Dataset(images=images, truth=truth, meta=META)


def test_header_values(tmp_path: Path) -> None:
    ds = make_set()
    out = to_fits(ds, 2, tmp_path / "sys.fits")
    assert out == tmp_path / "sys.fits"
    with fits.open(out) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "g", "r", "i", "z", "TRUTH"]
        primary = hdul[0].header
        assert primary["BANDS"] == "g,r,i,z"
        assert primary["SEED"] == 2**62 + 3
        assert primary["LABEL"] == 1
        assert primary["KIND"] == "lens"
        assert primary["THETA_E"] == pytest.approx(2.5)
        assert primary["SURVEY"] == "des-y3"
        assert primary["SIMLVER"] == "9.9.9"
        for k, band in enumerate(BANDS):
            hdu = hdul[band]
            h = hdu.header
            assert h["EXTNAME"] == band
            assert h["FILTER"] == band
            assert h["BUNIT"] == "count"
            assert h["MAGZERO"] == 30.0
            assert h["PIXSCALE"] == pytest.approx(PIXEL_SCALE)
            assert h["CDELT1"] == pytest.approx(-PIXEL_SCALE / 3600)  # east left, as DES
            assert h["CDELT2"] == pytest.approx(PIXEL_SCALE / 3600)
            assert h["PSF_FWHM"] == pytest.approx(0.9 + 0.1 * k + 0.02)
            assert h["SEED"] == 2**62 + 3
            assert h["KIND"] == "lens"
            assert h["SURVEY"] == "des-y3"
            assert hdu.data.dtype == np.dtype(">f4")
            np.testing.assert_array_equal(hdu.data, ds.images[2, :, :, k])


def test_wcs_matches_truth_convention(tmp_path: Path) -> None:
    to_fits(make_set(npix=12), 0, tmp_path / "sys.fits")
    with fits.open(tmp_path / "sys.fits") as hdul:
        wcs = WCS(hdul["r"].header)
    scales = wcs.proj_plane_pixel_scales()
    assert [s.to_value("arcsec") for s in scales] == pytest.approx([PIXEL_SCALE] * 2)
    # Stamp centre (between pixels 5 and 6, 0-based) is the reference point (0, 0).
    ra, dec = wcs.pixel_to_world_values(5.5, 5.5)
    assert float(ra) == pytest.approx(0.0, abs=1e-12)
    assert float(dec) == pytest.approx(0.0, abs=1e-12)
    # RA grows to the left (DES coadds), so truth x (growing with the column) is -dRA; Dec
    # grows with the row, as the truth's center_y.
    ra, dec = wcs.pixel_to_world_values(6.5, 5.5)
    assert (float(ra) - 360.0) * 3600 == pytest.approx(-PIXEL_SCALE, rel=1e-6)
    ra, dec = wcs.pixel_to_world_values(5.5, 6.5)
    assert float(dec) * 3600 == pytest.approx(PIXEL_SCALE, rel=1e-6)


def test_truth_table(tmp_path: Path) -> None:
    ds = make_set()
    to_fits(ds, 1, tmp_path / "sys.fits")
    with fits.open(tmp_path / "sys.fits") as hdul:
        table = hdul["TRUTH"].data
        assert len(table) == 1
        assert list(table.names) == list(ds.truth.columns)
        assert table["kind"][0] == "elliptical"
        assert table["seed"][0] == 22
        assert np.isnan(table["theta_E"][0])
        assert table["psf_fwhm_z"][0] == pytest.approx(ds.truth["psf_fwhm_z"].iloc[1])
        assert "THETA_E" not in hdul[0].header  # NaN: not a lens


def test_images_and_truth_pair_with_explicit_values(tmp_path: Path) -> None:
    ds = make_set()
    to_fits(
        (ds.images, ds.truth),
        -1,
        tmp_path / "sys.fits",
        pixel_scale=0.2,
        zero_point=31.0,
        survey="custom",
    )
    with fits.open(tmp_path / "sys.fits") as hdul:
        assert hdul["g"].header["PIXSCALE"] == pytest.approx(0.2)
        assert hdul["g"].header["MAGZERO"] == 31.0
        assert hdul[0].header["SURVEY"] == "custom"
        assert hdul[0].header["INDEX"] == 2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda ds, p: to_fits(ds, 3, p), SimlensValueError, "index"),
        (lambda ds, p: to_fits(ds, 1.0, p), SimlensValueError, "index"),  # type: ignore[arg-type]
        (lambda ds, p: to_fits((ds.images, ds.truth), 0, p), SimlensKeyError, "pixel_scale"),
        (
            lambda ds, p: to_fits((ds.images, ds.truth), 0, p, pixel_scale=0.2),
            SimlensKeyError,
            "zero_point",
        ),
        (
            lambda ds, p: to_fits(
                Dataset(ds.images, ds.truth.drop(columns="psf_fwhm_i"), ds.meta), 0, p
            ),
            SimlensKeyError,
            "psf_fwhm_i",
        ),
        (lambda ds, p: to_fits(ds, 0, p, pixel_scale=-1.0), SimlensValueError, "pixel_scale"),
        (lambda ds, p: to_fits("nonsense", 0, p), SimlensValueError, "data"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_writes_nothing(tmp_path: Path, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(make_set(), tmp_path / "sys.fits")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_untouched_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "sys.fits"
    target.write_bytes(b"old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", fail)
    with pytest.raises(OSError, match="disk full"):
        to_fits(make_set(), 0, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["sys.fits"]


def test_joined_sets_take_the_parts_survey(tmp_path: Path) -> None:
    """A set joined from parts (Dataset.concat, `simlens concat`) has no top-level survey in its
    meta: the pixel scale and zero points come from the parts when they agree, and a mismatch
    is still an error naming the missing value."""
    from simlens import Simulator

    sim = Simulator(npix=16)
    joined = Dataset.concat([sim.lenses(1, rng=0), sim.nonlenses(1, rng=1, kind="star")])
    assert "survey" not in joined.meta
    with fits.open(to_fits(joined, 1, tmp_path / "j.fits")) as hdul:
        assert hdul["g"].header["PIXSCALE"] == pytest.approx(0.263)
    cli_meta = {"concat": [{"path": "a.h5", "meta": m} for m in joined.meta["parts"]]}
    with fits.open(to_fits((joined.images, joined.truth), 0, tmp_path / "c.fits",
                           bands=joined.bands, meta=cli_meta)) as hdul:  # fmt: skip
        assert hdul["r"].header["PIXSCALE"] == pytest.approx(0.263)
    other = {"parts": [joined.meta["parts"][0], {"survey": {"pixel_scale": 0.2}}]}
    with pytest.raises(SimlensKeyError, match="pixel_scale"):
        to_fits((joined.images, joined.truth), 0, tmp_path / "x.fits", bands=joined.bands,
                meta=other)  # fmt: skip
