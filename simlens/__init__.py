"""simlens: on-demand DES-like, LensPop-style strong lenses and non-lenses with truth tables.

>>> import simlens
>>> sim = simlens.Simulator("des-y3")
>>> ds = sim.lenses(16, rng=0, theta_E=(1.0, 2.7))
>>> ds.images.shape, len(ds.truth)
((16, 100, 100, 4), 16)
>>> path = ds.save("set.h5")
>>> simlens.load("set.h5")
Dataset(n=16, npix=100, bands=('g', 'r', 'i', 'z'), lenses=16, nonlenses=0)

Sampling (``sim.sample_lenses``) gives a truth table, one row per image; rendering
(``sim.render``) turns rows into float32 ``(n, 100, 100, 4)`` griz images in counts at zero
point 30. Units: arcsec, km/s, AB mag.
"""

from __future__ import annotations

from simlens._version import __version__
from simlens.errors import SimlensError, SimlensKeyError, SimlensValueError
from simlens.io.dataset import Dataset, load
from simlens.io.writer import DatasetWriter
from simlens.scale.generation import generate
from simlens.simulator import Simulator
from simlens.survey import Band, Survey, available_surveys, load_survey

__all__ = [
    "Band",
    "Dataset",
    "DatasetWriter",
    "SimlensError",
    "SimlensKeyError",
    "SimlensValueError",
    "Simulator",
    "Survey",
    "__version__",
    "available_surveys",
    "generate",
    "load",
    "load_survey",
]
