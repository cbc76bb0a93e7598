"""The study's test sets: drawn and rendered once, shared by the models, and the simulator
wrappers the experiments draw through.

:func:`draw_study_sets` draws the lens sets (:data:`probe.studies.experiments.DEFAULT_SETS`;
the binned parameter of each stratified by :func:`stratified`) and the non-lenses of each
distinct kind mixture (:class:`KindMixture`); :class:`RenderCache` keeps the images of the
paired re-simulations, which render the same lenses for every model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.errors import ProbeValueError
from probe.studies.experiments import UNLENSED

if TYPE_CHECKING:
    from probe.studies.experiments import Experiment, StudyConfig
    from probe.studies.progress import StudyClock

__all__ = [
    "STREAMS",
    "KindMixture",
    "RenderCache",
    "StudySets",
    "draw_lens_set",
    "draw_nonlens_images",
    "draw_study_sets",
    "stratified",
]

#: Seed streams of the study's data sets (below the study's root seed).
STREAMS = {
    "lenses": 0,
    "mag_source_g": 1,
    "mag_lens_r": 2,
    "nonlenses": 3,
    "experiments": 4,
    "strata": 5,
}


class KindMixture:
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


class RenderCache:
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


def stratified(lo: float, hi: float, nb: int, n: int, gen: np.random.Generator) -> np.ndarray:
    """``n`` values in ``[lo, hi)``: value ``i`` uniform in bin ``i mod nb`` of ``nb`` equal bins.

    Every bin gets ``n // nb`` or one more (and so does any prefix, up to one per bin).
    """
    k = np.arange(n) % nb
    return lo + (k + gen.random(n)) * (hi - lo) / nb


@dataclass
class StudySets:
    """The test sets of a study, shared by its models.

    Attributes
    ----------
    lenses : dict
        Per lens set ("lenses", "mag_source_g", "mag_lens_r"; those the experiments need),
        ``{"truth": DataFrame, "images": ndarray}``.
    nonlens_images : dict of str to ndarray
        Non-lens images of the sweeps per kind mixture (its JSON with sorted keys).
    strata : dict of str to str
        Per lens set drawn stratified, how (``study.json``'s ``stratified``).
    """

    lenses: dict[str, dict[str, Any]] = field(default_factory=dict)
    nonlens_images: dict[str, np.ndarray] = field(default_factory=dict)
    strata: dict[str, str] = field(default_factory=dict)


def _stratify(
    controls: dict[str, Any],
    key: str,
    n: int,
    cfg: StudyConfig,
    todo: Sequence[Experiment],
    strata: dict[str, str],
) -> None:
    """Replace the range of the parameter binned from lens set ``key`` by stratified values.

    Only where the set's control is exactly the experiment's range: object ``i`` is then
    uniform within bin ``i mod n_bins`` (:func:`stratified`); ``strata[key]`` says how.
    """
    for e in todo:
        if e.kind == "bin" and e.data == key:
            lo, hi, nb = e.bins
            nb = e.smoke_bins if cfg.sizes.smoke else nb
            if controls.get(e.column) == (lo, hi):
                controls[e.column] = stratified(
                    lo, hi, nb, n, _rng.child(cfg.seed, STREAMS["strata"], STREAMS[key])
                )
                strata[key] = f"{e.column}: {nb} bins of {(hi - lo) / nb:g} in {lo}-{hi}"


def draw_lens_set(
    sim: Any,
    label: str,
    n: int,
    key: str,
    *,
    cfg: StudyConfig,
    todo: Sequence[Experiment],
    strata: dict[str, str],
    clock: StudyClock,
) -> dict[str, Any]:
    """Draw and render ``n`` lenses of set ``key``: ``{"truth": DataFrame, "images": ndarray}``.

    A simulator that refuses per-object array controls (``TypeError``/``ValueError``) gets the
    plain ranges instead (binomial counts per bin; ``strata[key]`` says so).
    """
    t0, c0 = clock.start()
    gen = _rng.child(cfg.seed, STREAMS[key])
    controls = dict(cfg.sets.get(key, {}))
    _stratify(controls, key, n, cfg, todo, strata)
    try:
        truth = sim.sample_lenses(n, rng=gen, **controls)
    except (TypeError, ValueError):
        if key not in strata:
            raise
        # a simulator without per-object array controls: the plain (binomial) range
        strata[key] += " (not supported by the simulator: uniform draws instead)"
        truth = sim.sample_lenses(
            n, rng=_rng.child(cfg.seed, STREAMS[key]), **dict(cfg.sets.get(key, {}))
        )
    images = np.asarray(sim.render(truth, noise=True))
    clock.clock(f"simulate_{label}", t0, c0)
    clock.say(f"simulated {n} {label} in {clock.timings[f'simulate_{label}']:.0f} s")
    return {"truth": truth, "images": images}


def draw_nonlens_images(
    sim: Any, kinds: Mapping[str, Mapping[str, float]], cfg: StudyConfig, clock: StudyClock
) -> dict[str, np.ndarray]:
    """Render ``n_sweep`` non-lenses per distinct kind mixture of ``kinds`` (model -> mixture).

    Keyed by the mixture's JSON (sorted keys); mixture ``i`` in sorted order draws from stream
    ``(nonlenses, i)``.
    """
    n = cfg.sizes.n_sweep
    images: dict[str, np.ndarray] = {}
    for i, mix in enumerate(sorted({json.dumps(k, sort_keys=True) for k in kinds.values()})):
        t0, c0 = clock.start()
        wrapped = KindMixture(sim, json.loads(mix), cfg.sets.get("lenses", {}))
        truth = wrapped.sample_nonlenses(n, rng=_rng.child(cfg.seed, STREAMS["nonlenses"], i))
        images[mix] = np.asarray(sim.render(truth, noise=True))
        clock.clock(f"simulate_nonlenses_{i}", t0, c0)
        clock.say(f"simulated {n} non-lenses {mix} in {clock.elapsed(t0):.0f} s")
    return images


def draw_study_sets(
    sim: Any,
    cfg: StudyConfig,
    todo: Sequence[Experiment],
    kinds: Mapping[str, Mapping[str, float]],
    clock: StudyClock,
) -> StudySets:
    """Draw and render the test sets the experiments ``todo`` need, once for all models.

    The sweep lenses and the Einstein-radius lenses are one set ("lenses", as many as the
    larger needs); each magnitude experiment has its own; the sweeps' non-lenses are drawn per
    distinct kind mixture of ``kinds`` (model name -> normalised mixture).
    """
    sz = cfg.sizes
    sets = StudySets()
    need_sweep = any(e.kind == "sweep" for e in todo)
    n_lenses = max(
        sz.n_sweep if need_sweep else 0, sz.n_theta_E if "theta_E" in cfg.experiments else 0
    )
    if n_lenses:
        sets.lenses["lenses"] = draw_lens_set(
            sim, "lenses", n_lenses, "lenses", cfg=cfg, todo=todo, strata=sets.strata, clock=clock
        )
    for key in ("mag_source_g", "mag_lens_r"):
        if key in cfg.experiments:
            sets.lenses[key] = draw_lens_set(
                sim, f"lenses ({key} set)", sz.n_mag, key,
                cfg=cfg, todo=todo, strata=sets.strata, clock=clock,
            )  # fmt: skip
    if need_sweep:
        sets.nonlens_images = draw_nonlens_images(sim, kinds, cfg, clock)
    return sets
