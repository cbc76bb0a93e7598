"""Image sets with their truth tables, and their HDF5 file format.

A :class:`Dataset` holds ``images`` (float32, shape ``(n, H, W, C)``, channels-last, counts at the
survey zero point), ``truth`` (a pandas DataFrame, one row per image, the full description of
each image) and ``meta`` (a JSON-serialisable provenance dict).

File format (HDF5, ``format_version`` 1)
----------------------------------------
Root attributes: ``format`` = ``"simlens-dataset"``, ``format_version`` (int), ``n``, ``npix``,
``bands`` (JSON list), ``meta`` (JSON: the dataset's provenance), ``writer`` (JSON: provenance of
the code that wrote the file), ``created_utc``, ``compression``.

- ``/images``: float32 ``(n, H, W, C)``, one HDF5 chunk per image (random access to any image
  reads one chunk), optionally gzip- or lzf-compressed with the shuffle filter.
- ``/truth/<column>``: one 1-D dataset per truth column, in the table's own dtype (bool, signed
  or unsigned integers, floats); string columns as variable-length UTF-8 with a missing-value
  mask in ``/truth_na/<column>``. Each carries attribute ``pandas_dtype``; ``/truth`` carries
  ``columns`` (JSON list, the column order). No pandas-specific encoding is used, so any HDF5
  reader (h5py, ``h5dump``, Julia, C) can read a set.
- ``/truth_table``: the same truth as one compound (record) table, written when the set is
  closed, so table tools read it without simlens: ``astropy.table.Table.read(path,
  path="truth_table")`` or ``pandas.DataFrame(h5py.File(path)["truth_table"][()])``. Strings are
  fixed-width UTF-8 bytes (a missing string is empty; ``/truth_na`` keeps the mask). Optional:
  sets written before it have only ``/truth``. ``simlens truth SET --format parquet|fits|ecsv``
  exports the table to a file.

Files are written to a temporary name in the target directory and renamed into place only when
complete (:func:`atomic_path`): a failed or interrupted write leaves no file and never damages an
existing one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.provenance import jsonable, provenance, utc_now

if TYPE_CHECKING:  # h5py is imported lazily: `import simlens` stays fast
    import h5py

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Dataset",
    "DatasetWriter",
    "LazyImages",
    "atomic_path",
    "concat",
    "load",
    "read_info",
    "truth_records",
]

#: Value of the root attribute ``format`` in every simlens set.
FORMAT_NAME = "simlens-dataset"
#: Version of the layout described in the module docstring; readers refuse newer versions.
FORMAT_VERSION = 1

#: Bands assumed for 4-channel images when neither ``bands`` nor ``meta["bands"]`` says otherwise.
DEFAULT_BANDS = ("g", "r", "i", "z")

Compression = Literal["gzip", "lzf"] | None
_COMPRESSIONS = (None, "gzip", "lzf")
_SAVE_BLOCK = 256  # images copied per block by Dataset.save (bounds memory for lazy sources)
_TRUTH_CHUNK = 4096  # rows per HDF5 chunk of a truth column


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the same directory (so :func:`os.replace` is atomic on POSIX)
    and is removed if the block raises. An existing ``path`` is replaced only on success, and is
    otherwise left untouched. The final file gets the usual permissions (``0o666 & ~umask``).
    ``<path>.lock`` holds the writer's pid meanwhile, stale temporary files of killed writers
    are removed, and an existing ``path`` is replaced only if ``overwrite`` allows it (None:
    :func:`probe.safe_io.overwrite_default`); see :mod:`probe.safe_io`.

    Raises
    ------
    FileNotFoundError
        If the directory of ``path`` does not exist.
    FileExistsError
        If ``path`` exists and overwriting is not allowed, or another process writes it.
    OSError
        :class:`probe.safe_io.DiskFullError` when the disk fills (nothing is left behind).
    """
    from probe.safe_io import safe_target

    with safe_target(path, overwrite=overwrite) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- truth columns
def _column_kind(name: str, dtype: Any, values: pd.Series) -> str:
    """``"numeric"`` or ``"string"``; raises for dtypes the file format does not store."""
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return "numeric"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        present = values.dropna()
        if all(isinstance(v, str) for v in present):
            return "string"
    raise SimlensValueError(
        f"truth[{name!r}]: dtype {dtype} cannot be saved; use bool, integer, float or str columns"
    )


