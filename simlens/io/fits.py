"""Export one simulated system to a multi-extension FITS file.

Layout: an empty primary HDU with the keywords shared by all bands, then one image HDU per band
(``EXTNAME`` = band name, in the set's band order), then a binary table ``TRUTH`` holding the
system's truth row. Each image header carries its pixel scale (``CDELT1/2`` in degrees and
``PIXSCALE`` in arcsec), ``BUNIT``, ``MAGZERO``, ``FILTER``, the PSF FWHM of that band
(``PSF_FWHM``, arcsec), the image ``SEED``, ``LABEL``/``KIND``, ``SURVEY`` and the simlens version.

The WCS is a tangent projection centred on (RA, Dec) = (0, 0) at the stamp centre with north
up and east left, as DES coadds (``CDELT1 < 0``: RA grows to the left, against the column
index; Dec grows with the row). The truth columns ``center_x_*`` / ``center_y_*`` (x grows
with the column, y with the row) are therefore offsets ``(-dRA cos Dec, dDec)`` in arcsec; the
pixels are the set's, unflipped. The sky position is nominal: stamps have no real pointing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.constants import ARCSEC_PER_DEG
from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.atomic import atomic_path
from simlens.io.dataset import Dataset
from simlens.io.provenance import package_version, utc_now

__all__ = ["to_fits"]


def _survey_value(meta: Mapping[str, Any], key: str) -> Any:
    survey = meta.get("survey")
    if isinstance(survey, Mapping):
        return survey.get(key)
    # A joined set (Dataset.concat: "parts"; simlens concat: "concat"): the parts' common value.
    parts = meta.get("parts")
    if not isinstance(parts, list):
        joined = meta.get("concat")
        parts = (
            [p.get("meta") for p in joined if isinstance(p, Mapping)]
            if isinstance(joined, list)
            else []
        )
    values = [_survey_value(m, key) for m in parts if isinstance(m, Mapping)]
    if values and all(v is not None and v == values[0] for v in values):
        return values[0]
    return None


def _number(value: Any, name: str, band: str | None = None) -> float:
    if isinstance(value, Mapping) and band is not None:  # per-band values
        value = value.get(band)
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    if not np.isfinite(out) or out <= 0:
        raise SimlensValueError(f"{name}: expected a positive finite number, got {value!r}")
    return out


def _table_column(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biuf":
        return series.to_numpy()
    # strings (and anything else) as fixed-width unicode; missing values as ""
    return np.array(["" if pd.isna(v) else str(v) for v in series], dtype=str)


def to_fits(
    data: Dataset | tuple[Any, pd.DataFrame],
    index: int,
    path: str | os.PathLike[str],
    *,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    zero_point: float | None = None,
    survey: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write system ``index`` of a set to a multi-extension FITS file (atomically).

    Parameters
    ----------
    data : Dataset or (images, truth)
        The set; ``images`` has shape ``(n, H, W, C)`` in counts at the zero point.
    index : int
        Which system, ``-n <= index < n``.
    path : str or path-like
        Output file; replaced if it exists.
    bands : sequence of str, optional
        Band of each channel. Default: the Dataset's bands, else ``meta["bands"]``, else
        g, r, i, z for 4 channels.
    pixel_scale : float, optional
        Arcsec per pixel. Default: ``meta["survey"]["pixel_scale"]``.
    zero_point : float, optional
        AB magnitude of one count (``MAGZERO``). Default: ``meta["survey"]["zero_point"]``.
    survey : str, optional
        Survey name for ``SURVEY``. Default: ``meta["survey"]["name"]``.
    meta : mapping, optional
        Provenance, used only with ``(images, truth)`` input (a Dataset brings its own).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    SimlensKeyError
        If the truth lacks ``seed`` or ``psf_fwhm_<band>``, or pixel scale / zero point are
        neither given nor in the metadata.
    SimlensValueError
        If ``index`` is out of range or a value is invalid.
    """
    from astropy.io import fits

    ds = _as_dataset(data, bands, meta)
    band_names = tuple(bands) if bands is not None else ds.bands
    if len(band_names) != len(ds.bands):
        raise SimlensValueError(f"bands: expected {len(ds.bands)} names, got {band_names}")
    index = _checked_index(index, len(ds))
    for column in ["seed", *(f"psf_fwhm_{b}" for b in band_names)]:
        if column not in ds.truth.columns:
            raise SimlensKeyError(f"truth: needs column {column!r} for the FITS header")
    scale, zp = _scale_and_zero_point(ds.meta, pixel_scale, zero_point)
    survey_name = survey or _survey_value(ds.meta, "name") or "unknown"
    version = str(ds.meta.get("version") or package_version())

    primary = _primary_hdu(ds.truth, index, band_names, str(survey_name), version)
    image = np.asarray(ds.images[index])  # (H, W, C)
    row = ds.truth.iloc[index]
    hdus: list[Any] = [primary]
    for channel, band in enumerate(band_names):
        hdu = _band_hdu(image[:, :, channel], band, row, scale, zp)
        for key in ("SURVEY", "SIMLVER", "SEED", "LABEL", "KIND"):
            if key in primary.header:
                hdu.header[key] = (primary.header[key], primary.header.comments[key])
        hdus.append(hdu)
    hdus.append(_truth_hdu(ds.truth.iloc[[index]]))

    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
    return Path(path)


