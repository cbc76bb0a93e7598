"""Batched, validated access to an image array (numpy, memmap or an h5py dataset).

Probe never copies the whole image set: it reads one batch at a time, so a sweep over a large
set needs memory for a few batches only, whatever the number of images or perturbation values.
Inside probe every batch is channels-last, ``(n, H, W, C)``, the layout the perturbers document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from probe.errors import ProbeTypeError, ProbeValueError
from probe.validation import first_nonfinite


class ImageSet:
    """A read-only view of ``images`` that yields channels-last batches.

    Parameters
    ----------
    images : array_like
        A 4-D numeric array, or any object with ``shape``, ``dtype`` and slicing (``h5py.Dataset``,
        ``numpy.memmap``), laid out ``(n, H, W, C)`` or, with ``channels_first``, ``(n, C, H, W)``.
    channels_first : bool
        Whether ``images`` is laid out ``(n, C, H, W)``.
    """

    def __init__(self, images: Any, *, channels_first: bool = False) -> None:
        if not hasattr(images, "shape") or not hasattr(images, "__getitem__"):
            images = np.asarray(images)
        shape = tuple(int(s) for s in images.shape)
        if len(shape) != 4:
            layout = "(n, C, H, W)" if channels_first else "(n, H, W, C)"
            raise ProbeTypeError(f"images must be 4-D {layout}; got shape {shape}")
        dtype = np.dtype(images.dtype)
        if dtype.kind not in "biuf":
            raise ProbeTypeError(f"images must be numeric; got dtype {dtype}")
        if shape[0] == 0:
            raise ProbeValueError("images is empty (0 images)")
        self._source = images
        self.channels_first = channels_first
        self.dtype = dtype
        self.n = shape[0]
        # Channels-last shape of one image (H, W, C), whatever the source layout.
        self.image_shape = (shape[2], shape[3], shape[1]) if channels_first else shape[1:]

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as a channels-last array (a view where the source allows it)."""
        out = np.asarray(self._source[start:stop])
        return np.moveaxis(out, 1, -1) if self.channels_first else out

    def take(self, index: np.ndarray) -> np.ndarray:
        """Images at ``index`` (sorted or not) as a channels-last array."""
        order = np.argsort(index)
        # h5py needs increasing indices; numpy does not mind.
        out = np.asarray(self._source[np.asarray(index)[order]])
        out = out[np.argsort(order)]
        return np.moveaxis(out, 1, -1) if self.channels_first else out

    def spans(self, batch_size: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive batches covering all images."""
        for start in range(0, self.n, batch_size):
            yield start, min(start + batch_size, self.n)

    @property
    def in_memory(self) -> bool:
        """Whether the source is a numpy array (safe to read from a second thread)."""
        return isinstance(self._source, np.ndarray)

    @staticmethod
    def check_finite(batch: np.ndarray, start: int) -> None:
        """Raise "images contain NaN at index 3" if a pixel of ``batch`` is not finite.

        ``start`` is the index of the batch's first image in the whole set.
        """
        bad = first_nonfinite(batch)
        if bad is not None:
            raise ProbeValueError(f"images contain {bad[1]} at index {start + bad[0]}")

    def hash_pixels(self, batch_size: int, *, check: bool = True) -> str:
        """SHA-256 of the pixels, layout and dtype; with ``check``, validate them on the way.

        Raises
        ------
        ProbeValueError
            With ``check``, "images contain NaN at index 3" for the first non-finite image.
        """
        digest = hashlib.sha256()
        digest.update(f"{self.dtype.str}{self.n}{self.image_shape}".encode())
        for start, stop in self.spans(batch_size):
            raw = np.ascontiguousarray(self._source[start:stop])
            if check:
                self.check_finite(raw, start)
            digest.update(raw.data.cast("B"))
        return digest.hexdigest()
