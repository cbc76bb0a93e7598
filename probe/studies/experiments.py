"""What the study runs: the paper's experiments, the sizes, the lens sets and the settings.

:data:`EXPERIMENTS` lists the experiments of Jacobs et al. (sections 4.1-4.6) in the paper's
order (the table in :mod:`probe.study`); :data:`SIZES` names the numbers of images each uses;
:data:`DEFAULT_SETS` holds the simulator controls of the lens sets; :class:`StudyModel` a model
and its non-lenses; :class:`StudyConfig` a run's settings; :class:`StudyResult` what a run of
:func:`probe.studies.run.run_study` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probe import perturbers as P

if TYPE_CHECKING:
    from probe.studies.galleries import Gallery
    from probe.sweeps.result import Result

__all__ = [
    "DEFAULT_SETS",
    "EXPERIMENTS",
    "MIN_BIN_COUNT",
    "SIZES",
    "UNLENSED",
    "Experiment",
    "StudyConfig",
    "StudyModel",
    "StudyResult",
    "StudySizes",
]

#: Fewest images per bin (binned experiments) or per value and class (sweeps, re-simulations)
#: that the default and full sizes give; a run with fewer warns and records it.
MIN_BIN_COUNT = 100


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper: how it is run and over which values.

    ``kind`` is "sweep" (perturbation of the sweep set), "resimulate" (paired re-simulation of
    ``control``) or "bin" (binned by the truth column ``column`` of a lens set).
    """

    name: str
    title: str
    section: str
    kind: str
    unit: str
    values: tuple[float, ...] = ()
    smoke_values: tuple[float, ...] = ()
    perturber: type[P.Perturber] | None = None
    control: str = ""
    column: str = ""
    bins: tuple[float, float, int] = (0.0, 1.0, 1)
    smoke_bins: int = 4
    data: str = "lenses"


def _grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + k * step, 10) for k in range(n + 1))


