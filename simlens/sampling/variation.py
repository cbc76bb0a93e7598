"""Paired re-simulation: the same truth rows with one control changed, or the source removed.

:meth:`simlens.Simulator.vary` and :meth:`simlens.Simulator.unlensed` document the rules; the
PSF-scale rule is :func:`simlens.physics.psf.scale_psf_fwhm`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens.constants import NO_LIGHT_MAG
from simlens.physics.psf import scale_psf_fwhm
from simlens.population.relations import sigma_from_einstein_radius
from simlens.sampling.controls import parse_control
from simlens.sampling.lens_systems import lensing_truth
from simlens.sampling.nonlenses import MAG_LENS_KINDS
from simlens.sampling.settings import SamplerSettings
from simlens.schema import row_dict
from simlens.survey import Survey

__all__ = ["unlensed_truth", "vary_truth"]


def unlensed_truth(truth: pd.DataFrame, bands: Sequence[str]) -> pd.DataFrame:
    """``truth`` with the lensed source of every lens row removed (see ``Simulator.unlensed``)."""
    out = truth.copy()
    lens = out["label"].to_numpy() == 1
    for b in bands:
        for col in (f"mag_source_unlensed_{b}", f"mag_source_{b}"):
            out.loc[lens, col] = NO_LIGHT_MAG
    out.loc[lens, "magnification"] = 1.0
    out.loc[lens, "snr_source"] = 0.0
    for col in ("pass_snr", "pass_magnification", "detectable"):
        if col in out.columns:
            out.loc[lens, col] = False
    out.loc[lens, "label"] = 0
    out.loc[lens, "kind"] = "unlensed"
    return out


def vary_truth(
    truth: pd.DataFrame,
    name: str,
    value: float,
    *,
    survey: Survey,
    npix: int,
    cosmology: Cosmology,
    supersampling: int,
) -> pd.DataFrame:
    """``truth`` with only control ``name`` set to ``value`` (see ``Simulator.vary``)."""
    bands = survey.band_names
    parse_control(name, float(value), 1)
    out = truth.copy()
    lens = out["label"].to_numpy() == 1
    if name == "psf_scale":
        ratio = float(value) / out["psf_scale"].to_numpy(dtype=float)
        for b in bands:
            out[f"psf_fwhm_{b}"] = scale_psf_fwhm(out[f"psf_fwhm_{b}"].to_numpy(dtype=float), ratio)
        out["psf_scale"] = float(value)
    elif name == "psf_scale_source":
        out["psf_scale_source"] = float(value)
    elif name == "mag_lens_r":
        has = lens | np.isin(out["kind"].to_numpy(), MAG_LENS_KINDS)
        shift = np.where(has, float(value) - out["mag_lens_r"].to_numpy(dtype=float), 0.0)
        for b in bands:
            out[f"mag_lens_{b}"] = out[f"mag_lens_{b}"].to_numpy(dtype=float) + shift
    elif name == "mag_source_g":
        shift = np.where(lens, float(value) - out["mag_source_g"].to_numpy(dtype=float), 0.0)
        for b in bands:
            for col in (f"mag_source_unlensed_{b}", f"mag_source_{b}"):
                out[col] = out[col].to_numpy(dtype=float) + shift
    elif name == "theta_E":
        old = out["theta_E"].to_numpy(dtype=float)
        k = np.where(lens, float(value) / np.where(old > 0, old, 1.0), 1.0)
        for ax in ("x", "y"):
            c = out[f"center_{ax}_mass"].to_numpy(dtype=float)
            s = out[f"center_{ax}_source"].to_numpy(dtype=float)
            out[f"center_{ax}_source"] = c + (s - c) * k
        out.loc[lens, "theta_E"] = float(value)
        if lens.any():
            out.loc[lens, "sigma_v"] = sigma_from_einstein_radius(
                np.full(int(lens.sum()), float(value)),
                out.loc[lens, "z_lens"].to_numpy(dtype=float),
                out.loc[lens, "z_source"].to_numpy(dtype=float),
                cosmology,
            )
    if name in ("theta_E", "psf_scale") and lens.any():
        _recompute_lensing(out, lens, survey, npix, supersampling)
    return out


def _recompute_lensing(
    out: pd.DataFrame, lens: NDArray[np.bool_], survey: Survey, npix: int, supersampling: int
) -> None:
    """Magnification, S/N, detectability and lensed magnitudes of the lens rows, in place."""
    bands = survey.band_names
    cfg = SamplerSettings.load()
    pos = {str(c): k for k, c in enumerate(out.columns)}
    for i in (int(k) for k in np.flatnonzero(lens)):
        t = lensing_truth(
            row_dict(out.iloc[i]),
            survey,
            npix,
            cfg,
            supersampling=supersampling,
        )
        for key, v in t.items():
            out.iat[i, pos[key]] = v
        mu = t["magnification"]
        for b in bands:
            out.iat[i, pos[f"mag_source_{b}"]] = out.iloc[i][
                f"mag_source_unlensed_{b}"
            ] - 2.5 * math.log10(mu)
