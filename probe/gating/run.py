"""The regression gate: does a candidate lens finder meet a suite of expectations?

:func:`run_gate` builds (or loads from the cache) the suite's test sets
(:mod:`probe.gating.sets`), computes the candidate's p(lens) for every (set, perturbation
value) an expectation needs, and the baseline's where a no_regression expectation compares the
two (:mod:`probe.gating.units`), then tests every expectation (:mod:`probe.gating.verdicts`).
The candidate is always run; simulated sets and baseline predictions come from the
content-addressed cache (:mod:`probe.cache`) when one is given, so a rerun costs only the
candidate's inference.

Seeds: the sets' draws and the perturbations derive from the run's seed as
:mod:`probe.gating.sets` and :mod:`probe.gating.units` say; bootstraps use the streams of
:mod:`probe.gating.verdicts`. Candidate and baseline see identical images.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probe._version import __version__
from probe.cache import Cache, file_digest, model_identity, simulator_identity, source_digest
from probe.errors import ProbeValueError
from probe.gating.failed_bins import failed_bin_gallery
from probe.gating.result import GateResult
from probe.gating.sets import SAVED_SET, GateSet, load_sets, make_simulator
from probe.gating.suite import Suite, load_suite
from probe.gating.units import (
    Unit,
    baseline_predictions,
    candidate_predictions,
    expectation_units,
    gate_checkpoints,
    needed_units,
    perturb_seed,
)
from probe.gating.verdicts import Outcome, evaluate
from probe.provenance import now_utc, package_versions
from probe.sweeps.sensitivity import Probe
from probe.validation import check_positive_int, names_list

__all__ = ["run_gate"]

_OPAQUE = (
    "{name} is an opaque callable (its scores may depend on files or state probe cannot see); "
    "declare model_id or weight_files (probe.adapters.callable) to cache them"
)


def run_gate(
    candidate: Any,
    suite: Suite | str | os.PathLike[str],
    *,
    baseline: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    simulator: Any = None,
    seed: int | None = None,
    data: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    allow_same_model: bool = False,
    trust_code: bool = False,
    client: Any = None,
    chunk_size: int | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
) -> GateResult:
    """Test ``candidate`` against every expectation of ``suite``.

    Parameters
    ----------
    candidate, baseline : model
        Anything :class:`probe.Probe` accepts (a Keras, PyTorch, ONNX or JAX model or file,
        an adapter, a callable, ``"module:callable"``); outputs p(lens). ``baseline`` is
        needed by no_regression.
    suite : Suite, path or "default"
        The expectations and their data (:func:`probe.suite.load_suite`).
    cache_dir : path, optional
        Cache of simulated sets and baseline predictions (:mod:`probe.cache`); None: no cache,
        nothing is written.
    simulator : object, optional
        A simulator with :class:`probe.SimulatorProtocol`'s methods, instead of building
        ``suite.data.simulator`` (tests pass fakes).
    seed : int, optional
        Overrides ``suite.seed``.
    data : path, optional
        A saved HDF5 set or ``.zarr`` store (``probe.datasets.load_set``) used by every
        expectation instead of the suite's simulated sets; overrides ``suite.data.path``.
    batch_size : int
        Images per model call (results do not depend on it).
    progress : bool
        Progress bars during inference.
    log : callable, optional
        Receives one line per step (sets, models), e.g. ``print``.
    allow_same_model : bool
        Compare a candidate with a baseline of equal content digest (otherwise refused: a
        no_regression test of a model against itself cannot fail).
    trust_code : bool
        Let the model files run code (:func:`probe.adapters.load`); off by default.
    client : distributed.Client, optional
        Score the sets as chunks on this Dask cluster (:class:`probe.Probe`'s ``client``);
        the verdicts equal the serial run's. Sets are still simulated here.
    chunk_size : int, optional
        Images per chunk task (:class:`probe.Probe`).
    checkpoint_dir : path, optional
        Keep each unit's candidate (and uncached baseline) p(lens) there as it is computed
        (:mod:`probe.checkpoints`; ``probe check`` uses ``OUT/checkpoints``), keyed by the
        models' identities, the suite, the seed, the data or simulator, the batch and chunk
        sizes and probe's source. The caller removes it once the reports are written.
    resume : bool
        Reuse the verified unit files of a killed run in ``checkpoint_dir`` (another key is
        refused, naming what differs); without it old ones are discarded.

    Returns
    -------
    GateResult
    """
    # locals() holds exactly the arguments here; _GateRun checks them, then loads the models
    run = _GateRun(_Request(**locals()))
    with run.open_sets():  # a saved set is closed however the run ends
        run.score()
        outcomes = run.judge()
        galleries = run.failed_bin_galleries(outcomes)
    return run.result(outcomes, galleries)


@dataclass(frozen=True)
class _Request:
    """:func:`run_gate`'s arguments, as given."""

    candidate: Any
    suite: Suite | str | os.PathLike[str]
    baseline: Any
    cache_dir: str | os.PathLike[str] | None
    simulator: Any
    seed: int | None
    data: str | os.PathLike[str] | None
    batch_size: int
    progress: bool
    log: Callable[[str], None] | None
    allow_same_model: bool
    trust_code: bool
    client: Any
    chunk_size: int | None
    checkpoint_dir: str | os.PathLike[str] | None
    resume: bool


class _GateRun:
    """One gate run, step by step: its checked settings, models, sets, scores, timings (wall
    seconds) and cache counts."""

    def __init__(self, req: _Request) -> None:
        self.t_start = time.perf_counter()
        self.req = req
        self.say: Callable[[str], None] = req.log or (lambda _line: None)
        self.suite = load_suite(req.suite)
        self.seed = _run_seed(self.suite, req.seed)
        self.batch_size = check_positive_int(req.batch_size, "batch_size")
        if self.suite.needs_baseline and req.baseline is None:
            names = [e.name for e in self.suite.expectations if e.type == "no_regression"]
            raise ProbeValueError(f"no_regression expectations {names} need a baseline model")
        self.path = os.fspath(req.data) if req.data is not None else self.suite.data.path
        self.cache = Cache(req.cache_dir) if req.cache_dir is not None else None
        self.timings: dict[str, float] = {}
        self.counts: dict[str, int] = {"candidate_computed": 0}
        # Load the models first: a bad model fails before minutes of simulation.
        self.cand, self.base, self.base_ident = self._load_models()
        self.simulator = req.simulator
        self.checkpoints: Any = None
        self.sets: dict[str, GateSet] = {}
        self.sim_ident: dict[str, Any] | None = None
        self.pseeds: dict[Unit, int] = {}
        self.cand_p: dict[Unit, np.ndarray] = {}
        self.base_p: dict[Unit, np.ndarray] = {}

    def set_of(self, e: Any) -> str:
        """The name of the set expectation ``e`` is tested on."""
        return SAVED_SET if self.path is not None else e.set

    def _load_models(self) -> tuple[Probe, Probe | None, dict[str, Any] | None]:
        """The candidate, the baseline (None unless a no_regression needs it) and the
        baseline's content identity (None for an opaque callable)."""
        req = self.req
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "progress": req.progress,
            "trust_code": req.trust_code,
            "client": req.client,
            "chunk_size": req.chunk_size,
        }
        cand = Probe(req.candidate, label="candidate", **options)
        if req.baseline is None or not self.suite.needs_baseline:
            return cand, None, None
        base = Probe(req.baseline, label="baseline", **options)
        base_ident = model_identity(req.baseline if _is_file(req.baseline) else base.adapter.model)
        cand_digest = cand.adapter.digest
        if (
            cand_digest is not None
            and cand_digest == base.adapter.digest
            and not req.allow_same_model
        ):
            raise ProbeValueError(
                f"candidate and baseline are the same model (content digest "
                f"{cand_digest[:12]}...); pass allow_same_model=True "
                "(--allow-same-model) to compare a model with itself"
            )
        return cand, base, base_ident

    def _open_checkpoints(self) -> Any:
        """The run's unit checkpoints (``checkpoint_dir``), keyed by everything that fixes
        the units' scores."""
        from probe.checkpoints import data_identity

        req = self.req
        assert req.checkpoint_dir is not None
        key = {
            "command": "check",
            "baseline": self.base_ident,
            "suite": self.suite.to_dict(),
            "seed": self.seed,
            "data": data_identity(self.path) if self.path is not None else None,
            "simulator": simulator_identity(self.simulator) if self.path is None else None,
            "batch_size": self.batch_size,
            "chunk_size": req.chunk_size,
            "probe_source": source_digest("probe"),
        }
        model = req.candidate if _is_file(req.candidate) else self.cand.adapter.model
        ident = model_identity(model)
        return gate_checkpoints(req.checkpoint_dir, req.resume, ident, req.candidate, key, self.say)

    @contextlib.contextmanager
    def open_sets(self) -> Iterator[None]:
        """Load (or simulate) the sets and open the checkpoints; close the sets on exit."""
        req = self.req
        if req.checkpoint_dir is not None and self.path is None:
            # Keyed (and a mismatched resume refused) before minutes of simulation.
            if self.simulator is None:
                self.simulator = make_simulator(self.suite.data)  # its identity is in the key
            self.checkpoints = self._open_checkpoints()
        names = sorted({self.set_of(e) for e in self.suite.expectations})
        self.sets, self.sim_ident, closers = load_sets(
            self.suite,
            names,
            seed=self.seed,
            path=self.path,
            simulator=self.simulator,
            cache=self.cache,
            timings=self.timings,
            say=self.say,
        )
        try:
            if req.checkpoint_dir is not None and self.path is not None:
                self.checkpoints = self._open_checkpoints()  # a saved set: once it is open
            self._check_binned_columns()
            yield
        finally:
            for close in closers:
                close()

    def _check_binned_columns(self) -> None:
        for e in self.suite.expectations:
            st = self.sets[self.set_of(e)]
            if e.mode == "binned" and e.over not in st.truth.columns:
                raise ProbeValueError(
                    f"{e.who}: set {self.set_of(e)!r} has no truth column {e.over!r}; columns: "
                    f"{names_list(list(st.truth.columns)[:40])}"
                )

    def score(self) -> None:
        """Both models' p(lens) for every unit the suite needs (the baseline's where a
        no_regression compares the two)."""
        units, base_set = needed_units(self.suite, self.set_of)
        base_units = [u for u in units if u in base_set]
        self.pseeds = {u: perturb_seed(self.seed, u[0], u[1]) for u in units}
        counts, timings, say = self.counts, self.timings, self.say
        t0 = time.perf_counter()
        self.base_p = baseline_predictions(
            self.base, self.base_ident, base_units, self.sets, self.pseeds, self.cache, counts,
            self.checkpoints,
        )  # fmt: skip
        timings["baseline"] = time.perf_counter() - t0
        if self.base is not None and self.base_ident is None:
            counts["baseline_uncacheable"] = 1
            say(f"baseline: not cached: {_OPAQUE.format(name=self.base.adapter.description)}")
        say(
            f"baseline: {counts['baseline_computed']} unit(s) computed, "
            f"{counts['baseline_from_cache']} from the cache ({timings['baseline']:.1f} s)"
        )
        t0 = time.perf_counter()
        reused = 0 if self.checkpoints is None else self.checkpoints.reused
        self.cand_p = candidate_predictions(
            self.cand, units, self.sets, self.pseeds, self.checkpoints
        )
        counts["candidate_computed"] = len(units)
        timings["candidate"] = time.perf_counter() - t0
        say(f"candidate: {len(units)} unit(s) ({timings['candidate']:.1f} s)")
        if self.req.resume and self.checkpoints is not None:
            counts["candidate_from_checkpoints"] = self.checkpoints.reused - reused
            counts["baseline_from_checkpoints"] = reused
            say(self.checkpoints.summary())

    def judge(self) -> list[Outcome]:
        """Every expectation's outcome, in suite order."""
        t0 = time.perf_counter()
        outcomes = []
        for e in self.suite.expectations:
            s = self.set_of(e)
            mine = expectation_units(e, s)
            p = np.stack([self.cand_p[u] for u in mine])
            b = np.stack([self.base_p[u] for u in mine]) if e.type == "no_regression" else None
            st = self.sets[s]
            par = st.truth[e.over].to_numpy(dtype=np.float64) if e.mode == "binned" else None
            outcomes.append(
                evaluate(
                    e,
                    p,
                    st.labels,
                    parameter=par,
                    baseline=b,
                    alpha=self.suite.alpha,
                    n_boot=self.suite.n_boot,
                    rng=self.seed,
                )
            )
        self.timings["statistics"] = time.perf_counter() - t0
        return outcomes

    def failed_bin_galleries(self, outcomes: list[Outcome]) -> dict[int, Any]:
        """Outcome index -> the candidate's lowest-scoring images of its first failed bin."""
        galleries = {}
        for i, (e, o) in enumerate(zip(self.suite.expectations, outcomes)):
            if not o.holds:
                mine = expectation_units(e, self.set_of(e))
                p = np.stack([self.cand_p[u] for u in mine])
                pseeds = [self.pseeds[u] for u in mine]
                galleries[i] = failed_bin_gallery(e, o, self.sets[self.set_of(e)], p, pseeds)
        return galleries

    def result(self, outcomes: list[Outcome], galleries: dict[int, Any]) -> GateResult:
        """The run's :class:`GateResult` (its total time ends here)."""
        self.timings["total"] = time.perf_counter() - self.t_start
        counts = self.counts
        if self.cache is not None:
            counts["sets_from_cache"] = self.cache.count("set", "hit")
            counts["invalid"] = self.cache.count("set", "invalid") + self.cache.count(
                "scores", "invalid"
            )
        else:
            counts["sets_from_cache"] = 0
            counts["invalid"] = 0
        counts["sets_simulated"] = sum(st.source == "simulated" for st in self.sets.values())
        passed = all(o.holds for o in outcomes)
        return GateResult(passed, outcomes, self.timings, self._provenance(), counts, galleries)

    def _provenance(self) -> dict[str, Any]:
        base = self.base
        return {
            "probe": __version__,
            "created": now_utc(),
            "seed": self.seed,
            "suite": self.suite.to_dict(),
            "candidate": {
                "description": self.cand.adapter.description,
                "model_hash": self.cand.adapter.hash,
                **_file_hash(self.req.candidate),
            },
            "baseline": None
            if base is None
            else {
                "description": base.adapter.description,
                "model_hash": base.adapter.hash,
                "identity": self.base_ident,
                "cached": self.base_ident is not None,
            },
            "data": {
                name: {
                    "key": st.key,
                    "source": st.source,
                    "n_lenses": int(st.labels.sum()),
                    "n_nonlenses": int((st.labels == 0).sum()),
                }
                for name, st in self.sets.items()
            },
            "simulator": self.sim_ident,
            "perturb_seeds": {f"{u[0]}/{u[1]}": s for u, s in self.pseeds.items() if u[1]},
            "cache_dir": None if self.cache is None else os.fspath(self.cache.root),
            "packages": package_versions(),
        }


def _run_seed(suite: Suite, seed: Any) -> int:
    """The run's seed: ``seed``, else the suite's; an integer >= 0."""
    run_seed = suite.seed if seed is None else seed
    if isinstance(run_seed, bool) or not isinstance(run_seed, int | np.integer) or run_seed < 0:
        raise ProbeValueError(f"seed must be an integer >= 0; got {seed!r}")
    return int(run_seed)


def _is_file(model: Any) -> bool:
    return isinstance(model, str | os.PathLike) and Path(model).is_file()


def _file_hash(model: Any) -> dict[str, str]:
    if _is_file(model):
        return {"file": os.fspath(model), "file_sha256": file_digest(model)}
    return {}
