"""The regression gate: does a candidate lens finder meet a suite of expectations?

:func:`run_gate` builds (or loads from the cache) the suite's test sets, computes the
candidate's p(lens) for every (set, perturbation value) an expectation needs, and the baseline's
where a no_regression expectation compares the two, then tests every expectation
(:mod:`probe.verdicts`). The candidate is always run; simulated sets and baseline predictions
come from the content-addressed cache (:mod:`probe.cache`) when one is given, so a rerun costs
only the candidate's inference.

Seeds (all below the run's seed ``s``): set ``name`` draws its lenses from
``SeedSequence(s, spawn_key=(6, 0, crc32(name)))`` and its non-lenses from ``(6, 1,
crc32(name))``; perturber ``over`` on set ``name`` uses the root ``(6, 2, crc32(name),
crc32(over))`` for *every* value, one :meth:`probe.Probe.sweep` call per value, so a value's
perturbed images do not depend on which other values a suite asks for (and successive values
share their random draws: common random numbers, which make paired changes less noisy).
Bootstraps use the streams of :mod:`probe.verdicts`. Candidate and baseline see identical
images.

simlens (or any simulator) is imported here only, lazily, through ``suite.data.simulator``.
"""

from __future__ import annotations

import functools
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.adapters.specs import load_callable
from probe.cache import (
    Cache,
    digest,
    file_digest,
    model_identity,
    simulator_identity,
    source_digest,
)
from probe.errors import ProbeTypeError, ProbeValueError
from probe.gating.suite import DataSpec, SetSpec, Suite, load_suite
from probe.gating.verdicts import Outcome, evaluate
from probe.provenance import hash_frame, now_utc, package_versions
from probe.sweeps.sensitivity import Probe
from probe.validation import check_labels, check_positive_int, names_list

__all__ = ["GateResult", "run_gate"]

DATA_STREAM = 6
"""First element of the spawn keys of simulated draws and perturbations (see the docstring)."""

_SAVED = "saved set"  # the name of a user's saved set, which every expectation uses

Unit = tuple[str, str, float | None]

_OPAQUE = (
    "{name} is an opaque callable (its scores may depend on files or state probe cannot see); "
    "declare model_id or weight_files (probe.adapters.callable) to cache them"
)  # (set name, perturber or "", value or None)


