"""Writing HDF5 sets chunk by chunk: :class:`DatasetWriter` (the format is described in
:mod:`simlens.io.h5format`)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simlens.errors import SimlensValueError
from simlens.io.atomic import atomic_path
from simlens.io.h5format import (
    COMPRESSIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    TRUTH_CHUNK,
    TRUTH_TABLE,
    Compression,
    check_truth,
    column_kind,
    resolve_bands,
    truth_records,
    truth_signature,
)
from simlens.io.provenance import jsonable, provenance, utc_now
from simlens.io.reader import read_truth, strings_digest

if TYPE_CHECKING:  # h5py is imported lazily: `import simlens` stays fast
    import h5py

__all__ = ["DatasetWriter"]


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
        if compression not in COMPRESSIONS:
            raise SimlensValueError(
                f"compression: expected one of {COMPRESSIONS}, got {compression!r}"
            )
        self.path = Path(path)
        self.npix = int(npix)
        self.meta = jsonable(dict(meta or {}), name="meta")
        self.bands = resolve_bands(tuple(bands), {}, len(tuple(bands)))
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
        check_truth(truth)
        if len(truth) != len(images):
            raise SimlensValueError(
                f"truth: expected one row per image ({len(images)}), got {len(truth)}"
            )
        signature = truth_signature(truth)
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
        chunk = (int(min(max(rows, 1), TRUTH_CHUNK)),)
        for name in truth.columns:
            series = truth[name]
            kind = column_kind(name, series.dtype, series)
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
            write_truth_table(self._file, self.compression)
            for name, kind in self._kinds.items():  # HDF5 cannot checksum variable-length data
                if kind == "string":
                    column = self._file["truth"][name]
                    column.attrs["sha256"] = strings_digest(column.asstr()[()])
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


def write_truth_table(file: h5py.File, compression: Compression) -> None:
    truth = read_truth(file)
    if not len(truth.columns):
        return  # nothing was appended: no columns to tabulate
    records = truth_records(truth)
    dset = file.create_dataset(
        TRUTH_TABLE,
        data=records,
        chunks=(min(max(len(records), 1), TRUTH_CHUNK),) if len(records) else None,
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