#: The experiments, in the paper's order.
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "color", "Colour jitter", "4.1", "sweep", "sigma",
        _grid(0, 1, 0.05), (0.0, 0.5, 1.0), perturber=P.ColorJitter,
    ),
    Experiment(
        "blur", "Gaussian blur", "4.2", "sweep", "px",
        _grid(0, 3, 0.25), (0.0, 1.5, 3.0), perturber=P.GaussianBlur,
    ),
    Experiment(
        "psf", "PSF ratio (re-simulated)", "4.2", "resimulate", "x training PSF",
        _grid(0.6, 3.0, 0.2), (0.6, 1.0, 3.0), control="psf_scale",
    ),
    Experiment(
        "psf_source", "Lensed-source PSF ratio (lens keeps its PSF)", "4.2", "resimulate",
        "x training PSF", _grid(0.6, 3.0, 0.2), (0.6, 1.0, 3.0), control="psf_scale_source",
    ),
    Experiment(
        "theta_E", "Einstein radius", "4.3", "bin", "arcsec",
        column="theta_E", bins=(1.0, 2.7, 17), data="lenses",
    ),
    Experiment(
        "mag_lens_r", "Lens r magnitude", "4.4", "bin", "mag",
        column="mag_lens_r", bins=(17.0, 23.0, 12), data="mag_lens_r",
    ),
    Experiment(
        "mag_source_g", "Lensed source g magnitude", "4.4", "bin", "mag",
        column="mag_source_g", bins=(20.0, 23.0, 12), data="mag_source_g",
    ),
    Experiment(
        "annulus", "Annulus occlusion (width 5 px)", "4.5", "sweep", "px",
        _grid(0, 50, 2.5), (0.0, 5.0, 25.0, 50.0), perturber=P.AnnulusOcclusion,
    ),
    Experiment(
        "disk", "Disk occlusion", "4.5", "sweep", "px",
        _grid(0, 35, 2.5), (0.0, 5.0, 35.0), perturber=P.DiskOcclusion,
    ),
    Experiment(
        "noise", "Normalised Gaussian noise", "4.6", "sweep", "band std",
        (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0, 30.0),
        (0.0, 1.0, 30.0), perturber=P.GaussianNoise,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class StudySizes:
    """How many images each experiment uses.

    Attributes
    ----------
    n_sweep : int
        Lenses, and non-lenses per model, of the perturbation sweeps.
    n_theta_E : int
        Lenses binned by Einstein radius.
    n_mag : int
        Lenses of each magnitude experiment.
    n_psf : int
        Lenses, and non-lenses per model, re-simulated at every PSF ratio.
    smoke : bool
        Use the experiments' short value grids and few bins.
    """

    n_sweep: int
    n_theta_E: int
    n_mag: int
    n_psf: int
    smoke: bool = False


#: Named sizes: ``full`` is the paper's (5000 per class, 10,000 for theta_E, 4000 per magnitude
#: experiment); ``default`` gives every bin, and every value of a sweep per class, at least
#: :data:`MIN_BIN_COUNT` images (theta_E 17 x 100, magnitudes 12 x 100) and fits the demo's
#: 15 minutes on 2 CPU cores for two small CNNs; ``smoke`` is for CI.
SIZES: dict[str, StudySizes] = {
    "smoke": StudySizes(n_sweep=32, n_theta_E=32, n_mag=24, n_psf=8, smoke=True),
    "default": StudySizes(n_sweep=150, n_theta_E=1700, n_mag=1200, n_psf=100),
    "full": StudySizes(n_sweep=5000, n_theta_E=10000, n_mag=4000, n_psf=5000),
}


@dataclass
class StudyModel:
    """A model under study and the non-lenses it is tested against.

    Attributes
    ----------
    name : str
        Short name (file names, legends), e.g. "A".
    model : Any
        Anything :class:`probe.Probe` accepts (callable, ``keras.Model``, ``.keras`` path, spec).
    nonlens_kinds : mapping of str to float
        Non-lens kinds of its test set and their fractions: ``{"unlensed": 1.0}`` (matched
        negatives, :data:`UNLENSED`) for a network trained on lenses vs. the same galaxies
        without a source, ``{"field": 1.0}`` for one trained on the field, or any simulator
        kinds, e.g. ``{"elliptical": 0.5, "star": 0.5}``.
    """

    name: str
    model: Any
    nonlens_kinds: Mapping[str, float] = field(default_factory=lambda: {"elliptical": 1.0})


#: Simulator controls of the lens sets (``simlens`` keywords; another simulator may need others).
#: Every set draws Einstein radii in 1.0-2.7" (the paper's "typical range for likely,
#: detectable lenses in DES", section 4.3) with lensed-source g in 20-22.5 and lens r in 18-21,
#: as the reference finders' training lenses (scripts/train_reference.py): arcs a DES search can
#: see. Each magnitude set widens its own magnitude beyond training to the experiment's range:
#: source g 20-23 (the paper's 20-22, plus the g > 22 of its claims) and lens r 17-23 (the
#: paper's 19-21 and its claims r < 19 and r > 22.5; see the module docstring for the edges).
DEFAULT_SETS: dict[str, dict[str, Any]] = {
    "lenses": {"theta_E": (1.0, 2.7), "mag_source_g": (20.0, 22.5), "mag_lens_r": (18.0, 21.0)},
    "mag_source_g": {
        "theta_E": (1.0, 2.7),
        "mag_source_g": (20.0, 23.0),
        "mag_lens_r": (18.0, 21.0),
    },
    "mag_lens_r": {"theta_E": (1.0, 2.7), "mag_source_g": (20.0, 22.5), "mag_lens_r": (17.0, 23.0)},
}


@dataclass(frozen=True)
class StudyConfig:
    """Settings of a study run.

    Attributes
    ----------
    sizes : StudySizes
        Numbers of images (see :data:`SIZES`).
    seed : int
        Root seed: data sets, perturbations and bootstraps.
    sets : mapping of str to mapping
        Simulator controls of each lens set: "lenses" (sweeps, theta_E, and the lenses of the
        PSF re-simulation), "mag_source_g" and "mag_lens_r" (see :data:`DEFAULT_SETS`).
    experiments : tuple of str
        Which experiments to run (default: all of :data:`EXPERIMENTS`).
    batch_size : int
        Images per model call.
    progress : bool
        Log progress lines (INFO, logger ``probe.study``) and show progress bars.
    """

    sizes: StudySizes = SIZES["default"]
    seed: int = 2026
    sets: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_SETS))
    experiments: tuple[str, ...] = tuple(e.name for e in EXPERIMENTS)
    batch_size: int = 256
    progress: bool = True


@dataclass
class StudyResult:
    """All results of a study: ``results[(model name, experiment name)]`` and bookkeeping."""

    models: list[str]
    results: dict[tuple[str, str], Result]
    config: dict[str, Any]
    timings: dict[str, float]
    galleries: dict[tuple[str, str], Gallery] = field(default_factory=dict)

    def experiments(self) -> list[Experiment]:
        """The experiments present, in the paper's order."""
        names = {e for _, e in self.results}
        return [e for e in EXPERIMENTS if e.name in names]


#: Non-lens "kind" meaning matched negatives: lenses drawn like the study's lens set, rendered
#: without their source (``sim.unlensed``), as network A of the paper was trained and tested.
UNLENSED = "unlensed"
