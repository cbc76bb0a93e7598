"""Batched, validated access to an image array (numpy, memmap or an h5py dataset).

Probe never copies the whole image set: it reads one batch at a time, so a sweep over a large
set needs memory for a few batches only, whatever the number of images or perturbation values.
Inside probe every batch is channels-last, ``(n, H, W, C)``, the layout the perturbers document.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from probe.errors import ProbeTypeError, ProbeValueError
from probe.validation import first_nonfinite

HASH_LEAF = 64
"""Images per leaf of :meth:`ImageSet.hash_pixels` (fixed: the hash must not depend on batching)."""
_HASH_THREADS = min(8, os.cpu_count() or 1)


def read_slice(source: Any, start: int, stop: int) -> np.ndarray:
    """``source[start:stop]`` as an array; a sharded (zarr) source that fails to decode is
    reported naming its shard (a truncated or corrupt shard file)."""
    try:
        return np.asarray(source[start:stop])
    except (ValueError, OSError, RuntimeError) as err:
        shards = getattr(source, "shards", None)
        if not shards:
            raise
        size, n = int(shards[0]), int(source.shape[0])
        bad = start // size
        for k in range(start // size, (stop - 1) // size + 1):  # which of them fails alone
            try:
                source[max(start, k * size) : min(stop, (k + 1) * size, n)]
            except (ValueError, OSError, RuntimeError):
                bad = k
                break
        where = getattr(source, "store_path", source)
        raise ProbeValueError(
            f"images {start}:{stop} of {where} are unreadable: shard {bad} is truncated or "
            f"corrupt ({type(err).__name__}: {err})"
        ) from None


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
        self.source = images  # the array-like given (numpy, h5py, zarr, dask): read lazily
        self.channels_first = channels_first
        self.dtype = dtype
        self.n = shape[0]
        # Channels-last shape of one image (H, W, C), whatever the source layout.
        self.image_shape = (shape[2], shape[3], shape[1]) if channels_first else shape[1:]

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` as a channels-last array (a view where the source allows it)."""
        out = read_slice(self.source, start, stop)
        return np.moveaxis(out, 1, -1) if self.channels_first else out

    def take(self, index: np.ndarray) -> np.ndarray:
        """Images at ``index`` (sorted or not) as a channels-last array."""
        order = np.argsort(index)
        # h5py needs increasing indices; numpy does not mind.
        out = np.asarray(self.source[np.asarray(index)[order]])
        out = out[np.argsort(order)]
        return np.moveaxis(out, 1, -1) if self.channels_first else out

    def spans(self, batch_size: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive batches covering all images."""
        for start in range(0, self.n, batch_size):
            yield start, min(start + batch_size, self.n)

    @property
    def in_memory(self) -> bool:
        """Whether the source is a numpy array (safe to read from a second thread)."""
        return isinstance(self.source, np.ndarray)

    @staticmethod
    def check_finite(batch: np.ndarray, start: int) -> None:
        """Raise "images contain NaN at index 3" if a pixel of ``batch`` is not finite.

        ``start`` is the index of the batch's first image in the whole set.
        """
        bad = first_nonfinite(batch)
        if bad is not None:
            raise ProbeValueError(f"images contain {bad[1]} at index {start + bad[0]}")

    def hash_pixels(self, batch_size: int | None = None, *, check: bool = True) -> str:
        """SHA-256 of the pixels, layout and dtype; with ``check``, validate them on the way.

        The pixels are hashed in fixed leaves of ``HASH_LEAF`` images (SHA-256 of the leaf
        digests), so the hash does not depend on ``batch_size`` (kept for callers; unused) and,
        for an in-memory source, the leaves are hashed by several threads at once: hashing runs
        at ~1 GB/s per core, slower than a GPU model's inference on the same images.

        Raises
        ------
        ProbeValueError
            With ``check``, "images contain NaN at index 3" for the first non-finite image.
        """

        return self.combine_leaves(self.leaf_digests(check=check))

    def leaf_digests(self, *, check: bool = True, offset: int = 0) -> list[bytes]:
        """SHA-256 of each leaf of ``HASH_LEAF`` images, in order (see :meth:`hash_pixels`).

        ``offset`` is the index of this set's first image in a larger set (for messages); a
        chunk of a larger set that starts at a multiple of ``HASH_LEAF`` has the same leaves.
        """

        def leaf(start: int) -> bytes:
            raw = read_slice(self.source, start, min(start + HASH_LEAF, self.n))
            return self.leaf_digest(raw, offset + start, check=check)

        starts = range(0, self.n, HASH_LEAF)
        if self.in_memory and len(starts) > 1:
            # hashlib and numpy release the GIL on large buffers; map keeps the leaves in order,
            # so the first non-finite image is the one reported.
            with ThreadPoolExecutor(max_workers=min(len(starts), _HASH_THREADS)) as pool:
                return list(pool.map(leaf, starts))
        # h5py and memmaps are read serially
        return [leaf(s) for s in starts]

    def leaf_digest(self, raw: np.ndarray, start: int, *, check: bool = True) -> bytes:
        """SHA-256 of one leaf as read from the source (its layout), ``start`` its first image's
        index (for messages); with ``check``, "images contain NaN at index ..." first."""
        raw = np.ascontiguousarray(raw)
        if check:
            self.check_finite(raw, start)
        return hashlib.sha256(raw.data.cast("B")).digest()

    def scan(
        self, batch_size: int, leaves: list[bytes], *, check: bool = True, offset: int = 0
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, batch)`` of the batches of :meth:`spans`, each image read once.

        The SHA-256 of each ``HASH_LEAF`` leaf (those of :meth:`leaf_digests`) is appended to
        ``leaves`` as it is read, so scoring and hashing a set on disk cost one read of it,
        not two (a ``.zarr`` shard's decoding is ~20% of a small CNN's chunk). Memory: one
        batch and at most two leaves. ``check`` and ``offset`` as in :meth:`leaf_digests`.
        """
        kept_raw: np.ndarray | None = None
        read_to = 0  # images [0, read_to) read and hashed; kept_raw holds [start, read_to)
        for start, stop in self.spans(batch_size):
            if stop > read_to:
                upto = min(-(-stop // HASH_LEAF) * HASH_LEAF, self.n)
                raw = read_slice(self.source, read_to, upto)
                for first in range(0, len(raw), HASH_LEAF):
                    leaf = raw[first : first + HASH_LEAF]
                    leaves.append(self.leaf_digest(leaf, offset + read_to + first, check=check))
                kept_raw = raw if kept_raw is None else np.concatenate([kept_raw, raw])
                read_to = upto
            assert kept_raw is not None
            here = kept_raw[: stop - start]
            yield start, stop, np.moveaxis(here, 1, -1) if self.channels_first else here
            kept_raw = kept_raw[stop - start :]

    def combine_leaves(self, leaves: list[bytes]) -> str:
        """The set's hash from its leaf digests (all of them, in order)."""
        digest = hashlib.sha256()
        digest.update(f"{self.dtype.str}{self.n}{self.image_shape}".encode())
        for d in leaves:
            digest.update(d)
        return digest.hexdigest()