def _as_dataset(
    data: Dataset | tuple[Any, pd.DataFrame],
    bands: Sequence[str] | None,
    meta: Mapping[str, Any] | None,
) -> Dataset:
    """``data`` as a Dataset: an ``(images, truth)`` pair gets ``bands`` and ``meta``."""
    if isinstance(data, Dataset):
        return data
    try:
        images, truth = data
    except (TypeError, ValueError):
        raise SimlensValueError("data: expected a Dataset or an (images, truth) pair") from None
    given = {} if bands is None else {"bands": tuple(bands)}
    return Dataset(images=images, truth=truth, meta=dict(meta or {}), **given)


def _checked_index(index: Any, n: int) -> int:
    """``index`` as a row number in ``[0, n)`` (negative counts from the end)."""
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not -n <= index < n:
        raise SimlensValueError(f"index: expected an integer in [{-n}, {n - 1}], got {index!r}")
    return int(index) % n


def _scale_and_zero_point(
    meta: Mapping[str, Any], pixel_scale: float | None, zero_point: float | None
) -> tuple[float, Any]:
    """Pixel scale (arcsec/pixel, checked) and zero point (AB mag; a number or per band)."""
    scale = pixel_scale if pixel_scale is not None else _survey_value(meta, "pixel_scale")
    zp = zero_point if zero_point is not None else _survey_value(meta, "zero_point")
    if scale is None:
        raise SimlensKeyError("pixel_scale: not given and not in meta['survey'] (arcsec/pixel)")
    if zp is None:
        raise SimlensKeyError("zero_point: not given and not in meta['survey'] (AB mag)")
    return _number(scale, "pixel_scale"), zp


def _primary_hdu(
    truth: pd.DataFrame, index: int, band_names: tuple[str, ...], survey_name: str, version: str
) -> Any:
    """The empty primary HDU with the keywords shared by all bands."""
    from astropy.io import fits

    row = truth.iloc[index]
    primary = fits.PrimaryHDU()
    shared = primary.header
    shared["ORIGIN"] = ("simlens", "strong-lens simulator (simlens-probe)")
    shared["DATE"] = (utc_now().rstrip("Z"), "UTC time this file was written")
    shared["SIMLVER"] = (version, "simlens version that made the image")
    shared["SURVEY"] = (survey_name, "survey preset")
    shared["NBANDS"] = (len(band_names), "number of band images")
    shared["BANDS"] = (",".join(band_names), "EXTNAME of the band images, in order")
    shared["INDEX"] = (index, "row of this system in its set")
    shared["SEED"] = (int(row["seed"]), "seed of this image (truth column seed)")
    if "label" in truth.columns:
        shared["LABEL"] = (int(row["label"]), "1 lens, 0 not a lens")
    if "kind" in truth.columns:
        shared["KIND"] = (str(row["kind"]), "kind of system")
    if "theta_E" in truth.columns and pd.notna(row["theta_E"]):
        shared["THETA_E"] = (float(row["theta_E"]), "[arcsec] Einstein radius")
    return primary


def _band_hdu(pixels: np.ndarray, band: str, row: pd.Series, scale: float, zp: Any) -> Any:
    """One band's image HDU: its pixels (float32), photometry and WCS keywords.

    ``scale`` is in arcsec/pixel, ``zp`` the AB zero point (a number or a per-band mapping).
    """
    from astropy.io import fits

    npix_y, npix_x = pixels.shape
    hdu = fits.ImageHDU(data=np.ascontiguousarray(pixels, dtype=np.float32))
    h = hdu.header
    h["EXTNAME"] = band
    h["FILTER"] = (band, "band")
    h["BUNIT"] = ("count", "AB mag = MAGZERO - 2.5 log10(counts)")
    h["MAGZERO"] = (_number(zp, "zero_point", band), "[mag] AB zero point of one count")
    h["PIXSCALE"] = (scale, "[arcsec/pixel] pixel scale")
    h["PSF_FWHM"] = (
        _number(row[f"psf_fwhm_{band}"], f"psf_fwhm_{band}"),
        "[arcsec] PSF FWHM in this band",
    )
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRPIX1"] = ((npix_x + 1) / 2, "stamp centre (FITS pixels are 1-based)")
    h["CRPIX2"] = ((npix_y + 1) / 2, "stamp centre")
    h["CRVAL1"] = (0.0, "[deg] nominal: stamps have no pointing")
    h["CRVAL2"] = (0.0, "[deg] nominal")
    h["CDELT1"] = (-scale / ARCSEC_PER_DEG, "[deg] RA grows to the left: truth x = -dRA")
    h["CDELT2"] = (scale / ARCSEC_PER_DEG, "[deg] Dec grows with row, like truth y")
    return hdu


def _truth_hdu(row_frame: pd.DataFrame) -> Any:
    """The binary table ``TRUTH`` holding the system's truth row."""
    from astropy.io import fits
    from astropy.table import Table

    table = Table({name: _table_column(row_frame[name]) for name in row_frame.columns})
    truth_hdu = fits.table_to_hdu(table)
    truth_hdu.header["EXTNAME"] = "TRUTH"
    return truth_hdu
