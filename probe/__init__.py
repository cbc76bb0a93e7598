"""probe: a model-agnostic sensitivity probe for image classifiers (strong-lens finders).

Measures how a model's correct-class score changes with a parameter of its inputs: binned by a
known value, under a perturbation sweep, or on sets re-simulated at each value of a simulator
parameter (Jacobs et al., section 3.2). probe knows nothing about lenses or simulators: it sees
images, labels, values and a model; simulators plug in through :class:`SimulatorProtocol`.

Importing probe is cheap: it never imports TensorFlow (only the Keras adapter does, when given
a Keras model), matplotlib (only :mod:`probe.sweeps.plotting`, when plotting) or any simulator.

Example
-------
>>> import numpy as np, probe
>>> p = probe.Probe(lambda x: x.mean(axis=(1, 2, 3)).clip(0, 1), batch_size=64)
>>> images = np.full((4, 8, 8, 1), 0.75, np.float32); labels = np.array([1, 1, 0, 0])
>>> r = p.sweep(images, labels, probe.perturbers.DiskOcclusion, values=[0, 2], rng=0)
>>> r.table[r.table.group == "lens"]["mean"].round(4).tolist()
[0.75, 0.6094]
"""

from __future__ import annotations

from probe import adapters, perturbers

# The version is written once, in simlens/_version.py, and built into the distribution's
# metadata; probe reads it from there so that it never imports simlens.
from probe._version import __version__
from probe.binning import Binning
from probe.completeness.parent import selected_vs_parent
from probe.completeness.result import SelectionFunction
from probe.completeness.surfaces import SelectionSurface, selection_surface
from probe.errors import ProbeError, ProbeKeyError, ProbeTypeError, ProbeValueError
from probe.gating.expectations import Completeness, Direction, Invariance, MinScore, NoRegression
from probe.gating.result import GateResult
from probe.gating.run import run_gate
from probe.gating.suite import Suite, load_suite
from probe.gating.verdicts import Outcome
from probe.protocols import ScoreModel, SimulatorProtocol
from probe.selection import selection_function
from probe.statistics import StatsParams
from probe.sweeps.plotting import plot_results
from probe.sweeps.result import Result, read_metadata
from probe.sweeps.sensitivity import Probe, correct_class_score
from probe.trends import Trend
from probe.yields import Stratum, Yield, expected_yield

__all__ = [
    "Binning",
    "Completeness",
    "Direction",
    "GateResult",
    "Invariance",
    "MinScore",
    "NoRegression",
    "Outcome",
    "Probe",
    "ProbeError",
    "ProbeKeyError",
    "ProbeTypeError",
    "ProbeValueError",
    "Result",
    "ScoreModel",
    "SelectionFunction",
    "SelectionSurface",
    "SimulatorProtocol",
    "StatsParams",
    "Stratum",
    "Suite",
    "Trend",
    "Yield",
    "__version__",
    "adapters",
    "correct_class_score",
    "expected_yield",
    "load_suite",
    "perturbers",
    "plot_results",
    "read_metadata",
    "run_gate",
    "selected_vs_parent",
    "selection_function",
    "selection_surface",
]