@dataclass
class GateResult:
    """What :func:`run_gate` returns.

    Attributes
    ----------
    passed : bool
        Whether every expectation holds.
    outcomes : list of Outcome
        One per expectation, in suite order.
    timings : dict of str to float
        Wall seconds: ``simulate``, ``load_sets``, ``baseline``, ``candidate``, ``statistics``,
        ``total``.
    provenance : dict
        probe version, the suite (as its TOML tables), seed, model and data hashes, simulator
        identity, package versions.
    cache : dict of str to int
        ``sets_from_cache``, ``sets_simulated``, ``baseline_from_cache``, ``baseline_computed``
        (units: one set at one perturbation value), ``candidate_computed``, ``invalid`` (corrupt
        or mismatched entries ignored); ``baseline_uncacheable`` 1 when the baseline is an
        opaque callable whose scores were neither looked up nor stored.
    """

    passed: bool
    outcomes: list[Outcome]
    timings: dict[str, float]
    provenance: dict[str, Any]
    cache: dict[str, int] = field(default_factory=dict)
    #: outcome index -> the images behind its first failed bin (:func:`_failed_bin_gallery`)
    galleries: dict[int, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        """The outcomes that do not hold."""
        return [o for o in self.outcomes if not o.holds]

    def summary(self) -> str:
        """One line per expectation, then timings and cache use (what ``probe check`` prints)."""
        width = max(len(o.expectation.type) for o in self.outcomes)
        lines = []
        for o in self.outcomes:
            far = o.false_alarm_rate
            far_text = f"false-alarm rate {far:.3f}" if np.isfinite(far) else "false-alarm rate n/a"
            if o.holds:
                detail = f"holds in {len(o.table)} bin(s) ({far_text})"
            else:
                detail = o.message.split(" FAILS: ", 1)[-1]
            lines.append(
                f"{'PASS' if o.holds else 'FAIL'} {o.expectation.type:<{width}} {o.name}: {detail}"
            )
        t, c = self.timings, self.cache
        n_sets = c.get("sets_from_cache", 0) + c.get("sets_simulated", 0)
        n_base = c.get("baseline_from_cache", 0) + c.get("baseline_computed", 0)
        uncached = (
            "; not cacheable: opaque callable without model_id or weight_files"
            if c.get("baseline_uncacheable")
            else ""
        )
        lines.append(
            f"timings: sets {t.get('simulate', 0) + t.get('load_sets', 0):.1f} s "
            f"({c.get('sets_from_cache', 0)} of {n_sets} from cache), baseline "
            f"{t.get('baseline', 0):.1f} s ({c.get('baseline_from_cache', 0)} of {n_base} units "
            f"from cache{uncached}), candidate {t.get('candidate', 0):.1f} s "
            f"({c.get('candidate_computed', 0)} units), statistics {t.get('statistics', 0):.1f} s, "
            f"total {t.get('total', 0):.1f} s"
        )
        held = sum(o.holds for o in self.outcomes)
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {held} of {len(self.outcomes)} expectations hold")
        return "\n".join(lines)

    def write(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``report.html``, ``report.json`` and ``junit.xml`` into ``out``."""
        from probe.gating.report import write_reports

        return write_reports(self, out)


@dataclass
class _Set:
    images: Any
    labels: np.ndarray
    truth: pd.DataFrame
    key: str
    source: str


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _make_simulator(spec: DataSpec) -> Any:
    try:
        obj: Any = load_callable(spec.simulator)
    except (ImportError, AttributeError) as err:
        raise ProbeValueError(f"data.simulator {spec.simulator!r} cannot be loaded: {err}") from err
    try:
        return obj(survey=spec.survey)
    except (TypeError, ValueError, KeyError) as err:
        raise ProbeValueError(
            f"data.simulator {spec.simulator!r} failed with survey={spec.survey!r}: {err}"
        ) from err


def _fingerprint(sim: Any, kinds: list[str]) -> dict[str, str]:
    """Hashes of tiny fixed draws: they change when the simulator's population data change,
    even data that its code digest and provenance do not cover."""
    out = {"lenses": hash_frame(sim.sample_lenses(2, rng=0))}
    for kind in kinds:
        out[f"nonlenses:{kind}"] = hash_frame(sim.sample_nonlenses(2, rng=0, kind=kind))
    return out


def _simulate(sim: Any, spec: SetSpec, name: str, seed: int) -> tuple[Any, np.ndarray, Any]:
    from probe.study import _KindMixture  # the study's mixture of non-lens kinds

    parts, labels = [], []
    if spec.n_lenses:
        gen = _rng.child(seed, DATA_STREAM, 0, _crc(name))
        parts.append(sim.sample_lenses(spec.n_lenses, rng=gen, **spec.lenses))
        labels.append(np.ones(spec.n_lenses, np.int8))
    if spec.n_nonlenses:
        gen = _rng.child(seed, DATA_STREAM, 1, _crc(name))
        mix = _KindMixture(sim, spec.nonlens_kinds, {})
        parts.append(mix.sample_nonlenses(spec.n_nonlenses, rng=gen, **spec.nonlenses))
        labels.append(np.zeros(spec.n_nonlenses, np.int8))
    truth = pd.concat(parts, ignore_index=True)
    lab = np.concatenate(labels)
    if "label" in truth.columns and not np.array_equal(truth["label"].to_numpy(), lab):
        raise ProbeValueError(f"set {name!r}: the simulator's truth labels disagree with its draws")
    images = np.asarray(sim.render(truth, noise=True))
    if images.ndim != 4 or images.shape[0] != len(truth):
        raise ProbeValueError(
            f"set {name!r}: sim.render returned shape {images.shape} for {len(truth)} rows"
        )
    return images, lab, truth


def _load_sets(
    suite: Suite,
    names: list[str],
    *,
    seed: int,
    path: str | None,
    simulator: Any,
    cache: Cache | None,
    timings: dict[str, float],
    say: Callable[[str], None],
) -> tuple[dict[str, _Set], dict[str, Any] | None, list[Callable[[], None]]]:
    if path is not None:
        from probe.adapters.datasets import load_set

        is_store = Path(path).is_dir() and path.rstrip("/\\").endswith(".zarr")
        if not Path(path).is_file() and not is_store:
            raise ProbeValueError(f"data set {path!r} not found")
        t0 = time.perf_counter()
        ds = load_set(path)
        try:
            labels = check_labels(np.asarray(ds.labels), int(ds.images.shape[0]))
            data_digest = _store_digest(path) if is_store else file_digest(path)
            st = _Set(ds.images, labels, ds.truth, data_digest, f"file {path}")
        except BaseException:
            ds.close()
            raise
        timings["load_sets"] = time.perf_counter() - t0
        say(f"data: {path} ({labels.sum()} lenses + {(labels == 0).sum()} non-lenses)")
        return {_SAVED: st}, None, [ds.close]
    t0 = time.perf_counter()
    sim = simulator if simulator is not None else _make_simulator(suite.data)
    kinds = sorted({k for n in names for k in suite.data.sets[n].nonlens_kinds})
    ident = {**simulator_identity(sim), "fingerprint": _fingerprint(sim, kinds)}
    versions = package_versions()
    ident["versions"] = {k: versions.get(k) for k in ("python", "numpy", "scipy", "pandas")}
    timings["load_sets"] = time.perf_counter() - t0
    sets = {}
    for name in names:
        spec = suite.data.sets[name]
        inputs = {
            "what": "simulated set",
            "simulator": ident,
            "set": spec.to_dict(),
            "name": name,
            "seed": seed,
        }
        key = digest(inputs)
        t0 = time.perf_counter()
        got = cache.load_set(inputs) if cache is not None else None
        if got is not None:
            images, labels, truth = got
            timings["load_sets"] += time.perf_counter() - t0
            say(f"set {name!r}: {len(labels)} images from the cache")
            sets[name] = _Set(images, labels, truth, key, "cache")
            continue
        say(f"set {name!r}: simulating {spec.n_lenses} lenses + {spec.n_nonlenses} non-lenses")
        images, labels, truth = _simulate(sim, spec, name, seed)
        timings["simulate"] = timings.get("simulate", 0.0) + time.perf_counter() - t0
        if cache is not None:
            cache.save_set(inputs, images, labels, truth)
        sets[name] = _Set(images, labels, truth, key, "simulated")
    return sets, ident, []


def _units(suite: Suite, set_of: Callable[[Any], str]) -> tuple[list[Unit], set[Unit]]:
    """Every (set, perturber, value) the suite needs, and those the baseline needs."""
    units: dict[Unit, None] = {}
    base: set[Unit] = set()
    for e in suite.expectations:
        mine = (
            [(set_of(e), e.over, v) for v in e.values]
            if e.mode == "sweep"
            else [(set_of(e), "", None)]
        )
        units.update(dict.fromkeys(mine))
        if e.type == "no_regression":
            base.update(mine)
    return list(units), base


def _perturb_seed(seed: int, set_name: str, over: str) -> int:
    gen = _rng.child(seed, DATA_STREAM, 2, _crc(set_name), _crc(over))
    return int(gen.integers(0, 2**63 - 1))


def _predict(probe: Probe, st: _Set, unit: Unit, pseed: int) -> np.ndarray:
    _, over, value = unit
    try:
        if not over:
            return probe.predict(st.images)
        result = probe.sweep(st.images, st.labels, over, [value], rng=pseed)
    except (ProbeValueError, ProbeTypeError) as err:
        # The gate runs two models: say which one failed (its label: candidate or baseline).
        raise type(err)(f"{probe.label} model: {err}") from err
    return result.scores["p_lens"].to_numpy(dtype=np.float64)


def _baseline_predictions(
    base: Probe | None,
    ident: dict[str, str] | None,
    units: list[Unit],
    sets: dict[str, _Set],
    pseeds: dict[Unit, int],
    cache: Cache | None,
    counts: dict[str, int],
    checkpoints: Any = None,
) -> dict[Unit, np.ndarray]:
    """The baseline's p(lens) for ``units``, from the cache where possible (counted), else
    from the run's ``checkpoints`` (``probe check --resume``).

    A baseline without a content identity (``ident`` None: an opaque callable) is neither
    looked up nor stored: its scores may depend on files or state probe cannot see.
    """
    counts.update(baseline_from_cache=0, baseline_computed=0)
    if ident is None:
        cache = None
    out: dict[Unit, np.ndarray] = {}
    probe_src = source_digest("probe") if units else ""
    for u in units:
        assert base is not None
        inputs = {
            "what": "baseline p_lens",
            "model": ident,
            "set": sets[u[0]].key,
            "over": u[1],
            "value": u[2],
            "perturb_seed": pseeds[u] if u[1] else None,
            "block": _rng.BLOCK,
            "probe_source": probe_src,
        }
        got = cache.load_scores(inputs) if cache is not None else None
        if got is not None and got.shape == (len(sets[u[0]].labels),):
            out[u] = got
            counts["baseline_from_cache"] += 1
            continue
        out[u] = _checkpointed(
            checkpoints, "baseline", sets[u[0]], u, pseeds[u],
            functools.partial(_predict, base, sets[u[0]], u, pseeds[u]),
        )  # fmt: skip
        counts["baseline_computed"] += 1
        if cache is not None:
            cache.save_scores(inputs, out[u])
    return out


def _checkpointed(
    checkpoints: Any,
    who: str,
    st: _Set,
    unit: Unit,
    pseed: int,
    compute: Callable[[], np.ndarray],
) -> np.ndarray:
    """One unit's p(lens): a verified checkpoint of this run's if there is one (``probe check
    --resume``), else computed (and saved to ``checkpoints``, if any)."""
    if checkpoints is None:
        return compute()
    # Named by the set's content key, the perturber, the value and its seed: the file holds
    # exactly this unit's scores.
    name = f"{who}-{digest([st.key, unit[1], unit[2], pseed if unit[1] else None])[:24]}"
    got = checkpoints.get(name)
    if got is not None and got.get("p", np.empty(0)).shape == (len(st.labels),):
        return got["p"]
    p = np.asarray(compute(), dtype=np.float64)
    checkpoints.put(name, {"p": p})
    return p


def _gate_checkpoints(
    root: str | os.PathLike[str],
    resume: bool,
    ident: dict[str, Any] | None,
    candidate: Any,
    key: dict[str, Any],
    say: Callable[[str], None],
) -> Any:
    """The run's unit checkpoints under ``root`` (:class:`probe.checkpoints.Checkpoints`),
    keyed by ``key`` and the candidate's identity; None for a candidate without one (which
    ``resume`` refuses: its checkpoints could not be verified)."""
    from probe.checkpoints import Checkpoints

    if ident is None:
        if resume:
            raise ProbeValueError(
                f"--resume: the candidate {candidate!r} declares no identity (a callable needs "
                "model_id or weight_files), so its checkpoints cannot be verified"
            )
        return None
    return Checkpoints(root, {**key, "candidate": ident}, resume=resume, log=say)


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
    t_start = time.perf_counter()
    say = log or (lambda _line: None)
    the_suite = load_suite(suite)
    run_seed = the_suite.seed if seed is None else seed
    if isinstance(run_seed, bool) or not isinstance(run_seed, int | np.integer) or run_seed < 0:
        raise ProbeValueError(f"seed must be an integer >= 0; got {seed!r}")
    run_seed = int(run_seed)
    batch_size = check_positive_int(batch_size, "batch_size")
    if the_suite.needs_baseline and baseline is None:
        names = [e.name for e in the_suite.expectations if e.type == "no_regression"]
        raise ProbeValueError(f"no_regression expectations {names} need a baseline model")
    path = os.fspath(data) if data is not None else the_suite.data.path
    cache = Cache(cache_dir) if cache_dir is not None else None
    timings: dict[str, float] = {}

    # Load the models first: a bad model fails before minutes of simulation.
    cand = Probe(
        candidate,
        batch_size=batch_size,
        progress=progress,
        label="candidate",
        trust_code=trust_code,
        client=client,
        chunk_size=chunk_size,
    )
    base = None
    base_ident = None
    if baseline is not None and the_suite.needs_baseline:
        base = Probe(
            baseline,
            batch_size=batch_size,
            progress=progress,
            label="baseline",
            trust_code=trust_code,
            client=client,
            chunk_size=chunk_size,
        )
        loaded = base.adapter.model
        base_ident = model_identity(baseline if _is_file(baseline) else loaded)
        digest = cand.adapter.digest
        if digest is not None and digest == base.adapter.digest and not allow_same_model:
            raise ProbeValueError(
                f"candidate and baseline are the same model (content digest "
                f"{digest[:12]}...); pass allow_same_model=True "
                "(--allow-same-model) to compare a model with itself"
            )

    def set_of(e: Any) -> str:
        return _SAVED if path is not None else e.set

    names = sorted({set_of(e) for e in the_suite.expectations})

    def open_checkpoints() -> Any:
        from probe.checkpoints import data_identity

        assert checkpoint_dir is not None

        key = {
            "command": "check",
            "baseline": base_ident,
            "suite": the_suite.to_dict(),
            "seed": run_seed,
            "data": data_identity(path) if path is not None else None,
            "simulator": simulator_identity(simulator) if path is None else None,
            "batch_size": batch_size,
            "chunk_size": chunk_size,
            "probe_source": source_digest("probe"),
        }
        ident = model_identity(candidate if _is_file(candidate) else cand.adapter.model)
        return _gate_checkpoints(checkpoint_dir, resume, ident, candidate, key, say)

    checkpoints = None
    if checkpoint_dir is not None and path is None:
        # Keyed (and a mismatched resume refused) before minutes of simulation.
        if simulator is None:
            simulator = _make_simulator(the_suite.data)  # its identity is in the key
        checkpoints = open_checkpoints()
    sets, sim_ident, closers = _load_sets(
        the_suite,
        names,
        seed=run_seed,
        path=path,
        simulator=simulator,
        cache=cache,
        timings=timings,
        say=say,
    )
    try:
        if checkpoint_dir is not None and path is not None:
            checkpoints = open_checkpoints()  # a saved set: once _load_sets has opened it
        for e in the_suite.expectations:
            st = sets[set_of(e)]
            if e.mode == "binned" and e.over not in st.truth.columns:
                raise ProbeValueError(
                    f"{e.who}: set {set_of(e)!r} has no truth column {e.over!r}; columns: "
                    f"{names_list(list(st.truth.columns)[:40])}"
                )
        units, base_set = _units(the_suite, set_of)
        base_units = [u for u in units if u in base_set]
        pseeds = {u: _perturb_seed(run_seed, u[0], u[1]) for u in units}
        counts = {"candidate_computed": 0}
        t0 = time.perf_counter()
        base_p = _baseline_predictions(
            base, base_ident, base_units, sets, pseeds, cache, counts, checkpoints
        )
        timings["baseline"] = time.perf_counter() - t0
        if base is not None and base_ident is None:
            counts["baseline_uncacheable"] = 1
            say(f"baseline: not cached: {_OPAQUE.format(name=base.adapter.description)}")
        say(
            f"baseline: {counts['baseline_computed']} unit(s) computed, "
            f"{counts['baseline_from_cache']} from the cache ({timings['baseline']:.1f} s)"
        )
        t0 = time.perf_counter()
        reused = 0 if checkpoints is None else checkpoints.reused
        cand_p = {
            u: _checkpointed(checkpoints, "candidate", sets[u[0]], u, pseeds[u],
                             functools.partial(_predict, cand, sets[u[0]], u, pseeds[u]))
            for u in units
        }  # fmt: skip
        counts["candidate_computed"] = len(units)
        timings["candidate"] = time.perf_counter() - t0
        say(f"candidate: {len(units)} unit(s) ({timings['candidate']:.1f} s)")
        if resume and checkpoints is not None:
            counts["candidate_from_checkpoints"] = checkpoints.reused - reused
            counts["baseline_from_checkpoints"] = reused
            say(checkpoints.summary())

        t0 = time.perf_counter()
        outcomes = []
        for e in the_suite.expectations:
            s = set_of(e)
            mine = [(s, e.over, v) for v in e.values] if e.mode == "sweep" else [(s, "", None)]
            p = np.stack([cand_p[u] for u in mine])
            b = np.stack([base_p[u] for u in mine]) if e.type == "no_regression" else None
            par = sets[s].truth[e.over].to_numpy(dtype=np.float64) if e.mode == "binned" else None
            outcomes.append(
                evaluate(
                    e,
                    p,
                    sets[s].labels,
                    parameter=par,
                    baseline=b,
                    alpha=the_suite.alpha,
                    n_boot=the_suite.n_boot,
                    rng=run_seed,
                )
            )
        timings["statistics"] = time.perf_counter() - t0
        galleries = {}
        for i, (e, o) in enumerate(zip(the_suite.expectations, outcomes)):
            if not o.holds:
                s = set_of(e)
                mine = [(s, e.over, v) for v in e.values] if e.mode == "sweep" else [(s, "", None)]
                galleries[i] = _failed_bin_gallery(
                    e, o, sets[s], np.stack([cand_p[u] for u in mine]), [pseeds[u] for u in mine]
                )
    finally:
        for close in closers:
            close()
    timings["total"] = time.perf_counter() - t_start
    if cache is not None:
        counts["sets_from_cache"] = cache.count("set", "hit")
        counts["invalid"] = cache.count("set", "invalid") + cache.count("scores", "invalid")
    else:
        counts["sets_from_cache"] = 0
        counts["invalid"] = 0
    counts["sets_simulated"] = sum(st.source == "simulated" for st in sets.values())
    from probe._version import __version__

    provenance = {
        "probe": __version__,
        "created": now_utc(),
        "seed": run_seed,
        "suite": the_suite.to_dict(),
        "candidate": {
            "description": cand.adapter.description,
            "model_hash": cand.adapter.hash,
            **_file_hash(candidate),
        },
        "baseline": None
        if base is None
        else {
            "description": base.adapter.description,
            "model_hash": base.adapter.hash,
            "identity": base_ident,
            "cached": base_ident is not None,
        },
        "data": {
            name: {
                "key": st.key,
                "source": st.source,
                "n_lenses": int(st.labels.sum()),
                "n_nonlenses": int((st.labels == 0).sum()),
            }
            for name, st in sets.items()
        },
        "simulator": sim_ident,
        "perturb_seeds": {f"{u[0]}/{u[1]}": s for u, s in pseeds.items() if u[1]},
        "cache_dir": None if cache is None else os.fspath(cache.root),
        "packages": package_versions(),
    }
    return GateResult(
        all(o.holds for o in outcomes), outcomes, timings, provenance, counts, galleries
    )


def _failed_bin_gallery(e: Any, o: Outcome, st: _Set, p: np.ndarray, pseeds: list[int]) -> Any:
    """The candidate's lowest-scoring images (correct-class score) of ``o``'s first failed bin.

    Binned expectations: the images of the bin's group with the parameter in the bin; sweeps:
    the group's images at the bin's value, perturbed exactly as they were scored.
    """
    from probe.adapters.images import ImageSet
    from probe.perturbers import factory
    from probe.studies.galleries import GALLERY_SIZE, Gallery
    from probe.sweeps.sensitivity import correct_class_score

    row = o.table[~o.table["holds"].to_numpy(dtype=bool)].iloc[0]
    lab = st.labels
    group = str(row["group"])
    mask = np.ones(lab.size, bool) if group == "all" else lab == (1 if group == "lens" else 0)
    j = 0
    if e.mode == "sweep":
        j = int(np.flatnonzero(np.isclose(np.asarray(e.values, float), float(row["low"])))[0])
    elif np.isfinite(row["low"]):
        par = st.truth[e.over].to_numpy(dtype=np.float64)
        last = bool(row["high"] >= float(o.table["high"].max()))
        mask &= (par >= row["low"]) & ((par <= row["high"]) if last else (par < row["high"]))
    score = correct_class_score(p[j], lab)
    idx = np.flatnonzero(mask)
    idx = idx[np.lexsort((idx, score[idx]))][:GALLERY_SIZE]
    captions = (
        [f"{e.over} {v:.2f}" for v in st.truth[e.over].to_numpy(dtype=np.float64)[idx]]
        if e.mode == "binned"
        else []
    )
    images = np.stack([np.asarray(st.images[int(i)]) for i in idx]) if idx.size else np.empty(0)
    if e.mode == "sweep" and idx.size:
        # probe.sweep over [value] perturbs block k of probe.rng.BLOCK images with stream
        # (PERTURB, 0, k) of the unit's seed
        build = factory(e.over)[0]
        pert = build(float(e.values[j]))
        entropy = _rng.root_entropy(pseeds[j])
        n = lab.size
        out = []
        for i in idx:
            k = int(i) // _rng.BLOCK
            first, last_i = k * _rng.BLOCK, min((k + 1) * _rng.BLOCK, n)
            block = ImageSet(st.images).batch(first, last_i)
            out.append(pert(block, _rng.child(entropy, _rng.PERTURB, 0, k))[int(i) - first])
        images = np.stack(out)
    return Gallery(
        experiment=o.name,
        model="candidate",
        how=(
            f"the candidate's {idx.size} lowest-scoring {group} images of the failed bin "
            f"{row['label']}"
        ),
        samples=idx.astype(np.int64),
        labels=lab[idx].astype(np.int64),
        before=images,
        p_before=np.asarray(p[j][idx], dtype=float),
        value=float(row["low"]),
        captions=captions,
    )


def _is_file(model: Any) -> bool:
    return isinstance(model, str | os.PathLike) and Path(model).is_file()


def _file_hash(model: Any) -> dict[str, str]:
    if _is_file(model):
        return {"file": os.fspath(model), "file_sha256": file_digest(model)}
    return {}


def _store_digest(path: str) -> str:
    """SHA-256 over every file of a ``.zarr`` store (relative name and content): a cache key."""
    import hashlib

    root = Path(path)
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(file.relative_to(root).as_posix().encode())
        h.update(file_digest(file).encode())
    return h.hexdigest()
