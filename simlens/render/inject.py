"""Inject lensed sources into real cutouts (LensPop's "sim1"): the cutout supplies the lens light.

:func:`inject` reads only the mass and source columns of each truth row (``theta_E``,
``e1_mass`` ... ``center_y_source``, the clump columns, ``mag_source_unlensed_<band>``), ray-traces
the source exactly as :func:`simlens.render.stamps.render_rows` does, convolves it with the cutout's
PSF and adds it, in the cutout's flux units, to the cutout. No noise is added: the cutout's own
noise is real (the source's Poisson noise, below the sky noise for faint arcs, is left out).

* PSF: ``psf_fwhm`` (arcsec; a scalar, one per band, or ``(n, n_bands)``; default the truth's
  ``psf_fwhm_<band>``) with the simulator's profile (Gaussian, or Moffat), or ``psf_image``: an
  image of the PSF at the cutout's pixel scale with the pixel response (as PSFEx or Piff
  models are), centred on its central pixel (``(h, w)`` for all,
  ``(n_bands, h, w)`` per band or ``(n, n_bands, h, w)`` per cutout), normalised here.
* Units: ``zero_point`` (AB mag of one cutout unit; default the survey's, 30 for DES coadds).
* Pixels: ``pixel_scale`` (arcsec, default the survey's). Cutouts are square; the lens sits at
  the centre ``((H - 1) / 2, (H - 1) / 2)`` as in simlens stamps.

Cutouts are an array ``(n, H, W, n_bands)`` in band order, or FITS files, one image per band:
a directory holding ``<name>_<band>.fits`` files (:func:`read_cutouts`) or a list of
``{band: path}`` mappings.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.fft
from numpy.typing import NDArray

from simlens.constants import NO_LIGHT_MAG
from simlens.errors import SimlensValueError
from simlens.physics.sources import source_grid
from simlens.render.fourier import source_spectrum
from simlens.render.stamps import canvas_size, render_rows
from simlens.schema import extra_mag_components, flux_from_mag
from simlens.survey import Survey

__all__ = ["inject", "read_cutouts"]

F32 = NDArray[np.float32]


def read_cutouts(
    source: str | os.PathLike[str] | Sequence[Mapping[str, str | os.PathLike[str]]],
    bands: Sequence[str],
) -> tuple[F32, list[str]]:
    """Cutouts from FITS files, one per band: ``(images (n, H, W, n_bands), names)``.

    ``source`` is a directory of ``<name>_<band>.fits`` (or ``.fits.gz``, ``.fit``) files, every
    name having every band (names sorted), or a sequence of ``{band: path}`` mappings. The
    first HDU holding 2-D data is read.
    """
    from astropy.io import fits

    if isinstance(source, str | os.PathLike):
        d = Path(source)
        if not d.is_dir():
            raise SimlensValueError(f"cutouts: {str(d)!r} is not a directory")
        groups: dict[str, dict[str, Path]] = {}
        for p in sorted(d.iterdir()):
            name = p.name
            for ext in (".fits.gz", ".fits", ".fit"):
                if name.endswith(ext):
                    stem, _, band = name[: -len(ext)].rpartition("_")
                    if stem and band in bands:
                        groups.setdefault(stem, {})[band] = p
        if not groups:
            raise SimlensValueError(
                f"cutouts: no <name>_<band>.fits files for bands {list(bands)} in {str(d)!r}"
            )
        items: list[Mapping[str, Any]] = [groups[k] for k in sorted(groups)]
        names = sorted(groups)
    else:
        items = list(source)
        names = [str(i) for i in range(len(items))]
    out = []
    for name, item in zip(names, items):
        missing = [b for b in bands if b not in item]
        if missing:
            raise SimlensValueError(f"cutouts: {name!r} lacks band(s) {missing}")
        planes = []
        for b in bands:
            try:
                with fits.open(item[b]) as hdul:
                    data = next(
                        (h.data for h in hdul if h.data is not None and h.data.ndim == 2), None
                    )
            except (OSError, ValueError, TypeError) as err:  # astropy: not FITS, truncated
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise SimlensValueError(
                    f"cutouts: {str(item[b])!r} is not a readable FITS file ({first})"
                ) from err
            if data is None:
                raise SimlensValueError(f"cutouts: no 2-D image in {str(item[b])!r}")
            planes.append(np.asarray(data, dtype=np.float32))
        if len({p.shape for p in planes}) != 1:
            raise SimlensValueError(f"cutouts: the bands of {name!r} differ in shape")
        out.append(np.stack(planes, axis=-1))
    if len({o.shape for o in out}) != 1:
        raise SimlensValueError("cutouts: every cutout must have the same shape")
    return np.stack(out), names


def _fwhm_table(psf_fwhm: Any, truth: pd.DataFrame, bands: Sequence[str]) -> NDArray[np.float64]:
    n, nb = len(truth), len(bands)
    if psf_fwhm is None:
        fw = truth[[f"psf_fwhm_{b}" for b in bands]].to_numpy(dtype=float)
    else:
        a = np.asarray(psf_fwhm, dtype=float)
        if a.ndim == 0 or a.shape == (nb,):
            fw = np.broadcast_to(a, (n, nb)).copy()
        elif a.shape == (n, nb):
            fw = a.copy()
        else:
            raise SimlensValueError(
                f"psf_fwhm must be a scalar, shape ({nb},) or ({n}, {nb}) arcsec, got {a.shape}"
            )
    if not np.all(np.isfinite(fw)) or np.any(fw <= 0) or np.any(fw > 10):
        raise SimlensValueError("psf_fwhm must be finite and in (0, 10] arcsec")
    return fw


def _source_only(truth: pd.DataFrame, bands: Sequence[str], dmag: float) -> pd.DataFrame:
    """The truth with every light but the lensed source removed, source shifted by ``dmag``."""
    t = truth.copy()
    comps = ["lens", "star", *extra_mag_components()]
    for b in bands:
        for c in comps:
            t[f"mag_{c}_{b}"] = NO_LIGHT_MAG
        src = t[f"mag_source_unlensed_{b}"].to_numpy(dtype=float)
        t[f"mag_source_unlensed_{b}"] = np.where(src < 50.0, src + dmag, src)
    return t


def inject(
    cutouts: Any,
    truth: pd.DataFrame,
    *,
    survey: Survey,
    psf_fwhm: Any = None,
    psf_image: Any = None,
    zero_point: float | None = None,
    pixel_scale: float | None = None,
    supersampling: int = 3,
    psf_profile: str | None = None,
) -> tuple[F32, pd.DataFrame]:
    """Add the lensed source of each truth row to the matching cutout.

    Returns ``(images, truth_out)``: float32 ``(n, H, H, n_bands)`` and the truth with
    ``kind = "injected"``, the PSF FWHM used (``psf_fwhm_<band>``; unchanged with
    ``psf_image``) and no simulated lens, star or neighbour light (the cutout holds it).
    """
    bands = survey.band_names
    nb = len(bands)
    if isinstance(cutouts, str | os.PathLike) or (
        isinstance(cutouts, Sequence) and cutouts and isinstance(cutouts[0], Mapping)
    ):
        cutouts, _ = read_cutouts(cutouts, bands)
    imgs = np.asarray(cutouts, dtype=np.float32)
    if imgs.ndim != 4 or imgs.shape[-1] != nb or imgs.shape[1] != imgs.shape[2]:
        raise SimlensValueError(
            f"cutouts must have shape (n, H, H, {nb}) (square, bands {bands}), got {imgs.shape}"
        )
    if not isinstance(truth, pd.DataFrame) or len(truth) != len(imgs):
        raise SimlensValueError(
            f"truth must be a DataFrame with one row per cutout ({len(imgs)}), "
            f"got {len(truth) if isinstance(truth, pd.DataFrame) else type(truth).__name__}"
        )
    if not np.all(np.isfinite(imgs)):
        raise SimlensValueError("cutouts hold NaN or infinite pixels")
    zp = survey.zero_point if zero_point is None else float(zero_point)
    ps = survey.pixel_scale if pixel_scale is None else float(pixel_scale)
    if not (math.isfinite(zp) and 0 < zp < 60):
        raise SimlensValueError(f"zero_point must be in (0, 60) AB mag, got {zero_point!r}")
    if not (math.isfinite(ps) and 0 < ps <= 10):
        raise SimlensValueError(f"pixel_scale must be in (0, 10] arcsec, got {pixel_scale!r}")
    sv = dataclasses.replace(survey, pixel_scale=ps) if ps != survey.pixel_scale else survey
    npix = imgs.shape[1]
    # magnitudes shifted so that counts at the survey's zero point are counts at ``zp``
    src = _source_only(truth, bands, survey.zero_point - zp)
    out_truth = _source_only(truth, bands, 0.0)
    out_truth["kind"] = "injected"
    if psf_image is None:
        fw = _fwhm_table(psf_fwhm, truth, bands)
        for j, b in enumerate(bands):
            src[f"psf_fwhm_{b}"] = fw[:, j]
            out_truth[f"psf_fwhm_{b}"] = fw[:, j]
        added = render_rows(
            src, sv, npix=npix, noise=False, psf_profile=psf_profile, supersampling=supersampling
        )
    else:
        added = _with_psf_image(src, sv, npix, np.asarray(psf_image, float), supersampling)
    return imgs + added, out_truth


def _with_psf_image(
    truth: pd.DataFrame, survey: Survey, npix: int, psf: NDArray[np.float64], ss: int
) -> F32:
    bands = survey.band_names
    nb, n = len(bands), len(truth)
    if psf.ndim == 2:
        psf = np.broadcast_to(psf, (n, nb, *psf.shape))
    elif psf.ndim == 3 and psf.shape[0] == nb:
        psf = np.broadcast_to(psf, (n, *psf.shape))
    elif not (psf.ndim == 4 and psf.shape[:2] == (n, nb)):
        raise SimlensValueError(
            f"psf_image must have shape (h, w), ({nb}, h, w) or ({n}, {nb}, h, w), got {psf.shape}"
        )
    if not np.all(np.isfinite(psf)) or np.any(psf.sum(axis=(-2, -1)) <= 0):
        raise SimlensValueError("psf_image must be finite with a positive sum")
    h, w = psf.shape[-2:]
    # pad so that the PSF's half-width of light scatters in and FFT wrap-around stays outside
    canvas_n, pad = canvas_size(npix, max(h, w) / 2.0 / 5.0 + 1.0)
    out = np.zeros((n, npix, npix, nb), dtype=np.float32)
    zp = survey.zero_point
    for k, row in enumerate(truth.itertuples(index=False)):
        f = np.array(
            [flux_from_mag(float(getattr(row, f"mag_source_unlensed_{b}")), zp) for b in bands]
        )
        if not f.any():
            continue
        grid = source_grid(row, npix, survey.pixel_scale, ss)
        # the PSF image holds the pixel response: sub-pixel moments without the sinc
        ck = source_spectrum(grid, canvas_n, pad, pixel_response=False)
        if ck is None:
            continue
        for j in range(nb):
            if f[j] <= 0:
                continue
            kern = np.zeros((canvas_n, canvas_n))
            p = psf[k, j] / psf[k, j].sum()
            # the PSF's central pixel goes to (0, 0): convolution without a shift
            cy, cx = (h - 1) // 2, (w - 1) // 2
            ys = (np.arange(h) - cy) % canvas_n
            xs = (np.arange(w) - cx) % canvas_n
            kern[np.ix_(ys, xs)] = p
            plane = scipy.fft.irfft2(ck * scipy.fft.rfft2(kern), s=(canvas_n, canvas_n))
            out[k, :, :, j] = f[j] * plane[pad : pad + npix, pad : pad + npix]
    return out
