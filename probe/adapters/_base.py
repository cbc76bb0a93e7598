"""What every adapter is: channels-last batch in, raw scores out, plus a content digest."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from probe.provenance import file_sha256 as file_sha256  # re-exported for the adapters


class Adapter(ABC):
    """A model behind one contract: ``adapter(batch)`` with ``batch`` float ``(n, H, W, C)``.

    Adapters do their framework's layout (NCHW for PyTorch), dtype and device conversion; the
    outputs are numpy arrays that :func:`probe.adapters.models.to_p_lens` turns into p(lens).
    ``content_digest()`` is the SHA-256 of what determines the outputs (architecture and
    weights, or a model file's bytes), the identity caches and the gate use.
    """

    #: Short human-readable name, e.g. ``onnx:A.onnx``.
    description: str = "adapter"

    @abstractmethod
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Raw model outputs of a channels-last batch."""

    @abstractmethod
    def content_digest(self) -> str | None:
        """SHA-256 of what determines the outputs (None: unknown, never cached)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"


def hash_arrays(h: Any, named: list[tuple[str, Any]]) -> None:
    """Feed ``(name, array)`` pairs (name, dtype, shape, bytes) into the hash ``h``."""
    for name, value in named:
        arr = np.ascontiguousarray(np.asarray(value))
        h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())


def check_batch(batch: np.ndarray) -> np.ndarray:
    """A 4-D channels-last batch as a numpy array."""
    from probe.errors import ProbeTypeError

    x = np.asarray(batch)
    if x.ndim != 4:
        raise ProbeTypeError(f"adapter input must be (n, H, W, C); got shape {x.shape}")
    return x


def dask_worker_threads() -> int | None:
    """Threads of the Dask worker this code runs in (None outside a worker), so a framework's
    own thread pool matches the worker's share of the cores."""
    try:
        from distributed import get_worker
    except ImportError:  # distributed is an optional engine
        return None
    try:
        worker = get_worker()
    except ValueError:  # not inside a Dask task
        return None
    state = getattr(worker, "state", worker)
    threads = getattr(state, "nthreads", None)
    return int(threads) if threads else None
