"""Converged reference renders by lenstronomy itself, to validate simlens' fast numerics.

:func:`lenstronomy_reference` renders truth rows (lens light + lensed source, noise-free) with
lenstronomy's ``ImageModel`` at a high supersampling factor with the PSF applied on the
supersampled grid (``supersampling_convolution=True``), i.e. at settings that converge, never
with simlens' own numerics. Tests and ``scripts/bench_simulate.py`` compare simlens' default
renders against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens.schema import flux_from_mag
from simlens.survey import Survey

__all__ = ["lenstronomy_reference"]


def _flux(mag: float, zp: float) -> float:
    return flux_from_mag(mag, zp)


def _mass_model(row: Any) -> tuple[list[str], list[dict[str, float]]]:
    """lenstronomy lens model list and kwargs of a truth row (SIE, EPL, + SHEAR)."""
    slope = float(getattr(row, "gamma_slope", 2.0))
    base = {
        "theta_E": float(row.theta_E),
        "e1": float(row.e1_mass),
        "e2": float(row.e2_mass),
        "center_x": float(row.center_x_mass),
        "center_y": float(row.center_y_mass),
    }
    if slope == 2.0:
        models, kwargs = ["SIE"], [base]
    else:
        models, kwargs = ["EPL"], [{**base, "gamma": slope}]
    g = float(getattr(row, "gamma_ext", 0.0))
    if g != 0.0:
        psi = float(getattr(row, "psi_ext", 0.0))
        models.append("SHEAR")
        kwargs.append(
            {
                "gamma1": g * np.cos(2 * psi),
                "gamma2": g * np.sin(2 * psi),
                "ra_0": base["center_x"],
                "dec_0": base["center_y"],
            }
        )
    return models, kwargs


def lenstronomy_reference(
    truth: pd.DataFrame,
    survey: Survey,
    *,
    npix: int,
    supersampling: int = 15,
    components: str = "all",
    psf_profile: str | None = None,
    bands: tuple[str, ...] | None = None,
) -> NDArray[np.float64]:
    """Noise-free ``(n, npix, npix, n_bands)`` renders of lens light and lensed source (counts).

    lenstronomy ``ImageModel`` with ``supersampling_factor=supersampling`` and
    ``supersampling_convolution=True`` (PSF on the fine grid; Gaussian, or a pixelised Moffat
    drawn by galsim on the fine grid: ``supersampling`` must then be odd). ``components``:
    ``"all"``, ``"lens"`` (lens light only) or ``"source"`` (lensed source only). Neighbours,
    companions and stars are not drawn.
    ``bands`` limits the render to those bands (default: the survey's), in that order.
    """
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.LightModel.light_model import LightModel

    if (psf_profile or survey.psf_profile) == "moffat" and supersampling % 2 == 0:
        raise ValueError(f"a Moffat reference needs an odd supersampling, got {supersampling}")
    if components not in ("all", "lens", "source"):
        raise ValueError(f"components must be 'all', 'lens' or 'source', got {components!r}")
    ps = survey.pixel_scale
    zp = survey.zero_point
    profile = psf_profile or survey.psf_profile
    c = (npix - 1) / 2 * ps
    data = ImageData(
        image_data=np.zeros((npix, npix)),
        ra_at_xy_0=-c,
        dec_at_xy_0=-c,
        transform_pix2angle=np.array([[ps, 0.0], [0.0, ps]]),
    )
    light = LightModel(["SERSIC_ELLIPSE"])
    bands = tuple(survey.band_names) if bands is None else tuple(bands)
    out = np.zeros((len(truth), npix, npix, len(bands)))
    row: Any
    for k, row in enumerate(truth.itertuples(index=False)):
        models, kw_lens = _mass_model(row)
        for j, b in enumerate(bands):
            fwhm = float(getattr(row, f"psf_fwhm_{b}"))
            beta = survey.moffat_beta
            im = _image_model(data, light, models, fwhm, profile, beta, ps, supersampling)
            kw_l = _sersic_kwargs(row, "lens_light")
            kw_s = _sersic_kwargs(row, "source")
            f_l = _flux(float(getattr(row, f"mag_lens_{b}")), zp) if components != "source" else 0
            f_s = (
                _flux(float(getattr(row, f"mag_source_unlensed_{b}")), zp)
                if components != "lens"
                else 0
            )
            # lenstronomy's amp is the surface brightness at R_sersic: scale to total flux
            kw_l["amp"] = f_l / light.total_flux([{**kw_l, "amp": 1.0}])[0]
            kw_s["amp"] = f_s / light.total_flux([{**kw_s, "amp": 1.0}])[0]
            out[k, :, :, j] = im.image(kw_lens, [kw_s], [kw_l], None)
    return out


def _sersic_kwargs(row: Any, component: str) -> dict[str, float]:
    """lenstronomy ``SERSIC_ELLIPSE`` keywords (no ``amp``) of a row's ``component``."""
    return {
        "R_sersic": float(getattr(row, f"R_sersic_{component}")),
        "n_sersic": float(getattr(row, f"n_sersic_{component}")),
        "e1": float(getattr(row, f"e1_{component}")),
        "e2": float(getattr(row, f"e2_{component}")),
        "center_x": float(getattr(row, f"center_x_{component}")),
        "center_y": float(getattr(row, f"center_y_{component}")),
    }


def _image_model(
    data: Any,
    light: Any,
    models: list[str],
    fwhm: float,
    profile: str,
    beta: float,
    ps: float,
    supersampling: int,
) -> Any:
    """lenstronomy ``ImageModel`` of one band: the PSF (``fwhm`` arcsec) on the fine grid."""
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    numerics: dict[str, Any] = {
        "supersampling_factor": supersampling,
        "supersampling_convolution": True,
    }
    if profile == "gaussian":
        psf = PSF(psf_type="GAUSSIAN", fwhm=fwhm, truncation=6.0)
    else:
        kernel = _moffat_kernel(fwhm, beta, ps, supersampling)
        psf = PSF(
            psf_type="PIXEL",
            kernel_point_source=kernel,
            point_source_supersampling_factor=supersampling,
        )
        # the whole kernel on the fine grid (lenstronomy's default: its central 5 x 5
        # pixels only, the wings at pixel resolution: 4% of the peak off here)
        numerics["supersampling_kernel_size"] = len(kernel) // supersampling
    return ImageModel(
        data,
        psf,
        lens_model_class=LensModel(models),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        lens_light_model_class=light,
        kwargs_numerics=numerics,
    )


def _moffat_kernel(fwhm: float, beta: float, ps: float, ss: int) -> NDArray[np.float64]:
    """A Moffat PSF drawn by galsim on the supersampled grid (odd size, unit sum, out to at
    least 4 FWHM)."""
    import galsim

    fine = ps / ss
    # lenstronomy splits a supersampled kernel into whole coarse pixels: a size of an odd
    # number of coarse pixels, each ss fine pixels (ss odd), keeps the split symmetric
    m = 2 * int(np.ceil(4.0 * fwhm / ps)) + 1
    size = m * ss
    img = galsim.Moffat(beta=beta, fwhm=fwhm).drawImage(
        nx=size, ny=size, scale=fine, method="no_pixel"
    )
    k = img.array.astype(np.float64)
    return k / k.sum()