def _check_truth(truth: pd.DataFrame) -> None:
    if not isinstance(truth, pd.DataFrame):
        raise SimlensValueError(f"truth: expected a pandas DataFrame, got {type(truth).__name__}")
    names = list(truth.columns)
    if len(set(names)) != len(names):
        dup = sorted({str(c) for c in names if names.count(c) > 1})
        raise SimlensValueError(f"truth: column names must be unique, repeated: {dup}")
    for name in names:
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise SimlensValueError(
                f"truth: column name {name!r} must be a non-empty string without '/'"
            )
        _column_kind(name, truth[name].dtype, truth[name])


def _truth_signature(truth: pd.DataFrame) -> list[tuple[str, str]]:
    return [(str(c), str(t)) for c, t in truth.dtypes.items()]


def _series_from_file(values: np.ndarray, dtype_name: str, missing: np.ndarray | None) -> Any:
    if missing is None:  # numeric: the HDF5 dtype is the pandas dtype
        return values
    if dtype_name == "object":
        out = values.astype(object)
        out[missing] = None
        # A Series pins the dtype: pandas >= 3 would otherwise infer "str" for these values.
        return pd.Series(out, dtype=object, copy=False)
    # Columns with missing values are pandas extension dtypes ("string", "Int64", "boolean").
    dtype: Any = pd.api.types.pandas_dtype(dtype_name)
    data: Any = pd.array(values, dtype=dtype)
    if missing.any():
        data[missing] = dtype.na_value
    return data


