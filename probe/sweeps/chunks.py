"""Probe's chunk tasks: pure functions of (configuration, seed, chunk index) run on Dask workers.

A chunk is ``chunk_size`` consecutive images (a multiple of ``probe.rng.BLOCK``, so a chunk is
whole perturbation blocks and whole hash leaves): its perturbations use the same streams
``(PERTURB, value, block)`` as the serial path, its hash leaves are the serial ones, so the
assembled result is bit-identical to the serial one whatever the chunk size or worker count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probe import rng as _rng
from probe.adapters.images import HASH_LEAF, ImageSet
from probe.cluster import ModelSpec, chunk_inputs, chunk_map, remote_source
from probe.errors import ProbeValueError
from probe.sweeps._steps import BlockPerturbation, check_rendered
from probe.validation import check_positive_int, first_nonfinite

DEFAULT_CHUNK = 1024
"""Images per chunk task by default (at 100x100x4 float32: 160 MB read per task, in batches)."""

# Chunks are whole perturbation blocks and whole hash leaves.
assert DEFAULT_CHUNK % _rng.BLOCK == 0
assert _rng.BLOCK % HASH_LEAF == 0


def check_chunk_size(chunk_size: Any) -> int:
    """A positive chunk size rounded up to a multiple of ``probe.rng.BLOCK`` (64) images."""
    size = check_positive_int(chunk_size, "chunk_size")
    return -(-size // _rng.BLOCK) * _rng.BLOCK


def spans(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(lo, hi)`` of the chunks of ``n`` images."""
    return [(lo, min(lo + chunk_size, n)) for lo in range(0, n, chunk_size)]


def _images(window: Any, channels_first: bool) -> ImageSet:
    return ImageSet(window, channels_first=channels_first)


def baseline_task(
    model: ModelSpec, window: Any, lo: int, batch_size: int, channels_first: bool
) -> tuple[np.ndarray, list[bytes]]:
    """p(lens) of one chunk and its hash leaves (validating pixels on the way)."""
    adapter = model.get()
    images = _images(window, channels_first)
    leaves: list[bytes] = []
    p = np.empty(images.n)
    for start, stop, batch in images.scan(batch_size, leaves, check=True, offset=lo):
        p[start:stop] = adapter(batch)
    return p, leaves


def sweep_task(
    model: ModelSpec,
    window: Any,
    lo: int,
    batch_size: int,
    channels_first: bool,
    pert: Any,
    entropy: int,
    value_index: int,
) -> np.ndarray:
    """p(lens) of one chunk under one value's perturbation (streams of the serial path)."""
    adapter = model.get()
    images = _images(window, channels_first)
    blocks = BlockPerturbation(
        images, pert, entropy, value_index, batch_size, block_offset=lo // _rng.BLOCK
    )
    p = np.empty(images.n)
    for start, stop in images.spans(batch_size):
        out = blocks.batch(start, stop)
        bad = None if pert.preserves_finite else first_nonfinite(out)
        if bad is not None:
            raise ProbeValueError(
                f"perturber {pert!r} produced {bad[1]} at image index {lo + start + bad[0]}"
            )
        p[start:stop] = adapter(out)
    return p


def render_task(
    model: ModelSpec, sim: Any, rows: Any, noise: bool, value: float, batch_size: int
) -> np.ndarray:
    """Render truth rows with the simulator on the worker and score them."""
    adapter = model.get()
    p = np.empty(len(rows))
    for start in range(0, len(rows), batch_size):
        part = rows.iloc[start : start + batch_size]
        imgs = check_rendered(sim.render(part, noise=noise), len(part), value)
        p[start : start + len(part)] = adapter(imgs)
    return p


def distributed_baseline(
    image_set: ImageSet,
    model: ModelSpec,
    client: Any,
    *,
    batch_size: int,
    chunk_size: int,
    progress: bool,
    checkpoints: Any = None,
) -> tuple[np.ndarray, str]:
    """p(lens) of every image and the images' hash, chunk by chunk on ``client``'s workers
    (or in this process when ``client`` is None). ``checkpoints``
    (:class:`probe.checkpoints.Checkpoints`): chunks found there are reused, the others saved
    as they finish."""
    from probe.checkpoints import array_to_leaves, leaves_to_array

    source = image_set.source
    remote = remote_source(source)
    chunks = spans(image_set.n, chunk_size)
    names = [f"baseline-{lo:010d}-{hi:010d}" for lo, hi in chunks]
    parts: list[Any] = [None] * len(chunks)
    if checkpoints is not None:
        for i, name in enumerate(names):
            got = checkpoints.get(name)
            if got is not None and "p" in got and "leaves" in got:
                parts[i] = (got["p"], array_to_leaves(got["leaves"]))
    todo = [i for i, part in enumerate(parts) if part is None]
    tasks = [
        (model, chunk_inputs(source, chunks[i][0], chunks[i][1], client, remote), chunks[i][0],
         batch_size, image_set.channels_first)
        for i in todo
    ]  # fmt: skip

    def save(t: int, result: Any) -> None:
        if checkpoints is not None:
            arrays = {"p": np.asarray(result[0]), "leaves": leaves_to_array(result[1])}
            checkpoints.put(names[todo[t]], arrays)

    computed = chunk_map(
        baseline_task, tasks, client, desc="baseline", progress=progress, on_result=save
    )
    for i, result in zip(todo, computed):
        parts[i] = result
    p = np.concatenate([part[0] for part in parts])
    leaves = [leaf for part in parts for leaf in part[1]]
    p.setflags(write=False)
    return p, image_set.combine_leaves(leaves)


def distributed_sweep(
    image_set: ImageSet,
    model: ModelSpec,
    client: Any,
    perturbers: list[Any],
    base: np.ndarray,
    entropy: int,
    *,
    batch_size: int,
    chunk_size: int,
    progress: bool,
    checkpoints: Any = None,
) -> np.ndarray:
    """``(values, n)`` p(lens) under each perturbation; identity values reuse ``base``.
    ``checkpoints``: as for :func:`distributed_baseline` (one file per value and chunk)."""
    source = image_set.source
    remote = remote_source(source)
    chunks = spans(image_set.n, chunk_size)
    p_all = np.empty((len(perturbers), image_set.n))
    # One input per chunk, shared by every value (scattered once when in memory).
    inputs: dict[int, Any] = {}
    tasks, where = [], []
    for j, pert in enumerate(perturbers):
        if pert.is_identity:
            p_all[j] = base
            continue
        for c, (lo, hi) in enumerate(chunks):
            name = f"sweep-{j:04d}-{lo:010d}-{hi:010d}"
            got = None if checkpoints is None else checkpoints.get(name)
            if got is not None and got.get("p", np.empty(0)).shape == (hi - lo,):
                p_all[j, lo:hi] = got["p"]
                continue
            if c not in inputs:
                inputs[c] = chunk_inputs(source, lo, hi, client, remote)
            window = inputs[c]
            tasks.append(
                (model, window, lo, batch_size, image_set.channels_first, pert, entropy, j)
            )
            where.append((j, lo, hi, name))

    def save(t: int, result: Any) -> None:
        if checkpoints is not None:
            checkpoints.put(where[t][3], {"p": np.asarray(result)})

    parts = chunk_map(sweep_task, tasks, client, desc="sweep", progress=progress, on_result=save)
    for (j, lo, hi, _), part in zip(where, parts):
        p_all[j, lo:hi] = part
    return p_all
