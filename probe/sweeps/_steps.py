"""Shared steps of the sweeps: phase timing, per-block perturbation, checks of rendered images.

Public names of a private module: used by :mod:`probe.sweeps.sensitivity`,
:mod:`probe.sweeps.resim` and :mod:`probe.sweeps.chunks`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from probe import rng as _rng
from probe.adapters.images import ImageSet
from probe.errors import ProbeValueError
from probe.perturbers import Perturber
from probe.validation import first_nonfinite


class Timer:
    """Accumulates wall time per phase, reported in provenance (used by the benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0


class BlockPerturbation:
    """One sweep value's perturbation, drawn per block of ``rng.BLOCK`` images.

    Block ``k`` (images ``k * BLOCK`` to ``(k + 1) * BLOCK - 1``, the last one possibly shorter)
    is always perturbed whole, with the generator of stream ``(PERTURB, value_index, k)``, so
    every image's perturbation is fixed by the seed alone, whatever the batching. A batch is
    assembled in one buffer (reused from batch to batch) from its blocks: a block inside the
    batch is written straight into it (:meth:`Perturber.apply_into`); a block that straddles two
    batches is perturbed once, when the first of them needs it, and its rest is kept for the
    next one (memory: one block). Batches must be asked for in increasing order, as
    :meth:`ImageSet.spans` yields them.
    """

    def __init__(
        self,
        image_set: ImageSet,
        pert: Perturber,
        entropy: int,
        value_index: int,
        batch_size: int,
        block_offset: int = 0,
    ) -> None:
        # block_offset: index of image_set's first block in the whole set (a chunk of it).
        self.block_offset = block_offset
        self.image_set = image_set
        self.pert = pert
        self.entropy = entropy
        self.value_index = value_index
        self.batch_size = batch_size
        # Output dtype; a user function's is learnt from its first output.
        self._dtype = pert.result_dtype(image_set.dtype)
        self._buffer: np.ndarray | None = None
        self._carry_index = -1
        self._carry: np.ndarray | None = None

    def _rng(self, k: int) -> np.random.Generator:
        return _rng.child(self.entropy, _rng.PERTURB, self.value_index, self.block_offset + k)

    def _carried(self, k: int, first: int, last: int) -> np.ndarray:
        if self._carry_index != k:
            self._carry = self.pert(self.image_set.batch(first, last), self._rng(k))
            self._carry_index = k
        assert self._carry is not None
        return self._carry

    def _output(self, size: int, dtype: np.dtype) -> np.ndarray:
        shape = (self.batch_size, *self.image_set.image_shape)
        buffer = self._buffer
        if buffer is None or buffer.dtype != dtype:
            # One buffer for all batches: a fresh array per batch costs page faults each time.
            buffer = self._buffer = np.empty(shape, dtype)
        return buffer[:size]

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Perturbed images ``start:stop`` (channels-last).

        The array returned may be overwritten by the next call: use it before asking again.
        """
        size, n = _rng.BLOCK, self.image_set.n
        out: np.ndarray | None = None
        for k in range(start // size, (stop - 1) // size + 1):
            first, last = k * size, min((k + 1) * size, n)
            lo, hi = max(start, first), min(stop, last)
            whole = lo == first and hi == last
            if whole and self._dtype is not None:
                if out is None:
                    out = self._output(stop - start, self._dtype)
                images = self.image_set.batch(first, last)
                self.pert.apply_into(images, self._rng(k), out[lo - start : hi - start])
                continue
            if whole:
                piece = self.pert(self.image_set.batch(first, last), self._rng(k))
            else:
                piece = self._carried(k, first, last)[lo - first : hi - first]
            if lo == start and hi == stop:
                return piece  # the batch is this one piece: no copy
            if out is None:
                if self._dtype is None:
                    self._dtype = piece.dtype
                out = self._output(stop - start, self._dtype)
            out[lo - start : hi - start] = piece
        assert out is not None
        return out


class NoBar:
    """A progress bar that shows nothing (progress bars off)."""

    def update(self, n: int) -> None:
        """Do nothing (progress bars off)."""


def simulator_hint(
    err: Exception, kind: int, name: str, given: list[str] | None = None
) -> ProbeValueError:
    """Name what the sampler was given, so a rejected fixed control is not blamed on ``name``."""
    who = "non-lenses" if kind == 1 else "lenses"
    sent = f"{name!r} and controls {', '.join(map(repr, given))}" if given else repr(name)
    hint = ""
    if kind == 1:
        hint = (
            f"; lens-only controls belong in lens_controls= (and if {name!r} is a lens-only "
            "parameter, pass n_nonlenses=0)"
        )
    return ProbeValueError(f"the simulator rejected {sent} for {who} ({err}){hint}")


def check_rendered(images: Any, rows: int, value: float) -> np.ndarray:
    """A simulator's rendered images as an array, checked: 4-D, one image per truth row (``value``:
    the re-simulated value, named in the error)."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[0] != rows:
        raise ProbeValueError(
            f"sim.render returned shape {arr.shape} for {rows} rows at value {value}; "
            "expected (rows, H, W, C)"
        )
    bad = first_nonfinite(arr)
    if bad is not None:
        raise ProbeValueError(f"sim.render produced {bad[1]} at row {bad[0]} for value {value}")
    return arr