# --------------------------------------------------------------------------- lazy images
class LazyImages:
    """Read-only, array-like view of the ``images`` of a set on disk (h5py-backed).

    Indexing (``lazy[k]``, ``lazy[a:b]``, an integer array, a boolean mask) reads only the
    images asked for and returns a numpy array; ``np.asarray(lazy)`` reads them all. The file
    stays open until :meth:`close` (or garbage collection).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = _open_checked(self.path)
        self._data = self._file["images"]
        self._finalizer = weakref.finalize(self, self._file.close)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        with _checked(self.path, "images"):
            return self._get(key)

    def _get(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer | slice):
            return np.asarray(self._data[key])
        index = np.arange(len(self))[key]  # normalises masks, negatives and bounds
        if index.size == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        unique, inverse = np.unique(index, return_inverse=True)
        if unique[-1] - unique[0] + 1 == unique.size:  # a contiguous run: one read
            block = np.asarray(self._data[int(unique[0]) : int(unique[-1]) + 1])
        else:
            # One read per image (one chunk each): ~10x faster than h5py's point selection.
            block = np.empty((unique.size, *self.shape[1:]), dtype=self.dtype)
            for j, i in enumerate(unique.tolist()):
                self._data.read_direct(block, np.s_[i : i + 1], np.s_[j : j + 1])
        return block[inverse]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        with _checked(self.path, "images"):
            data = np.asarray(self._data[()])
        return data if dtype is None else data.astype(dtype, copy=False)

    def close(self) -> None:
        """Close the file; further reads fail."""
        self._finalizer()

    def __repr__(self) -> str:
        return f"LazyImages({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


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
        _check_truth(self.truth)
        if len(self.truth) != images.shape[0]:
            raise SimlensValueError(
                f"truth: expected one row per image ({images.shape[0]}), got {len(self.truth)}"
            )
        truth = self.truth
        if not truth.index.equals(pd.RangeIndex(len(truth))):
            truth = truth.reset_index(drop=True)
        meta = jsonable(dict(self.meta or {}), name="meta")
        bands = _resolve_bands(self.bands, meta, images.shape[3])
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
        from simlens.io.store import is_store_path, save_store

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
            for start in range(0, len(self), _SAVE_BLOCK):
                stop = min(start + _SAVE_BLOCK, len(self))
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


def _resolve_bands(
    bands: Sequence[str] | None, meta: dict[str, Any], nchan: int
) -> tuple[str, ...]:
    if bands is None:
        bands = meta.get("bands")
    if bands is None:
        if nchan != len(DEFAULT_BANDS):
            raise SimlensValueError(
                f"bands: required for {nchan}-channel images (default {DEFAULT_BANDS} is for 4)"
            )
        bands = DEFAULT_BANDS
    if isinstance(bands, str) or not all(isinstance(b, str) and b for b in bands):
        raise SimlensValueError(f"bands: expected a sequence of band names, got {bands!r}")
    out = tuple(bands)
    if len(out) != nchan or len(set(out)) != nchan:
        raise SimlensValueError(
            f"bands: expected {nchan} distinct names (one per channel), got {out}"
        )
    return out


def concat(datasets: Iterable[Dataset]) -> Dataset:
    """Concatenate sets in order; see :meth:`Dataset.concat`."""
    return Dataset.concat(datasets)


# --------------------------------------------------------------------------- writer
class DatasetWriter:
    """Write a set chunk by chunk, with bounded memory; the file appears only on success.

    Use as a context manager::

        with DatasetWriter("set.h5", npix=100, bands=sim.bands, meta=sim.provenance()) as w:
            for rows in chunks:
                w.append(sim.render(rows), rows)

    Every dataset carries HDF5's fletcher32 checksum, checked on every read: a damaged file
    raises :class:`simlens.errors.SimlensValueError` naming it.

    Parameters
    ----------
    path : str or path-like
        Final file name; data go to a temporary file in the same directory, renamed onto
        ``path`` by :meth:`close` (also on leaving the ``with`` block without an exception).
        If the block raises, or :meth:`abort` is called, the temporary file is removed and an
        existing ``path`` is untouched.
    npix : int
        Image side in pixels.
    bands : sequence of str
        Band of each channel.
    meta : dict, optional
        Provenance of the set (JSON-serialisable).
    compression : {None, "gzip", "lzf"}
        Lossless image compression.
    overwrite : bool, optional
        Replace an existing ``path``; None follows :func:`probe.safe_io.overwrite_default`.
    expected_n : int, optional
        Number of images to come: sizes the truth columns' HDF5 chunks (default: the first
        ``append``'s length), so small sets stay small.

    Notes
    -----
    Every ``append`` must give truth tables with the same columns and dtypes as the first.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        npix: int,
        bands: Sequence[str],
        meta: dict[str, Any] | None = None,
        *,
        compression: Compression = None,
        overwrite: bool | None = None,
        expected_n: int | None = None,
    ) -> None:
        import h5py

        if os.fspath(path).rstrip("/").endswith(".zarr"):
            raise SimlensValueError(
                f"path: {os.fspath(path)!r}: DatasetWriter writes HDF5 sets; write a .zarr store "
                "with simlens.generate or Dataset.save"
            )
        if isinstance(npix, bool) or not isinstance(npix, int | np.integer) or npix <= 0:
            raise SimlensValueError(f"npix: expected a positive integer, got {npix!r}")
        if compression not in _COMPRESSIONS:
            raise SimlensValueError(
                f"compression: expected one of {_COMPRESSIONS}, got {compression!r}"
            )
        self.path = Path(path)
        self.npix = int(npix)
        self.meta = jsonable(dict(meta or {}), name="meta")
        self.bands = _resolve_bands(tuple(bands), {}, len(tuple(bands)))
        self.compression = compression
        self.n = 0
        self._signature: list[tuple[str, str]] | None = None
        self._kinds: dict[str, str] = {}
        self._expected_n = expected_n
        self._handles: dict[str, h5py.Dataset] = {}

        self._context = atomic_path(self.path, overwrite=overwrite)
        self._tmp = self._context.__enter__()
        try:
            self._file = h5py.File(self._tmp, "w")
            self._init_file()
        except BaseException:
            self._context.__exit__(*_exc_info())
            raise
        self._done = False
        self._finalizer = weakref.finalize(self, _discard, self._file, self._context)

    def _init_file(self) -> None:
        f = self._file
        nchan = len(self.bands)
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["npix"] = self.npix
        f.attrs["bands"] = json.dumps(list(self.bands))
        f.attrs["meta"] = json.dumps(self.meta)
        f.attrs["writer"] = json.dumps(provenance())
        f.attrs["created_utc"] = utc_now()
        f.attrs["compression"] = self.compression or "none"
        f.attrs["n"] = 0
        f.create_dataset(
            "images",
            shape=(0, self.npix, self.npix, nchan),
            maxshape=(None, self.npix, self.npix, nchan),
            chunks=(1, self.npix, self.npix, nchan),
            dtype=np.float32,
            compression=self.compression,
            shuffle=self.compression is not None,
            fletcher32=True,
        )
        f.create_group("truth").attrs["columns"] = "[]"
        f.create_group("truth_na")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort(exc)

    def _abort(self, error: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self._finalizer.detach()
        _discard(self._file, self._context, error)

    def append(self, images: Any, truth: pd.DataFrame) -> None:
        """Add ``len(truth)`` images (shape ``(k, npix, npix, C)``) and their truth rows."""
        if self._done:
            raise SimlensValueError("writer: already closed")
        images = np.asarray(images)
        expected = (self.npix, self.npix, len(self.bands))
        if images.ndim != 4 or images.shape[1:] != expected:
            raise SimlensValueError(
                f"images: expected shape (k, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {images.shape}"
            )
        if images.dtype.kind not in "biuf":
            raise SimlensValueError(f"images: expected a real array, got dtype {images.dtype}")
        images = images.astype(np.float32, copy=False)
        if not np.isfinite(images).all():
            raise SimlensValueError("images: must be finite, found NaN or infinity")
        _check_truth(truth)
        if len(truth) != len(images):
            raise SimlensValueError(
                f"truth: expected one row per image ({len(images)}), got {len(truth)}"
            )
        signature = _truth_signature(truth)
        if self._signature is None:
            self._create_columns(truth)
            self._signature = signature
        elif signature != self._signature:
            diff = [a for a, b in zip(signature, self._signature) if a != b] or signature
            raise SimlensValueError(
                f"truth: columns/dtypes differ from the first chunk (first difference {diff[0]}; "
                f"expected {len(self._signature)} columns, got {len(signature)})"
            )
        k = len(images)
        if k == 0:
            return
        try:
            self._write(images, truth)
            # Flush now, so a full disk raises here: HDF5 would otherwise report it only when
            # a dataset object is freed, printing a traceback per chunk and carrying on.
            self._file.flush()
        except (OSError, RuntimeError) as err:
            # This file is being thrown away: send HDF5's pending writes to /dev/null.
            _to_null(self._file)
            from probe.safe_io import is_disk_full

            if is_disk_full(err):
                raise OSError(errno.ENOSPC, f"{self.path}: disk full while writing") from err
            raise

    def _write(self, images: np.ndarray, truth: pd.DataFrame) -> None:
        k = len(images)
        start, stop = self.n, self.n + k
        data = self._handle("images")
        data.resize(stop, axis=0)
        data[start:stop] = images
        for name in truth.columns:
            column = self._handle(f"truth/{name}")
            column.resize(stop, axis=0)
            if self._kinds[name] == "string":
                series = truth[name]
                missing = series.isna().to_numpy(dtype=bool)
                values = np.array(
                    ["" if m else str(v) for v, m in zip(series.to_numpy(dtype=object), missing)],
                    dtype=object,
                )
                column[start:stop] = values
                na = self._handle(f"truth_na/{name}")
                na.resize(stop, axis=0)
                na[start:stop] = missing
            else:
                column[start:stop] = truth[name].to_numpy()
        self.n = stop
        self._file.attrs["n"] = self.n

    def _handle(self, name: str) -> h5py.Dataset:
        """The open dataset ``name``, kept for the writer's life (freeing one flushes it)."""
        if name not in self._handles:
            self._handles[name] = self._file[name]
        return self._handles[name]

    def _create_columns(self, truth: pd.DataFrame) -> None:
        import h5py

        group = self._file["truth"]
        group.attrs["columns"] = json.dumps(list(truth.columns))
        # One chunk for a small set (4096 rows of 174 columns made a 1-image set 6 MB).
        rows = self._expected_n if self._expected_n else len(truth)
        chunk = (int(min(max(rows, 1), _TRUTH_CHUNK)),)
        for name in truth.columns:
            series = truth[name]
            kind = _column_kind(name, series.dtype, series)
            self._kinds[name] = kind
            if kind == "string":
                dtype: Any = h5py.string_dtype("utf-8")  # variable length: no filters
                self._file["truth_na"].create_dataset(
                    name, shape=(0,), maxshape=(None,), chunks=chunk, dtype=bool, fletcher32=True
                )
            else:
                dtype = series.dtype
            dset = group.create_dataset(
                name,
                shape=(0,),
                maxshape=(None,),
                chunks=chunk,
                dtype=dtype,
                fletcher32=kind == "numeric",
            )
            dset.attrs["pandas_dtype"] = str(series.dtype)

    def close(self) -> Path:
        """Finish the file and rename it onto ``path``; returns ``path``."""
        if self._done:
            return self.path
        self._done = True
        self._finalizer.detach()
        try:
            _write_truth_table(self._file, self.compression)
            for name, kind in self._kinds.items():  # HDF5 cannot checksum variable-length data
                if kind == "string":
                    column = self._file["truth"][name]
                    column.attrs["sha256"] = _strings_digest(column.asstr()[()])
            self._file.close()
        except BaseException as err:
            _discard(self._file, self._context, err)
            raise
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Discard everything written; ``path`` is left as it was."""
        self._abort(None)

    def __repr__(self) -> str:
        state = "closed" if self._done else "open"
        return (
            f"DatasetWriter({str(self.path)!r}, npix={self.npix}, bands={self.bands}, "
            f"n={self.n}, {state})"
        )


#: Name of the compound copy of the truth table (see the module docstring).
TRUTH_TABLE = "truth_table"


def truth_records(truth: pd.DataFrame) -> np.ndarray:
    """The truth table as a numpy record array that any HDF5 or FITS tool reads: numbers and
    booleans in their own dtype, strings as fixed-width UTF-8 bytes (missing: empty)."""
    fields: list[tuple[str, Any]] = []
    columns: dict[str, np.ndarray] = {}
    for name in truth.columns:
        series = truth[name]
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            values = series.to_numpy()
        elif pd.api.types.is_bool_dtype(dtype):
            values = series.fillna(False).to_numpy(dtype=bool)
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            encoded = [b"" if pd.isna(v) else str(v).encode("utf-8") for v in series]
            width = max([1, *(len(b) for b in encoded)])
            values = np.array(encoded, dtype=f"S{width}")
        columns[str(name)] = values
        fields.append((str(name), values.dtype))
    records = np.empty(len(truth), dtype=fields)
    for name, values in columns.items():
        records[name] = values
    return records


def _write_truth_table(file: h5py.File, compression: Compression) -> None:
    truth = _read_truth(file)
    if not len(truth.columns):
        return  # nothing was appended: no columns to tabulate
    records = truth_records(truth)
    dset = file.create_dataset(
        TRUTH_TABLE,
        data=records,
        chunks=(min(max(len(records), 1), _TRUTH_CHUNK),) if len(records) else None,
        maxshape=(None,) if len(records) else None,
        compression=compression if len(records) else None,
        fletcher32=bool(len(records)),
    )
    dset.attrs["description"] = (
        "copy of /truth as one compound table: strings are fixed-width UTF-8 (missing: empty; "
        "the mask is in /truth_na)"
    )


def _exc_info() -> tuple[Any, Any, Any]:
    import sys

    return sys.exc_info()


def _to_null(file: h5py.File) -> None:
    """Point an HDF5 file's descriptor at /dev/null (the file is being discarded)."""
    with contextlib.suppress(Exception):
        if file.id.valid:
            handle = file.id.get_vfd_handle()
            if isinstance(handle, int) and handle >= 0:
                null = os.open(os.devnull, os.O_RDWR)
                try:
                    os.dup2(null, handle)
                finally:
                    os.close(null)


def _discard(file: h5py.File, context: Any, error: BaseException | None = None) -> None:
    """Close and delete the temporary file, release the lock; the target is untouched.

    The file is being thrown away, so its descriptor is pointed at /dev/null first: closing
    then flushes nowhere. On a full disk, HDF5 would otherwise fail to flush on close and
    again at interpreter exit, where it crashed (exit 139) after a thousand lines of errors.
    """
    _to_null(file)
    with contextlib.suppress(Exception):
        file.close()
    exc = error if error is not None else SimlensValueError("writer aborted")
    try:
        context.__exit__(type(exc), exc, exc.__traceback__)
    except BaseException as converted:  # a disk-full error comes back as DiskFullError
        if error is not None and converted is not error:
            raise
        if error is None:
            return


# --------------------------------------------------------------------------- reading
def _open_checked(path: str | os.PathLike[str]) -> h5py.File:
    import h5py

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path: {str(path)!r} is a directory, not a simlens set (.h5)")
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise SimlensValueError(
            f"path: {str(path)!r} is not an HDF5 file, so not a simlens set ({err})"
        ) from None
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT_NAME:
        f.close()
        raise SimlensValueError(
            f"path: {str(path)!r} is an HDF5 file but not a simlens set "
            f"(attribute format={fmt!r}, expected {FORMAT_NAME!r})"
        )
    version = int(f.attrs.get("format_version", -1))
    if not 1 <= version <= FORMAT_VERSION:
        f.close()
        raise SimlensValueError(
            f"path: {str(path)!r} has format_version {version}; this simlens reads versions "
            f"1..{FORMAT_VERSION} (upgrade simlens to read newer files)"
        )
    return f


@contextlib.contextmanager
def _checked(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn HDF5's read errors (a failed fletcher32 checksum, a truncated file) into one clear
    error naming the file: a damaged set is refused, never used."""
    try:
        yield
    except OSError as err:
        raise SimlensValueError(
            f"path: {str(path)!r} is damaged: reading {what} failed its checksum or structure "
            f"check ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
            "regenerate or restore the file"
        ) from None


def _read_truth(f: h5py.File) -> pd.DataFrame:
    with _checked(f.filename, "the truth table"):
        return _read_truth_unchecked(f)


def _strings_digest(values: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for v in values:
        data = v.encode("utf-8")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _read_truth_unchecked(f: h5py.File) -> pd.DataFrame:
    group = f["truth"]
    columns = json.loads(group.attrs["columns"])
    n = int(f.attrs["n"])
    data = {}
    for name in columns:
        dset = group[name]
        dtype_name = dset.attrs["pandas_dtype"]
        if name in f["truth_na"]:
            values = np.asarray(dset.asstr()[()], dtype=object)
            expected = dset.attrs.get("sha256")
            if expected is not None and _strings_digest(values) != expected:
                raise OSError(f"string column {name!r} does not match its sha256")
            missing = np.asarray(f["truth_na"][name][()], dtype=bool)
        else:
            values, missing = np.asarray(dset[()]), None
        data[name] = _series_from_file(values, dtype_name, missing)
    return pd.DataFrame(data, columns=columns, index=pd.RangeIndex(n))


def _names_damaged_file(func: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise a damaged header or truth table (bad JSON, a missing attribute or dataset) as
    a :class:`SimlensValueError` naming the file, instead of a bare JSONDecodeError/KeyError."""

    @functools.wraps(func)
    def wrapper(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(path, *args, **kwargs)
        except (json.JSONDecodeError, KeyError) as err:
            what = err.msg if isinstance(err, json.JSONDecodeError) else f"missing {err}"
            raise SimlensValueError(
                f"path: {os.fspath(path)!r} is a damaged simlens set (header or truth table "
                f"unreadable: {what})"
            ) from err

    return wrapper


@_names_damaged_file
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
    from simlens.io.store import is_store_path, read_store_info

    if is_store_path(path):
        return read_store_info(path)
    with _open_checked(path) as f:
        return {
            "format": FORMAT_NAME,
            "format_version": int(f.attrs["format_version"]),
            "n": int(f.attrs["n"]),
            "npix": int(f.attrs["npix"]),
            "bands": tuple(json.loads(f.attrs["bands"])),
            "meta": json.loads(f.attrs["meta"]),
            "writer": json.loads(f.attrs["writer"]),
            "created_utc": str(f.attrs["created_utc"]),
            "compression": str(f.attrs["compression"]),
            "columns": json.loads(f["truth"].attrs["columns"]),
        }


@_names_damaged_file
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
        for a ``.zarr`` store (images a :class:`simlens.io.store.ZarrImages`, zarr-backed, with
        ``.to_dask()``), in memory for an ``.h5`` file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    SimlensValueError
        If the file is not a simlens set or has a newer format version, or a store has a
        missing or truncated shard (named).
    """
    from simlens.io.store import is_store_path, open_store

    if is_store_path(path):
        zimages, truth, meta, bands = open_store(path)
        return Dataset(
            images=zimages if lazy is None or lazy else np.asarray(zimages),
            truth=truth,
            meta=meta,
            bands=bands,
        )
    if lazy:
        images = LazyImages(path)
        truth = _read_truth(images._file)
        attrs = images._file.attrs
        return Dataset(
            images=images,
            truth=truth,
            meta=json.loads(attrs["meta"]),
            bands=tuple(json.loads(attrs["bands"])),
        )
    with _open_checked(path) as f:
        with _checked(path, "images"):
            pixels = np.asarray(f["images"][()])
        return Dataset(
            images=pixels,
            truth=_read_truth(f),
            meta=json.loads(f.attrs["meta"]),
            bands=tuple(json.loads(f.attrs["bands"])),
        )
