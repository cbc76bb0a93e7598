"""The gate's test sets: simulated from a suite's ``[data.sets]`` (or loaded from the cache), or
a user's saved set that every expectation uses.

Seeds (all below the run's seed ``s``): set ``name`` draws its lenses from
``SeedSequence(s, spawn_key=(6, 0, crc32(name)))`` and its non-lenses from ``(6, 1,
crc32(name))`` (:data:`DATA_STREAM` is 6). simlens (or any simulator) is imported here only,
lazily, through ``suite.data.simulator``.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.adapters.specs import load_callable
from probe.cache import Cache, digest, file_digest, simulator_identity
from probe.errors import ProbeValueError
from probe.gating.suite import DataSpec, SetSpec, Suite
from probe.provenance import hash_frame, package_versions
from probe.validation import check_labels

__all__ = [
    "DATA_STREAM",
    "SAVED_SET",
    "GateSet",
    "load_sets",
    "make_simulator",
    "name_crc",
    "simulate_set",
    "store_digest",
]

DATA_STREAM = 6
"""First element of the spawn keys of simulated draws and perturbations (see the docstring)."""

SAVED_SET = "saved set"
"""The name of a user's saved set, which every expectation uses."""


@dataclass
class GateSet:
    """One test set of a gate run.

    Attributes
    ----------
    images : array-like, shape (n, bands, height, width)
        The images (a lazy view for a saved set).
    labels : numpy.ndarray of int8, shape (n,)
        1 for a lens, 0 for a non-lens.
    truth : pandas.DataFrame
        The truth table, one row per image.
    key : str
        The set's content key (cache and checkpoint names).
    source : str
        ``"simulated"``, ``"cache"`` or ``"file PATH"``.
    """

    images: Any
    labels: np.ndarray
    truth: pd.DataFrame
    key: str
    source: str


def name_crc(text: str) -> int:
    """CRC-32 of ``text`` (UTF-8): a set's or perturber's index in a spawn key."""
    return zlib.crc32(text.encode("utf-8"))


def make_simulator(spec: DataSpec) -> Any:
    """Build the suite's ``data.simulator`` for its ``data.survey``."""
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


def simulate_set(sim: Any, spec: SetSpec, name: str, seed: int) -> tuple[Any, np.ndarray, Any]:
    """Draw and render set ``name`` of ``spec`` with ``sim``: images, labels and truth table."""
    from probe.studies.simulation import KindMixture  # the study's mixture of non-lens kinds

    parts, labels = [], []
    if spec.n_lenses:
        gen = _rng.child(seed, DATA_STREAM, 0, name_crc(name))
        parts.append(sim.sample_lenses(spec.n_lenses, rng=gen, **spec.lenses))
        labels.append(np.ones(spec.n_lenses, np.int8))
    if spec.n_nonlenses:
        gen = _rng.child(seed, DATA_STREAM, 1, name_crc(name))
        mix = KindMixture(sim, spec.nonlens_kinds, {})
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


def load_sets(
    suite: Suite,
    names: list[str],
    *,
    seed: int,
    path: str | None,
    simulator: Any,
    cache: Cache | None,
    timings: dict[str, float],
    say: Callable[[str], None],
) -> tuple[dict[str, GateSet], dict[str, Any] | None, list[Callable[[], None]]]:
    """The sets ``names`` of ``suite`` (or the saved set at ``path``, as :data:`SAVED_SET`).

    Returns the sets by name, the simulator's identity (None for a saved set) and the
    callables that close what was opened. Adds wall seconds to ``timings`` (``load_sets``,
    ``simulate``).
    """
    if path is not None:
        return _load_saved_set(path, timings, say)
    return _load_simulated_sets(suite, names, seed, simulator, cache, timings, say)


def _load_saved_set(
    path: str, timings: dict[str, float], say: Callable[[str], None]
) -> tuple[dict[str, GateSet], None, list[Callable[[], None]]]:
    from probe.adapters.datasets import load_set

    is_store = Path(path).is_dir() and path.rstrip("/\\").endswith(".zarr")
    if not Path(path).is_file() and not is_store:
        raise ProbeValueError(f"data set {path!r} not found")
    t0 = time.perf_counter()
    ds = load_set(path)
    try:
        labels = check_labels(np.asarray(ds.labels), int(ds.images.shape[0]))
        data_digest = store_digest(path) if is_store else file_digest(path)
        st = GateSet(ds.images, labels, ds.truth, data_digest, f"file {path}")
    except BaseException:
        ds.close()
        raise
    timings["load_sets"] = time.perf_counter() - t0
    say(f"data: {path} ({labels.sum()} lenses + {(labels == 0).sum()} non-lenses)")
    return {SAVED_SET: st}, None, [ds.close]


def _load_simulated_sets(
    suite: Suite,
    names: list[str],
    seed: int,
    simulator: Any,
    cache: Cache | None,
    timings: dict[str, float],
    say: Callable[[str], None],
) -> tuple[dict[str, GateSet], dict[str, Any], list[Callable[[], None]]]:
    t0 = time.perf_counter()
    sim = simulator if simulator is not None else make_simulator(suite.data)
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
            sets[name] = GateSet(images, labels, truth, key, "cache")
            continue
        say(f"set {name!r}: simulating {spec.n_lenses} lenses + {spec.n_nonlenses} non-lenses")
        images, labels, truth = simulate_set(sim, spec, name, seed)
        timings["simulate"] = timings.get("simulate", 0.0) + time.perf_counter() - t0
        if cache is not None:
            cache.save_set(inputs, images, labels, truth)
        sets[name] = GateSet(images, labels, truth, key, "simulated")
    return sets, ident, []


def store_digest(path: str) -> str:
    """SHA-256 over every file of a ``.zarr`` store (relative name and content): a cache key."""
    root = Path(path)
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(file.relative_to(root).as_posix().encode())
        h.update(file_digest(file).encode())
    return h.hexdigest()
