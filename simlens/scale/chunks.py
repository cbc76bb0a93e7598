"""The chunk tasks of :func:`simlens.scale.generation.generate`: what a task needs
(:class:`ChunkSpec`), the simulator each worker builds once, and the tasks that sample, render
and write one chunk (pure functions of the spec and the chunk index ``k``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from simlens.physics.lensing import clear_grid_cache

__all__ = [
    "ChunkSpec",
    "chunk_data",
    "h5_task",
    "resume_fingerprint",
    "sample_rows",
    "shard_task",
    "spec_simulator",
]

# Provenance entries that describe the run, not the pixels: left out of the resume fingerprint.
VOLATILE = ("created_utc", "python", "platform")


@dataclass(frozen=True)
class ChunkSpec:
    """Everything a chunk task needs; small, so it travels to workers cheaply."""

    path: str
    n: int
    kind: str
    survey: str
    npix: int
    seed: int
    chunk: int
    noise: bool
    controls: dict[str, Any] = field(default_factory=dict)
    factory: Callable[[str, int], Any] | None = None  # builds the simulator (a test seam)


def _build(survey: str, npix: int) -> Any:
    from simlens.simulator import Simulator

    return Simulator(survey=survey, npix=npix)


@functools.lru_cache(maxsize=4)
def _cached(factory: Callable[[str, int], Any], survey: str, npix: int) -> Any:
    return factory(survey, npix)


def spec_simulator(spec: ChunkSpec) -> Any:
    """One simulator per worker process and configuration (building one reads catalogues)."""
    return _cached(spec.factory or _build, spec.survey, spec.npix)


def sample_rows(spec: ChunkSpec, start: int, count: int) -> pd.DataFrame:
    """Truth rows ``start .. start+count-1`` of the spec's seed sequence."""
    sim = spec_simulator(spec)
    if spec.kind == "lens":
        return sim.sample_lenses(count, rng=spec.seed, start=start, **spec.controls)
    return sim.sample_nonlenses(count, rng=spec.seed, kind=spec.kind, start=start, **spec.controls)


def chunk_data(spec: ChunkSpec, k: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Images and truth of chunk ``k`` (pure in ``spec`` and ``k``)."""
    start = k * spec.chunk
    rows = sample_rows(spec, start, min(spec.chunk, spec.n - start))
    images = spec_simulator(spec).render(rows, noise=spec.noise)
    # this chunk's ray-traced grids are never needed again: memory stays flat in N
    clear_grid_cache()
    return images, rows


def shard_task(spec: ChunkSpec, resume: bool, k: int) -> dict[str, Any]:
    """Write shard ``k`` of the store (kept as is if ``resume`` and it verifies)."""
    from simlens.io.store import verify_shard, write_shard
    from simlens.io.store_layout import shard_bounds

    if resume and verify_shard(spec.path, k):
        start, stop = shard_bounds(spec.n, spec.chunk, k)
        return {"shard": k, "n": stop - start, "kept": True}
    images, truth = chunk_data(spec, k)
    record = write_shard(spec.path, k, images, truth)
    return {"shard": k, "n": len(truth), "kept": False, "files": record["files"]}


def h5_task(spec: ChunkSpec, k: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Images and truth of chunk ``k``, gathered by the driver into an HDF5 set."""
    return chunk_data(spec, k)


def resume_fingerprint(meta: dict[str, Any], chunk: int) -> dict[str, Any]:
    """What a store's pixels depend on: its provenance less run details, plus the shard size."""
    out = {k: v for k, v in meta.items() if k not in VOLATILE}
    out["shard_size"] = chunk
    return out
