"""Image sets with their truth tables: :class:`Dataset`, :func:`concat` and :func:`load`.

A :class:`Dataset` holds ``images`` (float32, shape ``(n, H, W, C)``, channels-last, counts at the
survey zero point), ``truth`` (a pandas DataFrame, one row per image, the full description of
each image) and ``meta`` (a JSON-serialisable provenance dict). Sets are saved as HDF5 files
(format: :mod:`simlens.io.h5format`; written by :class:`simlens.io.writer.DatasetWriter`, read
by :mod:`simlens.io.reader`) or sharded Zarr stores (:mod:`simlens.io.store`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.h5format import Compression, check_truth, resolve_bands
from simlens.io.provenance import jsonable
from simlens.io.reader import (
    LazyImages,
    names_damaged_file,
    read_header,
    read_lazy,
    read_whole,
)
from simlens.io.writer import DatasetWriter

__all__ = ["Dataset", "concat", "load"]

SAVE_BLOCK = 256  # images copied per block by Dataset.save (bounds memory for lazy sources)


# --------------------------------------------------------------------------- Dataset
@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Images with their truth table and provenance.

    Parameters
    ----------
    images : array_like or LazyImages
        Shape ``(n, H, W, C)``, channels-last in the order of ``bands``, counts at the survey
        zero point; converted to float32 (a copy only if needed). Must be finite.
    truth : pandas.DataFrame
        One row per image, in image order; its index is reset to ``0..n-1``. Columns must be
        bool, integer, float or string, with unique string names without ``/``.
    meta : dict, optional
        Provenance (survey, cosmology, seeds, versions...), converted to plain JSON types.
    bands : sequence of str, optional
        Band of each channel. Default: ``meta["bands"]`` if present, else ``("g", "r", "i",
        "z")`` for 4-channel images.

    Notes
    -----
    Frozen: attributes cannot be reassigned (the arrays themselves are not copied and so not
    protected). ``ds[k]``, ``ds[a:b]``, ``ds[index_array]`` and ``ds[mask]`` all return a
    Dataset (``ds[k]`` has length 1).
    """

    images: Any
    truth: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    bands: tuple[str, ...] = None  # type: ignore[assignment]  # resolved in __post_init__

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, LazyImages):
            images = np.asarray(images)
            if images.dtype.kind not in "biuf":
                raise SimlensValueError(f"images: expected a real array, got dtype {images.dtype}")
            images = images.astype(np.float32, copy=False)
            if not np.isfinite(images).all():
                raise SimlensValueError("images: must be finite, found NaN or infinity")
        if images.ndim != 4:
            raise SimlensValueError(
                f"images: expected shape (n, H, W, C), got {tuple(images.shape)}"
            )
        check_truth(self.truth)
        if len(self.truth) != images.shape[0]:
            raise SimlensValueError(
                f"truth: expected one row per image ({images.shape[0]}), got {len(self.truth)}"
            )
        truth = self.truth
        if not truth.index.equals(pd.RangeIndex(len(truth))):
            truth = truth.reset_index(drop=True)
        meta = jsonable(dict(self.meta or {}), name="meta")
        bands = resolve_bands(self.bands, meta, images.shape[3])
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "truth", truth)
        object.__setattr__(self, "meta", meta)
        object.__setattr__(self, "bands", bands)

    # -- shape and labels
    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def npix(self) -> int:
        """Image side in pixels (``H``; sets are square)."""
        return int(self.images.shape[1])

    @property
    def labels(self) -> np.ndarray:
        """``truth["label"]`` as an int64 array (1 lens, 0 not)."""
        if "label" not in self.truth.columns:
            raise SimlensKeyError("truth: no 'label' column (needed for labels)")
        return self.truth["label"].to_numpy(dtype=np.int64)

    @property
    def lazy(self) -> bool:
        """True if the images are read from disk on access (``load(path, lazy=True)``)."""
        return isinstance(self.images, LazyImages)

    # -- selection and combination
    def __getitem__(self, key: Any) -> Dataset:
        n = len(self)
        if isinstance(key, int | np.integer):
            if not -n <= key < n:
                raise IndexError(
                    f"index: {key} out of range for a set of {n} (valid {-n}..{n - 1})"
                )
            key = slice(int(key) % n, int(key) % n + 1)
        if isinstance(key, slice):
            rows = np.arange(n)[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool and key.shape != (n,):
                raise IndexError(f"index: boolean mask must have shape ({n},), got {key.shape}")
            if key.dtype != bool and key.dtype.kind not in "iu":
                raise IndexError(f"index: expected int, slice, int array or mask, got {key.dtype}")
            rows = np.arange(n)[key]
        # A numpy slice stays a view (as numpy's own slicing); anything else reads `rows`.
        simple = isinstance(key, slice) and not self.lazy
        images = self.images[key] if simple else self.images[rows]
        return Dataset(
            images=np.asarray(images),
            truth=self.truth.iloc[rows].reset_index(drop=True),
            meta=self.meta,
            bands=self.bands,
        )

    @classmethod
    def concat(cls, datasets: Iterable[Dataset]) -> Dataset:
        """Concatenate sets with the same bands and image size, in order.

        ``meta`` is kept if all sets share it, otherwise it becomes ``{"parts": [meta, ...]}``.
        Truth columns missing from some sets are filled with missing values (pandas rules).
        """
        parts = list(datasets)
        if not parts:
            raise SimlensValueError("datasets: need at least one Dataset to concatenate")
        first = parts[0]
        for k, ds in enumerate(parts):
            if not isinstance(ds, Dataset):
                raise SimlensValueError(
                    f"datasets[{k}]: expected a Dataset, got {type(ds).__name__}"
                )
            if ds.bands != first.bands or ds.images.shape[1:3] != first.images.shape[1:3]:
                raise SimlensValueError(
                    f"datasets[{k}]: bands {ds.bands} and size {ds.images.shape[1:3]} differ from "
                    f"datasets[0] ({first.bands}, {first.images.shape[1:3]})"
                )
        metas = [ds.meta for ds in parts]
        meta = first.meta if all(m == metas[0] for m in metas) else {"parts": metas}
        return cls(
            images=np.concatenate([np.asarray(ds.images) for ds in parts], axis=0),
            truth=pd.concat([ds.truth for ds in parts], ignore_index=True),
            meta=meta,
            bands=first.bands,
        )

    def equals(self, other: object) -> bool:
        """True if images are equal bit for bit, truth tables equal (values, order, dtypes),
        and bands and meta equal."""
        if not isinstance(other, Dataset):
            return False
        a, b = np.asarray(self.images), np.asarray(other.images)
        return (
            a.shape == b.shape
            and a.dtype == b.dtype
            and np.array_equal(a.view(np.uint32), b.view(np.uint32))
            and self.truth.equals(other.truth)
            and list(self.truth.dtypes) == list(other.truth.dtypes)
            and list(self.truth.columns) == list(other.truth.columns)
            and self.bands == other.bands
            and self.meta == other.meta
        )

    # -- files
    def save(
        self,
        path: str | os.PathLike[str],
        *,
        compression: Compression = None,
        overwrite: bool | None = None,
    ) -> Path:
        """Write the set to an HDF5 file (format in the module docstring), atomically.

        Parameters
        ----------
        path : str or path-like
            Target file; replaced if it exists (only once the new file is complete) and
            ``overwrite`` allows it.
        compression : {None, "gzip", "lzf"}
            Lossless compression of the images (with the shuffle filter). ``None`` is fastest
            to read and write; ``"gzip"`` is the most portable compressed choice.
        overwrite : bool, optional
            Replace an existing ``path``; None follows :func:`probe.safe_io.overwrite_default`
            (True in Python, False in the command lines unless ``--overwrite``).

        Returns
        -------
        pathlib.Path
            The path written.

        A path ending in ``.zarr`` writes a sharded Zarr store instead
        (:func:`simlens.io.store.save_store`, 256 images per shard; ``compression`` does not
        apply: a store is always compressed losslessly).
        """
        from simlens.io.store import save_store
        from simlens.io.store_layout import is_store_path

        if is_store_path(path):
            if compression is not None:
                raise SimlensValueError("compression: applies to .h5 files, not a .zarr store")
            return save_store(self, path, overwrite=overwrite)
        with DatasetWriter(
            path,
            self.npix,
            self.bands,
            self.meta,
            compression=compression,
            overwrite=overwrite,
            expected_n=len(self),
        ) as writer:
            for start in range(0, len(self), SAVE_BLOCK):
                stop = min(start + SAVE_BLOCK, len(self))
                writer.append(np.asarray(self.images[start:stop]), self.truth.iloc[start:stop])
            if len(self) == 0:
                writer.append(np.asarray(self.images), self.truth)
        return Path(path)

    def close(self) -> None:
        """Close the file behind lazily loaded images (no-op for in-memory sets)."""
        if isinstance(self.images, LazyImages):
            self.images.close()

    def __repr__(self) -> str:
        counts = ""
        if "label" in self.truth.columns:
            n_lens = int((self.truth["label"] == 1).sum())
            counts = f", lenses={n_lens}, nonlenses={len(self) - n_lens}"
        return (
            f"Dataset(n={len(self)}, npix={self.npix}, bands={self.bands}{counts}"
            f"{', lazy=True' if self.lazy else ''})"
        )


def concat(datasets: Iterable[Dataset]) -> Dataset:
    """Concatenate sets in order; see :meth:`Dataset.concat`."""
    return Dataset.concat(datasets)


@names_damaged_file
def load(path: str | os.PathLike[str], *, lazy: bool | None = None) -> Dataset:
    """Read a set written by :meth:`Dataset.save`, :class:`DatasetWriter` or
    :func:`simlens.generate` (an ``.h5`` file or a sharded ``.zarr`` store).

    Parameters
    ----------
    path : str or path-like
        The ``.h5`` file, or the ``.zarr`` store (:mod:`simlens.io.store`).
    lazy : bool, optional
        If True, ``images`` is a :class:`LazyImages` that reads images from the file on
        access (the truth table is read at once): use it for sets larger than memory. Call
        ``ds.close()`` when done, or let garbage collection close the file. Default: lazy
        for a ``.zarr`` store (images a :class:`simlens.io.store_reader.ZarrImages`,
        zarr-backed, with ``.to_dask()``), in memory for an ``.h5`` file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SimlensValueError
        If the file is not a simlens set or has a newer format version, or a store has a
        missing or truncated shard (named).
    """
    from simlens.io.store_layout import is_store_path
    from simlens.io.store_reader import open_store

    if is_store_path(path):
        zimages, truth, meta, bands = open_store(path)
        return Dataset(
            images=zimages if lazy is None or lazy else np.asarray(zimages),
            truth=truth,
            meta=meta,
            bands=bands,
        )
    images, truth, meta, bands = read_lazy(path) if lazy else read_whole(path)
    return Dataset(images=images, truth=truth, meta=meta, bands=bands)


@names_damaged_file
def read_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header of a saved set, without reading images or truth.

    Returns
    -------
    dict
        ``format``, ``format_version``, ``n``, ``npix``, ``bands`` (tuple), ``meta`` (the set's
        provenance), ``writer`` (provenance of the writing code), ``created_utc``,
        ``compression``, ``columns`` (truth column names). A ``.zarr`` store
        (:mod:`simlens.io.store`) gives the same keys plus ``shard_size`` and ``n_shards``.
    """
    from simlens.io.store_layout import is_store_path
    from simlens.io.store_reader import read_store_info

    if is_store_path(path):
        return read_store_info(path)
    return read_header(path)
