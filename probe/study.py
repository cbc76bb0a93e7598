"""The paper's whole sensitivity study (Jacobs et al., sections 4.1-4.6) for one or more models.

:func:`run_study` draws the test sets from a simulator (anything with the methods of
:class:`probe.SimulatorProtocol`; probe never imports one), runs every experiment of the paper
for every model with per-class curves, and hands the results to :mod:`probe.report`, which writes
the figures, tables, the Table-2-like summary and a self-contained ``report.html``.

=============  ==========================================================  =================
experiment     what                                                        paper section
=============  ==========================================================  =================
color          colour jitter sigma 0-1, step 0.05 (sweep)                  4.1
blur           Gaussian blur sigma 0-3 px, step 0.25 (sweep)               4.2
psf            PSF ratio 0.6-3, step 0.2, paired re-simulation             4.2
psf_source     PSF ratio of the lensed source only (lens keeps its PSF)    4.2
theta_E        Einstein radius 1.0-2.7", 17 bins of 0.1" (lenses)          4.3
mag_lens_r     lens r 17-23, 0.5 mag bins (lenses)                         4.4
mag_source_g   lensed source g 20-23, 0.25 mag bins (lenses)               4.4
annulus        annulus occlusion, width 5 px, radius 0-50 px (sweep)       4.5
disk           disk occlusion, radius 0-35 px (sweep)                      4.5
noise          normalised Gaussian noise sigma 0-30 (sweep)                4.6
=============  ==========================================================  =================

Test sets (shared by all models; the non-lenses are drawn per distinct kind mixture): lenses with
the controls ``StudyConfig.sets["lenses"]`` (default Einstein radius in 1.0-2.7", lensed
source g in 20-22.5 and lens r in 18-21: the paper's "typical range for likely, detectable
lenses", as the reference finders were trained); the magnitude sets widen ``mag_source_g`` to
20-23 or ``mag_lens_r`` to 17-23, beyond the training ranges, so that the paper's claims about
faint sources (g > 22) and bright or faint lenses (r < 19, r > 22.5) can be tested (see
:data:`DEFAULT_SETS`). The binned parameter of each set is drawn stratified: object ``i`` is
uniform within bin ``i mod n_bins`` of its experiment, so every bin holds the same number of
lenses (any prefix of the set too) instead of a binomial count. Perturbation sweeps use the
first ``n_sweep`` lenses plus ``n_sweep`` non-lenses of the model's kinds; the Einstein-radius
experiment bins the first ``n_theta_E`` lenses. ``study.json`` records the fewest images of any
bin (or value and class) per experiment (``min_bin_count``); the run warns under
:data:`MIN_BIN_COUNT` at default or full sizes.

Lens r beyond the population: lenses with Einstein radii of 1-2.7" are massive galaxies, most
with r of 15-20 (simlens: 10% fainter than 20.7, 1% fainter than 22.5). The sampler picks the
candidate nearest the requested magnitudes and shifts its light by the residual, so lenses
fainter than r ~ 22 are population lenses dimmed by typically 1.5-2 mag (colours, sizes and
redshifts of brighter lenses); the bright edge (17) is well inside the population.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe import perturbers as P
from probe import rng as _rng
from probe.adapters.specs import load_callable
from probe.binning import Binning
from probe.errors import ProbeValueError
from probe.protocols import SimulatorProtocol
from probe.studies.galleries import Gallery, pick_moved, pick_worst_bin
from probe.sweeps.result import Result
from probe.sweeps.sensitivity import Probe

__all__ = [
    "DEFAULT_SETS",
    "EXPERIMENTS",
    "MIN_BIN_COUNT",
    "SIZES",
    "UNLENSED",
    "YIELD_SIZES",
    "YIELD_THRESHOLDS",
    "Experiment",
    "StudyConfig",
    "StudyModel",
    "StudyResult",
    "StudySizes",
    "add_study_cli",
    "run_study",
    "run_study_cli",
    "study_yields",
]

logger = logging.getLogger(__name__)

# Seed streams of the study's data sets (below the study's root seed).
_STREAMS = {
    "lenses": 0,
    "mag_source_g": 1,
    "mag_lens_r": 2,
    "nonlenses": 3,
    "experiments": 4,
    "strata": 5,
}

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


class _KindMixture:
    """A simulator whose non-lenses are a fixed mixture of kinds (for ``Probe.resimulate``).

    Wraps any :class:`SimulatorProtocol`; lens draws get ``lens_controls``; non-lens draws are
    split over ``kinds`` by fraction, each kind from its own child generator, then shuffled.
    The kind :data:`UNLENSED` draws lenses with ``lens_controls`` and removes their source.
    """

    def __init__(
        self, sim: Any, kinds: Mapping[str, float], lens_controls: Mapping[str, Any]
    ) -> None:
        self.sim = sim
        self.kinds = dict(kinds)
        self.lens_controls = dict(lens_controls)
        # the tables drawn, in order (a paired re-simulation draws lenses, then non-lenses):
        # the galleries re-render rows of them
        self.drawn: list[pd.DataFrame] = []

    def sample_lenses(self, n: int, *, rng: _rng.RngLike, **controls: Any) -> pd.DataFrame:
        out = self.sim.sample_lenses(n, rng=rng, **{**self.lens_controls, **controls})
        self.drawn.append(out)
        return out

    def sample_nonlenses(self, n: int, *, rng: _rng.RngLike, **controls: Any) -> pd.DataFrame:
        entropy = _rng.root_entropy(rng)
        names = list(self.kinds)
        frac = np.array([self.kinds[k] for k in names], dtype=float)
        counts = np.floor(frac / frac.sum() * n).astype(int)
        counts[0] += n - counts.sum()
        parts = [
            self._draw(k, int(c), _rng.child(entropy, i), controls)
            for i, (k, c) in enumerate(zip(names, counts))
            if c > 0
        ]
        df = pd.concat(parts, ignore_index=True)
        order = _rng.child(entropy, len(names)).permutation(len(df))
        out = df.iloc[order].reset_index(drop=True)
        self.drawn.append(out)
        return out

    def _draw(
        self, kind: str, n: int, gen: np.random.Generator, controls: Mapping[str, Any]
    ) -> pd.DataFrame:
        if kind != UNLENSED:
            return self.sim.sample_nonlenses(n, rng=gen, kind=kind, **controls)
        # Matched negatives (network A's kind): lenses of the study's lens set without their
        # source; the simulator must offer ``unlensed`` (simlens does).
        if not callable(getattr(self.sim, "unlensed", None)):
            raise ProbeValueError(
                f"non-lens kind {UNLENSED!r} needs a simulator with an 'unlensed(truth)' method; "
                f"{type(self.sim).__name__} has none"
            )
        lenses = self.sim.sample_lenses(n, rng=gen, **{**self.lens_controls, **controls})
        return self.sim.unlensed(lenses)

    def render(self, truth: pd.DataFrame, *, noise: bool = True) -> np.ndarray:
        return self.sim.render(truth, noise=noise)

    def vary(self, truth: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
        return self.sim.vary(truth, name, value)


class _RenderCache:
    """A simulator whose ``render`` remembers images by truth table, up to ``max_bytes``.

    Re-rendering an identical truth table (same systems, same seeds) gives identical images, so
    a hit returns a copy of the stored ones. Once full it stores nothing more (and evicts
    nothing: a re-simulation scans its values in order, and least-recently-used eviction would
    drop each chunk just before it is asked for again). Everything else is passed through.
    """

    def __init__(self, sim: Any, max_bytes: int = 400 * 2**20) -> None:
        self.sim = sim
        self.max_bytes = max_bytes
        self._store: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        # only called for names not found normally; "sim" itself (e.g. while unpickling, before
        # __dict__ is restored) and dunders must not recurse through it
        if name == "sim" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.sim, name)

    def render(self, truth: pd.DataFrame, *, noise: bool = True) -> np.ndarray:
        from probe.provenance import hash_frame

        key = f"{noise}:{hash_frame(truth)}"
        if key in self._store:
            return self._store[key].copy()
        images = np.asarray(self.sim.render(truth, noise=noise))
        if sum(a.nbytes for a in self._store.values()) + images.nbytes <= self.max_bytes:
            self._store[key] = images.copy()
        return images


def _sweep_gallery(
    e: Experiment,
    model: str,
    r: Result,
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    seed: int,
) -> Gallery:
    """Images of a sweep whose score moved most, before and after, perturbed as scored."""
    from probe.adapters.images import ImageSet

    ref, value, samples = pick_moved(r.scores, float(values[0]))
    j = int(np.flatnonzero(values == value)[0])
    assert e.perturber is not None
    pert = e.perturber(float(value))  # type: ignore[call-arg]
    images = ImageSet(x)
    entropy = _rng.root_entropy(seed)
    after = []
    for i in samples:
        # the sweep perturbs block k of probe.rng.BLOCK images with stream (PERTURB, j, k)
        k = int(i) // _rng.BLOCK
        first, last = k * _rng.BLOCK, min((k + 1) * _rng.BLOCK, images.n)
        block = pert(images.batch(first, last), _rng.child(entropy, _rng.PERTURB, j, k))
        after.append(np.asarray(block[int(i) - first]))
    return _moved(e, model, r, ref, value, samples, y[samples], x[samples], np.stack(after))


def _resim_gallery(e: Experiment, model: str, r: Result, sim: _KindMixture) -> Gallery:
    """Re-simulated systems whose score moved most, rendered at the reference and the value."""
    ref, value, samples = pick_moved(r.scores, 1.0)
    base = pd.concat(sim.drawn[-2:], ignore_index=True) if len(sim.drawn) >= 2 else sim.drawn[-1]
    rows = base.iloc[samples]
    before = np.asarray(sim.render(sim.vary(rows, e.control, ref), noise=True))
    after = np.asarray(sim.render(sim.vary(rows, e.control, value), noise=True))
    labels = r.scores.drop_duplicates("sample").set_index("sample").loc[samples, "label"]
    return _moved(e, model, r, ref, value, samples, labels.to_numpy(), before, after)


def _moved(
    e: Experiment,
    model: str,
    r: Result,
    ref: float,
    value: float,
    samples: np.ndarray,
    labels: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> Gallery:
    wide = r.scores.pivot(index="sample", columns="value", values="p_lens")
    return Gallery(
        experiment=e.name,
        model=model,
        how=(
            f"the {len(samples)} images whose p(lens) moved most between {ref:g} and {value:g} "
            f"{e.unit} (the value where the scores moved most on average)"
        ),
        samples=np.asarray(samples),
        labels=np.asarray(labels, dtype=np.int64),
        before=before,
        p_before=wide.loc[samples, ref].to_numpy(dtype=float),
        after=after,
        p_after=wide.loc[samples, value].to_numpy(dtype=float),
        ref_value=ref,
        value=value,
    )


def _bin_gallery(e: Experiment, model: str, r: Result, images: np.ndarray) -> Gallery:
    """The lowest-scoring lenses of the worst bin of a binned experiment."""
    centre, samples = pick_worst_bin(r.scores)
    s = r.scores.set_index("sample").loc[samples]
    return Gallery(
        experiment=e.name,
        model=model,
        how=(
            f"the {len(samples)} lowest-scoring lenses of the worst bin (lowest mean score; "
            f"centre {centre:g} {e.unit})"
        ),
        samples=np.asarray(samples),
        labels=s["label"].to_numpy(dtype=np.int64),
        before=np.asarray(images[samples]),
        p_before=s["p_lens"].to_numpy(dtype=float),
        value=centre,
        captions=[f"{e.column} {v:.2f}" for v in s["parameter"].to_numpy(dtype=float)],
    )


def _stratified(lo: float, hi: float, nb: int, n: int, gen: np.random.Generator) -> np.ndarray:
    """``n`` values in ``[lo, hi)``: value ``i`` uniform in bin ``i mod nb`` of ``nb`` equal bins.

    Every bin gets ``n // nb`` or one more (and so does any prefix, up to one per bin).
    """
    k = np.arange(n) % nb
    return lo + (k + gen.random(n)) * (hi - lo) / nb


def _min_bin_count(values: np.ndarray, edges: Sequence[float]) -> int:
    """The fewest values of any bin of ``edges`` (numpy's histogram: the last bin is closed)."""
    counts, _ = np.histogram(values, bins=np.asarray(edges, dtype=float))
    return int(counts.min()) if counts.size else 0


def _check_kinds(kinds: Mapping[str, float], name: str) -> dict[str, float]:
    if not kinds or any(float(v) < 0 for v in kinds.values()) or sum(kinds.values()) <= 0:
        raise ProbeValueError(
            f"model {name!r}: nonlens_kinds needs non-negative fractions with a positive sum; "
            f"got {dict(kinds)!r}"
        )
    total = float(sum(kinds.values()))
    return {str(k): float(v) / total for k, v in kinds.items()}


def run_study(
    sim: SimulatorProtocol,
    models: Sequence[StudyModel],
    out: str | Path | None = None,
    *,
    config: StudyConfig | None = None,
    log: Callable[[str], None] | None = None,
    client: Any = None,
    chunk_size: int | None = None,
    checkpoints: Any = None,
) -> StudyResult:
    """Run every experiment for every model; write the report to ``out`` if given.

    Parameters
    ----------
    sim : SimulatorProtocol
        Draws and renders the test sets (e.g. ``simlens.Simulator("des-sv")``: the paper's
        training PSF, so that PSF ratio 1 is the training value).
    models : sequence of StudyModel
        The models and their non-lens kinds.
    out : str or Path, optional
        Output directory of :func:`probe.report.write_report` (figures, tables, report.html).
    config : StudyConfig, optional
        Sizes, seed, controls, experiments (default :class:`StudyConfig`).
    log : callable, optional
        Receives progress lines (default: logged at INFO when ``config.progress``).
    client : distributed.Client, optional
        Score every experiment as chunks on this Dask cluster (:class:`probe.Probe`'s
        ``client``); results are bit-identical to the serial run. The test sets are still
        drawn and rendered here.
    chunk_size : int, optional
        Images per chunk task (:class:`probe.Probe`).
    checkpoints : probe.checkpoints.Checkpoints, optional
        Every experiment's chunk scores go through it (``probe study --resume``): verified
        chunks are reused, the others saved as they finish. Its key must hold everything
        that determines the scores (:func:`probe.resume.study_checkpoints`). The test sets
        are drawn and rendered again (they are pure functions of the seed).

    Returns
    -------
    StudyResult
    """
    cfg = config or StudyConfig()
    if not models:
        raise ProbeValueError("models is empty; give at least one StudyModel")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ProbeValueError(f"model names must be distinct; got {names}")
    unknown = sorted(set(cfg.experiments) - {e.name for e in EXPERIMENTS})
    if unknown:
        raise ProbeValueError(
            f"unknown experiments {unknown}; known: {[e.name for e in EXPERIMENTS]}"
        )
    kinds = {m.name: _check_kinds(m.nonlens_kinds, m.name) for m in models}
    t_start, c_start = time.perf_counter(), time.process_time()
    say = log or (
        (lambda s: logger.info("[study %6.0f s] %s", time.perf_counter() - t_start, s))
        if cfg.progress
        else (lambda s: None)
    )
    todo = [e for e in EXPERIMENTS if e.name in cfg.experiments]
    sz = cfg.sizes
    timings: dict[str, float] = {}
    strata: dict[str, str] = {}

    def clock(label: str, t0: float, c0: float) -> None:
        # wall and process CPU (all threads) of a step: the CPU time is what an idle machine
        # needs, whatever the load on the one that ran it
        timings[label] = time.perf_counter() - t0
        timings[f"cpu {label}"] = time.process_time() - c0

    # -- test sets, shared by the models --------------------------------------------------
    def draw(label: str, n: int, key: str) -> dict[str, Any]:
        t0, c0 = time.perf_counter(), time.process_time()
        gen = _rng.child(cfg.seed, _STREAMS[key])
        controls = dict(cfg.sets.get(key, {}))
        for e in todo:
            if e.kind == "bin" and e.data == key:
                lo, hi, nb = e.bins
                nb = e.smoke_bins if sz.smoke else nb
                if controls.get(e.column) == (lo, hi):
                    controls[e.column] = _stratified(
                        lo, hi, nb, n, _rng.child(cfg.seed, _STREAMS["strata"], _STREAMS[key])
                    )
                    strata[key] = f"{e.column}: {nb} bins of {(hi - lo) / nb:g} in {lo}-{hi}"
        try:
            truth = sim.sample_lenses(n, rng=gen, **controls)
        except (TypeError, ValueError):
            if key not in strata:
                raise
            # a simulator without per-object array controls: the plain (binomial) range
            strata[key] += " (not supported by the simulator: uniform draws instead)"
            truth = sim.sample_lenses(
                n, rng=_rng.child(cfg.seed, _STREAMS[key]), **dict(cfg.sets.get(key, {}))
            )
        images = np.asarray(sim.render(truth, noise=True))
        clock(f"simulate_{label}", t0, c0)
        say(f"simulated {n} {label} in {timings[f'simulate_{label}']:.0f} s")
        return {"truth": truth, "images": images}

    need_sweep = any(e.kind == "sweep" for e in todo)
    n_lenses = max(
        sz.n_sweep if need_sweep else 0, sz.n_theta_E if "theta_E" in cfg.experiments else 0
    )
    sets: dict[str, dict[str, Any]] = {}
    if n_lenses:
        sets["lenses"] = draw("lenses", n_lenses, "lenses")
    for key in ("mag_source_g", "mag_lens_r"):
        if key in cfg.experiments:
            sets[key] = draw(f"lenses ({key} set)", sz.n_mag, key)
    nonlens_images: dict[str, np.ndarray] = {}
    if need_sweep:
        for i, mix in enumerate(sorted({json.dumps(k, sort_keys=True) for k in kinds.values()})):
            t0, c0 = time.perf_counter(), time.process_time()
            wrapped = _KindMixture(sim, json.loads(mix), cfg.sets.get("lenses", {}))
            truth = wrapped.sample_nonlenses(
                sz.n_sweep, rng=_rng.child(cfg.seed, _STREAMS["nonlenses"], i)
            )
            nonlens_images[mix] = np.asarray(sim.render(truth, noise=True))
            clock(f"simulate_nonlenses_{i}", t0, c0)
            say(f"simulated {sz.n_sweep} non-lenses {mix} in {time.perf_counter() - t0:.0f} s")

    # -- experiments ------------------------------------------------------------------------
    results: dict[tuple[str, str], Result] = {}
    min_counts: dict[str, int] = {}
    galleries: dict[tuple[str, str], Gallery] = {}
    exp_seed = int(_rng.child(cfg.seed, _STREAMS["experiments"]).integers(0, 2**62))
    # Re-simulations render the same lenses for every model (and, for psf_source, the same
    # unchanged non-lenses at every value): rendered once, one bounded cache per experiment.
    caches: dict[str, _RenderCache] = {}
    for i_model, m in enumerate(models):
        probe = Probe(
            m.model,
            batch_size=cfg.batch_size,
            progress=cfg.progress,
            label=m.name,
            client=client,
            chunk_size=chunk_size,
        )
        mix = json.dumps(kinds[m.name], sort_keys=True)
        if need_sweep:
            lens_x = sets["lenses"]["images"][: sz.n_sweep]
            x = np.concatenate([lens_x, nonlens_images[mix]])
            y = np.r_[np.ones(len(lens_x), np.int8), np.zeros(len(nonlens_images[mix]), np.int8)]
        for e in todo:
            t0, c0 = time.perf_counter(), time.process_time()
            values = np.asarray(e.smoke_values if sz.smoke else e.values, dtype=float)
            if checkpoints is not None:
                # One scope per (model, experiment); the sweeps of a model share the sweep
                # set's unperturbed scores.
                shared = f"m{i_model}-sweepset-" if e.kind == "sweep" else None
                probe.checkpoints = checkpoints.scoped(f"m{i_model}-{e.name}-", shared)
            if e.kind == "sweep":
                r = probe.sweep(x, y, e.perturber, values, rng=exp_seed, unit=e.unit)
                min_counts[e.name] = int(min(y.sum(), (1 - y).sum()))
                gallery = _sweep_gallery(e, m.name, r, x, y, values, exp_seed)
            elif e.kind == "resimulate":
                # On a cluster the workers render; an in-process cache would only be shipped.
                cache = sim if client is not None else caches.setdefault(e.name, _RenderCache(sim))
                wrapped = _KindMixture(cache, kinds[m.name], cfg.sets.get("lenses", {}))
                r = probe.resimulate(
                    wrapped, e.control, values, n=sz.n_psf, rng=exp_seed, paired=True,
                    unit=e.unit,
                )  # fmt: skip
                min_counts[e.name] = int(sz.n_psf)
                gallery = _resim_gallery(e, m.name, r, wrapped)
            else:
                data = sets[e.data]
                n = sz.n_theta_E if e.data == "lenses" else len(data["truth"])
                lo, hi, nb = e.bins
                binning = Binning.uniform(lo, hi, n=e.smoke_bins if sz.smoke else nb)
                vals = data["truth"][e.column].to_numpy(dtype=float)[:n]
                r = probe.by_parameter(
                    data["images"][:n], np.ones(n, np.int8), np.clip(vals, lo, hi),
                    bins=binning, name=e.column, unit=e.unit, rng=exp_seed,
                )  # fmt: skip
                min_counts[e.name] = _min_bin_count(np.clip(vals, lo, hi), binning.bin_edges)
                gallery = _bin_gallery(e, m.name, r, data["images"][:n])
            r.label = m.name
            results[(m.name, e.name)] = r
            galleries[(m.name, e.name)] = gallery
            clock(f"{m.name}_{e.name}", t0, c0)
            if m is models[-1]:
                caches.pop(e.name, None)  # free its images
            say(f"model {m.name}: {e.name} done in {timings[f'{m.name}_{e.name}']:.0f} s")
    timings["total"] = time.perf_counter() - t_start
    timings["cpu total"] = time.process_time() - c_start
    thin = {k: v for k, v in min_counts.items() if v < MIN_BIN_COUNT}
    if thin and not sz.smoke:
        say(
            f"WARNING: fewer than {MIN_BIN_COUNT} images in a bin (or per value and class) of "
            f"{thin}: trends there follow bin noise; use larger sizes"
        )
    study = StudyResult(
        models=names,
        results=results,
        config={
            "sizes": asdict(sz),
            "seed": cfg.seed,
            "experiment_seed": exp_seed,
            "sets": {k: {c: repr(v) for c, v in d.items()} for k, d in cfg.sets.items()},
            "nonlens_kinds": kinds,
            "min_bin_count": min_counts,
            "stratified": strata,
            "simulator": f"{type(sim).__module__}.{type(sim).__qualname__}",
            "simulator_repr": repr(sim),
        },
        timings=timings,
        galleries=galleries,
    )
    if out is not None:
        from probe.studies.report import write_report

        path = write_report(study, out)
        say(f"wrote {path} (study {timings['total']:.0f} s)")
    return study


#: Score thresholds of the expected yields added to a study report.
YIELD_THRESHOLDS = (0.5, 0.9, 0.99)
#: Population draws (about 0.4% are LensPop-detectable at DES depth) and non-detectable lenses
#: scored for the yields, per study size.
YIELD_SIZES: dict[str, tuple[int, int]] = {
    "smoke": (1500, 16),
    "default": (100000, 300),
    "full": (300000, 2000),
}


def study_yields(
    models: Sequence[StudyModel],
    *,
    size: str = "default",
    survey: str = "des-y3",
    thresholds: Sequence[float] = YIELD_THRESHOLDS,
    seed: int = 2026,
    batch_size: int = 256,
    simulator: str = "simlens:Simulator",
    population: str = "simlens.yields",
    client: Any = None,
) -> Any:
    """Expected yields of the study's models over ``survey`` (:func:`probe.yields.survey_yields`).

    The population is drawn and rendered once at ``survey`` (DES: "des-y3", 5000 deg^2) and
    scored by every model; sizes from :data:`YIELD_SIZES`. Returns a
    :class:`probe.yields.SurveyYields` for :func:`probe.report.write_report`.
    """
    from probe.yields import survey_yields

    if size not in YIELD_SIZES:
        raise ProbeValueError(f"size must be one of {sorted(YIELD_SIZES)}; got {size!r}")
    n_density, n_other = YIELD_SIZES[size]
    return survey_yields(
        {m.name: Probe(m.model, batch_size=batch_size, client=client).predict for m in models},
        tuple(thresholds),
        survey=survey,
        n_density=n_density,
        n_other=n_other,
        rng=seed,
        simulator=simulator,
        population=population,
    )


# -- command line (wired into ``probe study`` by probe.cli) ---------------------------------
def _parse_kinds(text: str) -> dict[str, float]:
    """``"elliptical"`` or ``"elliptical:0.5,star:0.5"`` -> fractions."""
    kinds: dict[str, float] = {}
    for part in text.split(","):
        name, _, frac = part.partition(":")
        kinds[name.strip()] = float(frac) if frac else 1.0
    return kinds


def _load_factory(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ProbeValueError(f"--simulator must be 'module:callable'; got {spec!r}")
    return load_callable(spec)


def add_study_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``study`` subcommand to an ``argparse`` subparsers object; returns its parser."""
    from probe.cli_paths import output_dir
    from probe.cli_policy import verbosity_options

    p = subparsers.add_parser(
        "study",
        help="run the paper's whole sensitivity study and write report.html",
        description=(
            "Run every experiment of Jacobs et al. (colour, blur, PSF, Einstein radius, "
            "magnitudes, occlusion, noise) for one or more models and write figures, tables, "
            "a summary like the paper's Table 2 and a self-contained report.html. Writes under "
            "OUT: report.html, study.json, summary.{csv,parquet,md}, table2.{csv,parquet,md}, "
            "results/<model>_<experiment>.{parquet,csv}, scores/<model>_<experiment>.parquet, "
            "figures/<experiment>.png and selection/<model>_<param>.{parquet,csv} (with "
            "--yields also yields.json); prints the report's path. Exit codes: 0 written, "
            "2 bad input or an unreadable model."
        ),
    )
    p.add_argument(
        "--model", action="append", required=True,
        help=".keras file or module:callable (repeat for several models)",
    )  # fmt: skip
    p.add_argument("--label", action="append", help="legend name per --model (default M1, M2..)")
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny run for CI (~1-2 min)")
    size.add_argument("--full", action="store_true", help="the paper's sizes (hours)")
    p.add_argument(
        "--nonlens-kinds", default="elliptical",
        help="non-lens kinds and fractions, e.g. 'field', 'elliptical:0.5,star:0.5', or "
        "'unlensed' (the study's lenses without their source: matched negatives)",
    )  # fmt: skip
    p.add_argument("--survey", default="des-sv", help="simulator survey preset (training PSF)")
    p.add_argument(
        "--simulator", default="simlens:Simulator",
        help="module:callable building the simulator from survey=... (default simlens)",
    )  # fmt: skip
    p.add_argument("--experiments", help="comma-separated subset of the experiments")
    p.add_argument(
        "--yields", metavar="SURVEY",
        help="also report each model's selection functions and expected yield over the lens "
        "population of this simlens survey preset (e.g. des-y3: DES, 5000 deg^2)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=2026, help="root seed (2026)")
    p.add_argument("--batch-size", type=int, default=256, help="images per model call (256)")
    verbosity_options(p)  # -v/--verbose, -q/--quiet (no progress), as every probe command
    p.add_argument(
        "--trust-model-code", action="store_true",
        help="let the model files run code (import the modules a .keras file names); default off",
    )  # fmt: skip
    p.add_argument(
        "--band",
        choices=("ci", "std", "sem"),
        default="ci",
        help="error bars: interval of the mean (ci, default), std of the scores, or sem",
    )
    p.add_argument(
        "--resume", action="store_true",
        help="finish a killed study: reuse the verified chunk scores it kept under "
        "OUT/checkpoints (same models, sizes, seed, experiments and simulator required; "
        "another is refused, naming what differs); the test sets are simulated again "
        "(docs/scale.md)",
    )  # fmt: skip
    from probe.cluster import add_cluster_args

    add_cluster_args(p)
    return p


def run_study_cli(args: argparse.Namespace) -> int:
    """Run ``probe study`` from parsed arguments (see :func:`add_study_cli`); returns 0."""
    labels = args.label or [f"M{i + 1}" for i in range(len(args.model))]
    if len(labels) != len(args.model):
        raise ProbeValueError(f"{len(labels)} --label for {len(args.model)} --model")
    kinds = _parse_kinds(args.nonlens_kinds)
    specs: list[Any] = list(args.model)
    if getattr(args, "trust_model_code", False):
        from probe.adapters import load

        specs = [load(spec, trust_code=True) for spec in specs]
    models = [StudyModel(lab, spec, kinds) for lab, spec in zip(labels, specs)]
    size = "smoke" if args.smoke else "full" if args.full else "default"
    experiments = (
        tuple(s.strip() for s in args.experiments.split(","))
        if args.experiments
        else tuple(e.name for e in EXPERIMENTS)
    )
    config = StudyConfig(
        sizes=SIZES[size],
        seed=args.seed,
        experiments=experiments,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    sim = _load_factory(args.simulator)(survey=args.survey)
    from probe.studies.report import write_report

    client = getattr(args, "client", None)
    t_start = time.perf_counter()
    # The command prints the study's progress on stdout, as it always has, and keeps stderr
    # for the one line of an error; the library (run_study without log=) logs it at INFO.
    log = None if args.quiet else (
        lambda s: print(f"[study {time.perf_counter() - t_start:6.0f} s] {s}", flush=True)
    )  # fmt: skip
    from probe.resume import finish, study_checkpoints

    checkpoints = study_checkpoints(args, models, config, sim)
    result = run_study(
        sim,
        models,
        None,
        config=config,
        log=log,
        client=client,
        chunk_size=getattr(args, "chunk_size", None),
        checkpoints=checkpoints,
    )
    # The lens population comes from simlens (simlens.yields), whatever simulator ran the study;
    # selection functions and yields are then drawn over it rather than the study's test sets.
    pop = None
    if args.yields:
        from probe.population_selection import population_selection

        pop = population_selection(
            {m.name: m.model for m in models},
            size=size,
            survey=args.yields,
            seed=args.seed,
            batch_size=args.batch_size,
            client=client,
        )
    path = write_report(result, args.out, population=pop, band=getattr(args, "band", "ci"))
    if not args.quiet:
        print(f"wrote {path}")
    finish(checkpoints, args)  # the report is written: nothing left to resume
    return 0
