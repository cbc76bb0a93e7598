"""Survey presets: frozen descriptions of an imaging survey, loaded from ``catalogs/surveys``.

A preset file is TOML in which every number is a table ``{ value, unit, source }``. The loader
checks that each expected key is present, carries the expected unit and lies in its valid range,
so a typo in a user's survey file fails at load time with the key named, not as a wrong image.

Derived quantities (sky counts per pixel, noise variance, depth) are computed here in one place
so that the renderer and the tests use the same arithmetic.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simlens._catalogs import catalog_file
from simlens.errors import SimlensKeyError, SimlensValueError

__all__ = ["Band", "Survey", "available_surveys", "load_survey"]

PSF_PROFILES = ("gaussian", "moffat")
PSF_STATISTICS = ("median", "mean")


@dataclass(frozen=True)
class Band:
    """One filter of a survey.

    Attributes
    ----------
    name : str
        Filter name, e.g. ``"g"``.
    psf_fwhm : float
        Preset PSF FWHM, arcsec (median or mean of the per-image distribution, see
        :attr:`Survey.psf_statistic`).
    sky_brightness : float
        Sky surface brightness, AB mag / arcsec^2.
    zero_point_electron : float
        AB magnitude that gives 1 electron per second.
    n_exposures : float
        Effective number of single exposures in the coadd (may be fractional: it is calibrated
        to the survey's depth).
    depth_10sigma : float
        Published 10-sigma depth in a 1.95" diameter aperture, AB mag (a check, not an input).
    """

    name: str
    psf_fwhm: float
    sky_brightness: float
    zero_point_electron: float
    n_exposures: float
    depth_10sigma: float


@dataclass(frozen=True)
class Survey:
    """A frozen survey preset.

    Images are in coadd counts at :attr:`zero_point` (``mag = zero_point - 2.5 log10(counts)``),
    background subtracted. The noise of a coadd pixel of ``c`` counts is Gaussian with variance
    ``c / electrons_per_count + read_variance_counts`` plus the sky term, see
    :meth:`noise_variance`.
    """

    name: str
    description: str
    pixel_scale: float  # arcsec / pixel
    read_noise: float  # electrons per exposure
    gain: float  # electrons / ADU (recorded only)
    exposure_time: float  # s, one exposure
    zero_point: float  # AB mag of 1 count in the coadd image
    psf_profile: str
    moffat_beta: float
    psf_statistic: str
    psf_log_scatter: float  # lognormal sigma of FWHM, natural log
    psf_band_correlation: float
    bands: tuple[Band, ...]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # -- lookups -----------------------------------------------------------------------------
    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names in image-channel order."""
        return tuple(b.name for b in self.bands)

    def band(self, name: str) -> Band:
        """Return the :class:`Band` called ``name``."""
        for b in self.bands:
            if b.name == name:
                return b
        raise SimlensKeyError(f"band {name!r} not in survey {self.name!r} ({self.band_names})")

    # -- derived quantities ------------------------------------------------------------------
    def electrons_per_count(self, band: str) -> float:
        """Electrons collected in the whole coadd per image count of ``band``."""
        b = self.band(band)
        t_eff = b.n_exposures * self.exposure_time
        # 1 count at zero point Z is 10**(-0.4 (Z - zp_e)) e-/s, collected for t_eff seconds.
        return t_eff * 10.0 ** (-0.4 * (self.zero_point - b.zero_point_electron))

    def sky_counts_per_pixel(self, band: str) -> float:
        """Sky level in counts per pixel (subtracted from the image, but its shot noise stays)."""
        b = self.band(band)
        return 10.0 ** (-0.4 * (b.sky_brightness - self.zero_point)) * self.pixel_scale**2

    def read_variance_counts(self, band: str) -> float:
        """Read-noise variance per coadd pixel, counts^2 (``N_exp * RN^2`` electrons^2)."""
        b = self.band(band)
        epc = self.electrons_per_count(band)
        return b.n_exposures * self.read_noise**2 / epc**2

    def background_sigma(self, band: str) -> float:
        """Standard deviation of the noise of an empty pixel (sky + read), counts."""
        epc = self.electrons_per_count(band)
        return math.sqrt(self.sky_counts_per_pixel(band) / epc + self.read_variance_counts(band))

    def depth(self, band: str, *, aperture_diameter: float = 1.95, nsigma: float = 10.0) -> float:
        """Analytic ``nsigma`` depth in a circular aperture (AB mag), background noise only.

        This is the magnitude whose flux inside the aperture equals ``nsigma`` times the noise
        summed over the aperture's pixels, the DES DR1 definition. Tests measure it from images.
        """
        npix_ap = math.pi * (aperture_diameter / 2.0) ** 2 / self.pixel_scale**2
        sigma_ap = math.sqrt(npix_ap) * self.background_sigma(band)
        return self.zero_point - 2.5 * math.log10(nsigma * sigma_ap)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (for provenance)."""
        d = asdict(self)
        d["sources"] = dict(self.sources)
        return d


# -------------------------------------------------------------------------------------------
# Loading and validation
# -------------------------------------------------------------------------------------------

# key -> (unit, low, high); ranges are generous physical limits that catch typos and unit slips
_CAMERA_KEYS: dict[str, tuple[str, float, float]] = {
    "pixel_scale": ("arcsec/pixel", 0.01, 5.0),
    "read_noise": ("electron", 0.0, 100.0),
    "gain": ("electron/adu", 0.01, 100.0),
    "exposure_time": ("s", 0.1, 1e5),
    "zero_point": ("mag", 10.0, 40.0),
}
_PSF_NUMBERS: dict[str, tuple[str, float, float]] = {
    "moffat_beta": ("", 1.5, 20.0),
    "log_scatter": ("ln(arcsec)", 0.0, 1.0),
    "band_correlation": ("", 0.0, 1.0),
}
_BAND_KEYS: dict[str, tuple[str, float, float]] = {
    "psf_fwhm": ("arcsec", 0.05, 10.0),
    # deeplenstronomy passed mag/arcsec^2 where counts were expected: a unit check stops that.
    "sky_brightness": ("mag/arcsec2", 10.0, 30.0),
    "zero_point_electron": ("mag", 15.0, 40.0),
    "n_exposures": ("", 0.01, 1e4),
    "depth_10sigma": ("mag", 10.0, 40.0),
}


def _entry(table: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    if key not in table:
        raise SimlensValueError(f"survey file: missing key {where}.{key}")
    e = table[key]
    if not isinstance(e, Mapping) or not {"value", "unit", "source"} <= set(e):
        raise SimlensValueError(
            f"survey file: {where}.{key} must be a table {{ value, unit, source }}, got {e!r}"
        )
    return e


def _number(
    table: Mapping[str, Any], key: str, where: str, spec: tuple[str, float, float]
) -> float:
    unit, lo, hi = spec
    e = _entry(table, key, where)
    if e["unit"] != unit:
        raise SimlensValueError(
            f"survey file: {where}.{key} has unit {e['unit']!r}, expected {unit!r}"
        )
    v = e["value"]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise SimlensValueError(f"survey file: {where}.{key} must be a finite number, got {v!r}")
    if not lo <= float(v) <= hi:
        raise SimlensValueError(
            f"survey file: {where}.{key} = {v} {unit} is outside the valid range [{lo}, {hi}]"
        )
    return float(v)


def _choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...]) -> str:
    v = _entry(table, key, where)["value"]
    if v not in choices:
        raise SimlensValueError(f"survey file: {where}.{key} = {v!r}, expected one of {choices}")
    return str(v)


def survey_from_mapping(data: Mapping[str, Any], *, origin: str = "<mapping>") -> Survey:
    """Build and validate a :class:`Survey` from parsed TOML ``data``."""
    for section in ("camera", "psf", "bands"):
        if section not in data or not isinstance(data[section], Mapping):
            raise SimlensValueError(f"survey file {origin}: missing section [{section}]")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SimlensValueError(f"survey file {origin}: missing key name")
    cam, psf, bands_t = data["camera"], data["psf"], data["bands"]
    sources: dict[str, str] = {}
    nums = {k: _number(cam, k, "camera", s) for k, s in _CAMERA_KEYS.items()}
    sources.update({f"camera.{k}": str(cam[k]["source"]) for k in _CAMERA_KEYS})
    psf_nums = {k: _number(psf, k, "psf", s) for k, s in _PSF_NUMBERS.items()}
    sources.update({f"psf.{k}": str(psf[k]["source"]) for k in _PSF_NUMBERS})
    profile = _choice(psf, "profile", "psf", PSF_PROFILES)
    statistic = _choice(psf, "statistic", "psf", PSF_STATISTICS)
    if not bands_t:
        raise SimlensValueError(f"survey file {origin}: [bands] is empty")
    bands = []
    for bname, bt in bands_t.items():
        where = f"bands.{bname}"
        vals = {k: _number(bt, k, where, s) for k, s in _BAND_KEYS.items()}
        sources.update({f"{where}.{k}": str(bt[k]["source"]) for k in _BAND_KEYS})
        bands.append(Band(name=bname, **vals))
    return Survey(
        name=name,
        description=str(data.get("description", "")),
        psf_profile=profile,
        moffat_beta=psf_nums["moffat_beta"],
        psf_statistic=statistic,
        psf_log_scatter=psf_nums["log_scatter"],
        psf_band_correlation=psf_nums["band_correlation"],
        bands=tuple(bands),
        sources=sources,
        **nums,
    )


def _preset_dir() -> Any:
    return catalog_file("surveys")


def available_surveys() -> tuple[str, ...]:
    """Names of the presets shipped in ``catalogs/surveys``."""
    return tuple(
        sorted(
            p.name.removesuffix(".toml")
            for p in _preset_dir().iterdir()
            if p.name.endswith(".toml")
        )
    )


def load_survey(survey: str | Path | Survey) -> Survey:
    """Load a survey preset by name (``"des-y3"``), from a TOML path, or pass a Survey through."""
    if isinstance(survey, Survey):
        return survey
    if isinstance(survey, Path) or (isinstance(survey, str) and survey.endswith(".toml")):
        path = Path(survey)
        if path.is_dir():
            raise SimlensValueError(f"survey: {str(path)!r} is a directory, not a survey file")
        if not path.is_file():
            raise SimlensValueError(f"survey: file {str(path)!r} does not exist")
        try:
            with path.open("rb") as fh:
                doc = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise SimlensValueError(f"survey: {str(path)!r} is not valid TOML ({err})") from None
        return survey_from_mapping(doc, origin=str(path))
    if not isinstance(survey, str):
        raise SimlensValueError(f"survey: expected a name, a path or a Survey, got {survey!r}")
    names = available_surveys()
    if survey not in names:
        raise SimlensKeyError(f"survey: unknown survey {survey!r}; available: {', '.join(names)}")
    res = _preset_dir().joinpath(f"{survey}.toml")
    text = res.read_text(encoding="utf-8")
    return survey_from_mapping(tomllib.loads(text), origin=f"catalogs/surveys/{survey}")
