"""Putting it together: strong and LensPop-detectable lenses on the sky for a survey (the
density integral times the Monte Carlo's detectable fraction, times the footprint)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from astropy.cosmology import Cosmology, Planck18

from simlens.errors import SimlensValueError
from simlens.population import lenspop_sources as plp
from simlens.survey import Survey, load_survey
from simlens.yields._density import LensDensity, lens_density
from simlens.yields._fraction import DetectableFraction, detectable_fraction
from simlens.yields._inputs import lenspop_des_prediction, survey_area

__all__ = ["SkyDensity", "sky_density"]


@dataclass(frozen=True)
class SkyDensity:
    """Strong and LensPop-detectable lenses on the sky for a survey.

    Attributes
    ----------
    survey : str
        Survey preset name.
    area_deg2 : float
        Search footprint, deg^2.
    strong_per_deg2 : float
        All strong lenses of the population (the integral), per deg^2.
    detectable_per_deg2, detectable_low, detectable_high, detectable_stderr : float
        ``strong_per_deg2`` times the detectable fraction, its interval (Wilson, from the
        fraction; the integral itself is exact to < 0.1%) and standard error, per deg^2.
    n_strong, n_detectable, n_detectable_low, n_detectable_high : float
        The same times the area: expected numbers over the footprint.
    lenspop_prediction : float
        LensPop's own DES number (about 2400 detectable lenses, Collett 2015).
    density : LensDensity
        The integral's details.
    fraction : DetectableFraction
        The Monte Carlo's details.
    """

    survey: str
    area_deg2: float
    strong_per_deg2: float
    detectable_per_deg2: float
    detectable_low: float
    detectable_high: float
    detectable_stderr: float
    n_strong: float
    n_detectable: float
    n_detectable_low: float
    n_detectable_high: float
    lenspop_prediction: float
    density: LensDensity
    fraction: DetectableFraction

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-lens table)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("density", "fraction")}
        out["density"] = asdict(self.density)
        fr = self.fraction
        out["fraction"] = {
            "n": fr.n,
            "k": fr.k,
            "fraction": fr.fraction,
            "low": fr.low,
            "high": fr.high,
            "confidence": fr.confidence,
            "n_traced": fr.n_traced,
            "method": fr.method,
            "medians_detectable": fr.medians() if fr.k else {},
        }
        return out


def sky_density(
    survey: str | Survey = "des-y3",
    *,
    n: int = 20000,
    rng: int = 0,
    cosmology: Cosmology = Planck18,
    area: float | None = None,
    npix: int = 100,
    method: str = "prefilter",
    confidence: float = 0.95,
    psf_scale: float = 1.0,
    fraction: DetectableFraction | None = None,
    source_population: str | None = None,
) -> SkyDensity:
    """Strong-lens and LensPop-detectable densities and counts over a survey footprint.

    ``area`` (deg^2) defaults to the preset's footprint (:func:`survey_area`); ``n`` lenses are
    drawn for the detectable fraction (:func:`detectable_fraction`), unless ``fraction`` (a
    result of it, for this survey and cosmology) is given. ``source_population``
    (``"deep-field"`` or ``"lenspop"``) replaces the preset's own sources, e.g. to see what
    LensPop's DES configuration gives with the deep-field sources of ``des-y3``.
    """
    surv = load_survey(survey)
    a = survey_area(surv) if area is None else float(area)
    if not a > 0:
        raise SimlensValueError(f"area must be > 0 deg^2, got {area!r}")
    sp = plp.survey_source_population(surv) if source_population is None else source_population
    dens = lens_density(cosmology, source_population=sp)
    frac = (
        fraction
        if fraction is not None
        else detectable_fraction(
            n,
            survey=surv,
            cosmology=cosmology,
            rng=rng,
            npix=npix,
            method=method,
            confidence=confidence,
            psf_scale=psf_scale,
            source_population=source_population,
        )
    )
    s = dens.per_deg2
    return SkyDensity(
        survey=surv.name,
        area_deg2=a,
        strong_per_deg2=s,
        detectable_per_deg2=s * frac.fraction,
        detectable_low=s * frac.low,
        detectable_high=s * frac.high,
        detectable_stderr=s * frac.stderr,
        n_strong=s * a,
        n_detectable=s * frac.fraction * a,
        n_detectable_low=s * frac.low * a,
        n_detectable_high=s * frac.high * a,
        lenspop_prediction=lenspop_des_prediction(),
        density=dens,
        fraction=frac,
    )
