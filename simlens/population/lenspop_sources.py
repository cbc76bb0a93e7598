"""LensPop's own source population (``source_population="lenspop"``).

LensPop (Collett 2015; github.com/tcollett/LensPop, ``PopulationFunctions.SourcePopulation_``
with ``population="lsst"``) does not model sources parametrically: each deflector gets one
galaxy drawn uniformly from a released mock catalogue (``lsst.1sqdegree_catalog2.txt``, 34,331
galaxies, shipped here as ``catalogs/lenspop_sources.csv.gz``), placed uniformly at a fixed
density of 0.06 per arcsec^2, with its catalogue redshift and g/r/i/z magnitudes, and a size
from the catalogue's absolute r magnitude (``RofMz``)::

    r_e = 10**(-(M_r + 18)/4) ((1 + z)/1.6)**-1.2 kpc x 10**N(0, 0.35).

This module draws that population; :mod:`simlens.sampling.lens_systems` uses it when a survey
preset's
``[lenspop] source_population`` is ``"lenspop"`` (the ``lenspop-des`` preset), and
:func:`simlens.yields.lens_density` integrates the optical depth over the catalogue. Numbers
and their sources: ``catalogs/population.toml`` ``[lenspop_sources]``.
"""

from __future__ import annotations

import gzip
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens._catalogs import catalog_file, load_toml
from simlens.constants import ARCSEC_PER_DEG, ARCSEC_PER_RAD
from simlens.errors import SimlensValueError
from simlens.physics.distances import distances

__all__ = [
    "DEEP_FIELD",
    "LENSPOP",
    "SOURCE_POPULATIONS",
    "check_source_population",
    "lenspop_source_catalogue",
    "lenspop_source_density",
    "lenspop_source_size",
    "sample_lenspop_sources",
    "survey_source_population",
]

F64 = NDArray[np.float64]

DEEP_FIELD = "deep-field"
LENSPOP = "lenspop"
SOURCE_POPULATIONS = (DEEP_FIELD, LENSPOP)
CATALOGUE_FILE = "lenspop_sources.csv.gz"


def check_source_population(name: str) -> str:
    """``name`` if it is a known source population, else a clear error."""
    if name not in SOURCE_POPULATIONS:
        raise SimlensValueError(
            f"source_population must be one of {SOURCE_POPULATIONS}, got {name!r}"
        )
    return name


@cache
def _params() -> dict[str, float]:
    t = load_toml("population.toml")["lenspop_sources"]
    return {k: float(v["value"]) for k, v in t.items()}


@cache
def lenspop_source_catalogue() -> pd.DataFrame:
    """LensPop's released source catalogue: ``z_source``, ``mag_{g,r,i,z}`` (AB), ``abs_mag_r``.

    Every row of LensPop's ``lsst.1sqdegree_catalog2.txt`` in file order (34,331 galaxies over
    0.2 x 0.2 deg); treat the returned frame as read-only (it is cached).
    """
    with catalog_file(CATALOGUE_FILE).open("rb") as fh, gzip.open(fh) as gz:
        df = pd.read_csv(gz)
    return df


def lenspop_source_density() -> float:
    """LensPop's source density, all magnitudes, per deg^2 (0.06 arcsec^-2)."""
    return _params()["density"] * ARCSEC_PER_DEG**2


def sample_lenspop_sources(n: int, rng: np.random.Generator) -> dict[str, F64]:
    """``n`` sources drawn uniformly (with replacement) from LensPop's catalogue.

    Returns ``z_source``, ``mag_g/r/i/z`` (unlensed AB) and ``abs_mag_r`` arrays of shape (n,).
    One ``rng.integers`` call per draw, as LensPop's ``numpy.random.randint``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise SimlensValueError(f"n must be a non-negative integer, got {n!r}")
    cat = lenspop_source_catalogue()
    idx = rng.integers(0, len(cat), int(n))
    return {c: cat[c].to_numpy(dtype=float)[idx] for c in cat.columns}


def lenspop_source_size(
    abs_mag_r: Any, z: Any, rng: np.random.Generator, cosmology: Any, *, scatter: bool = True
) -> F64:
    """LensPop's source half-light radius (``RofMz``), arcsec.

    ``r_e = 10**(-0.25 (M_r + 18)) ((1 + z)/1.6)**-1.2`` kpc, times a 0.35 dex lognormal
    scatter when ``scatter``, over ``D_A(z)`` of ``cosmology``. ``abs_mag_r``: the catalogue's
    rest-frame absolute r magnitude (AB); ``z`` > 0.
    """
    p = _params()
    m, zz = np.broadcast_arrays(np.asarray(abs_mag_r, dtype=float), np.asarray(z, dtype=float))
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(zz)) and np.all(zz > 0)):
        raise SimlensValueError("abs_mag_r must be finite and z finite and > 0")
    log_r = -p["size_mag_slope"] * (m - p["size_mag_ref"]) - p["size_evolution_slope"] * np.log10(
        (1.0 + zz) / p["size_z_pivot"]
    )
    if scatter:
        log_r = log_r + rng.normal(0.0, p["size_scatter"], m.shape)
    d_a_kpc = distances(cosmology).angular_diameter_distance(zz) * 1e3
    return np.asarray(10.0**log_r / d_a_kpc * ARCSEC_PER_RAD, dtype=float)


@cache
def _preset_population(name: str) -> str:
    if not catalog_file("surveys", f"{name}.toml").is_file():
        return DEEP_FIELD
    table = load_toml("surveys", f"{name}.toml").get("lenspop", {})
    entry = table.get("source_population")
    if entry is None:
        return DEEP_FIELD
    value = str(entry["value"])
    if value not in SOURCE_POPULATIONS:
        raise SimlensValueError(
            f"catalogs/surveys/{name}.toml: [lenspop] source_population must be one of "
            f"{SOURCE_POPULATIONS}, got {value!r}"
        )
    return value


def survey_source_population(survey: Any) -> str:
    """The source population a survey preset selects (``[lenspop] source_population``).

    ``"lenspop"`` for ``lenspop-des``; ``"deep-field"`` (the parametric model of
    :mod:`simlens.population.relations`) for every other preset and for surveys not shipped.
    """
    return _preset_population(str(getattr(survey, "name", survey)))
