"""Reading image sets from HDF5 without the simulator package.

A set is an HDF5 file with a dataset ``images`` ``(n, H, W, C)`` and a truth table ``truth``,
stored either as a compound (record) dataset or as a group with one 1-D dataset per column.
This is the layout ``simlens generate`` and ``Dataset.save`` write (``/truth`` with a JSON
``columns`` attribute, missing strings flagged in ``/truth_na``), read without importing simlens.
Labels come from the truth's ``label`` column, else from a top-level ``labels`` dataset.
Images stay on disk and are read batch by batch (``h5py.Dataset`` slicing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from probe.adapters.simulators import RESUME_COMMAND, ZARR_FORMAT
from probe.errors import ProbeKeyError, ProbeValueError


@dataclass
class DataSet:
    """Images, truth table and labels of one set; use as a context manager to close the file."""

    images: Any
    truth: pd.DataFrame
    labels: np.ndarray
    _handle: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Close the underlying file, if any."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DataSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "S":
        return np.char.decode(col, "utf-8")
    if col.dtype.kind == "O" and col.size and isinstance(col[0], bytes):
        return np.array([c.decode("utf-8") for c in col], dtype=object)
    return col


def read_truth(node: Any) -> pd.DataFrame:
    """A truth table from an h5py compound dataset or a group of column datasets."""
    import h5py

    if isinstance(node, h5py.Dataset):
        records = node[()]
        if records.dtype.names is None:
            raise ProbeValueError("truth dataset must be a compound (record) table")
        return pd.DataFrame({k: _decode(records[k]) for k in records.dtype.names})
    columns = {}
    for key in node:
        item = node[key]
        if isinstance(item, h5py.Dataset) and item.ndim == 1:
            columns[key] = _decode(item[()])
    if not columns:
        raise ProbeValueError("truth group holds no 1-D column datasets")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ProbeValueError(f"truth columns have different lengths {sorted(lengths)}")
    names = _column_order(node.attrs.get("columns"), list(columns))
    return pd.DataFrame({c: columns[c] for c in names if c in columns})


def _column_order(order: Any, found: list[str]) -> list[str]:
    """Column order from a ``columns`` attribute: a JSON list (what simlens writes), or an array
    of names; the datasets' own order when absent."""
    import json

    if order is None:
        return found
    if isinstance(order, bytes):
        order = order.decode("utf-8")
    if isinstance(order, str):
        # A string is a JSON list, never a sequence of one-character column names.
        try:
            order = json.loads(order)
        except json.JSONDecodeError:
            raise ProbeValueError(
                f"truth attribute 'columns' is neither a JSON list nor an array: {order[:60]!r}"
            ) from None
        if not isinstance(order, list):
            raise ProbeValueError(f"truth attribute 'columns' must be a list; got {order!r}")
    names = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in order]
    # Columns the attribute does not name are kept, after those it orders.
    return names + [c for c in found if c not in names]


def load_hdf5(path: str | os.PathLike[str]) -> DataSet:
    """Open an HDF5 image set (images are read lazily; close the returned set when done).

    Raises
    ------
    ProbeKeyError
        If ``images`` is missing, or labels are in neither ``truth`` nor ``labels``.
    """
    import h5py

    handle = h5py.File(path, "r")
    try:
        if "images" not in handle:
            raise ProbeKeyError(f"{os.fspath(path)!r} has no 'images' dataset")
        images = handle["images"]
        truth = read_truth(handle["truth"]) if "truth" in handle else pd.DataFrame()
        if "truth_na" in handle:  # simlens marks missing strings in /truth_na/<column>
            for name in handle["truth_na"]:
                if name in truth.columns:
                    missing = np.asarray(handle["truth_na"][name][()], dtype=bool)
                    truth[name] = truth[name].astype(object).where(~missing, None)
        if "label" in truth.columns:
            labels = truth["label"].to_numpy()
        elif "labels" in handle:
            labels = handle["labels"][()]
        else:
            raise ProbeKeyError(
                f"{os.fspath(path)!r} has no labels: no 'label' truth column, no 'labels' dataset"
            )
        if len(truth) and len(truth) != images.shape[0]:
            raise ProbeValueError(
                f"truth has {len(truth)} rows but images has {images.shape[0]} images"
            )
    except BaseException:
        handle.close()
        raise
    return DataSet(images=images, truth=truth, labels=np.asarray(labels), _handle=handle)


def load_zarr(path: str | os.PathLike[str], *, verify: bool = False) -> DataSet:
    """Open a sharded ``.zarr`` set lazily (the store ``simlens generate --out X.zarr`` writes).

    Images stay a zarr array (read slice by slice: a batch or a chunk task at a time; Dask
    workers open the store themselves); the truth table is the concatenation of the per-shard
    Parquet parts ``truth/part-NNNNN.parquet``.

    Every shard must have its completion record ``done/shard-KKKKK.json`` (written last by the
    writer), and its files the byte counts recorded there: a shard a killed writer left
    unfinished, or a file truncated since, is refused and named. ``verify=True`` also checks
    each file's recorded sha256 (reads the whole store once).

    Raises
    ------
    ProbeValueError
        The path is a file or not a simlens store, or a shard is missing, unfinished,
        truncated or (``verify``) altered (named).
    ProbeKeyError
        No ``images`` array, or no labels.
    """
    import json

    import zarr

    where = os.fspath(path)
    if not os.path.exists(where):
        raise ProbeValueError(f"{where!r}: no such .zarr store")
    if not os.path.isdir(where):
        raise ProbeValueError(f"{where!r} is a file; a .zarr set is a directory (a Zarr v3 store)")
    try:
        group = zarr.open_group(where, mode="r")
    except Exception as err:  # zarr raises several kinds for a non-store directory
        raise ProbeValueError(f"{where!r} is not a Zarr v3 group ({err})") from None
    attrs: dict[str, Any] = dict(group.attrs)
    if attrs.get("format") != ZARR_FORMAT:
        raise ProbeValueError(
            f"{where!r}: root attribute format is {attrs.get('format')!r}, not {ZARR_FORMAT!r}"
        )
    if "images" not in group:
        raise ProbeKeyError(f"{where!r} has no 'images' array")
    images = group["images"]
    if not isinstance(images, zarr.Array):
        raise ProbeKeyError(f"{where!r}: 'images' is not an array")
    n, shard_size, n_shards = int(attrs["n"]), int(attrs["shard_size"]), int(attrs["n_shards"])
    if images.shape[0] != n or n_shards != -(-n // shard_size):
        raise ProbeValueError(
            f"{where!r}: images has {images.shape[0]} objects and {n_shards} shards of "
            f"{shard_size}; the manifest says n={n}"
        )
    parts = []
    for i in range(n_shards):
        expected = min(shard_size, n - i * shard_size)
        shard_key = images.metadata.encode_chunk_key((i,) + (0,) * (images.ndim - 1))
        image_file = os.path.join(where, "images", *shard_key.split("/"))
        if not os.path.isfile(image_file) or os.path.getsize(image_file) == 0:
            raise ProbeValueError(f"{where!r}: shard {i} is missing its images ({image_file})")
        part = os.path.join(where, "truth", f"part-{i:05d}.parquet")
        if not os.path.isfile(part):
            raise ProbeValueError(f"{where!r}: shard {i} is missing its truth ({part})")
        _check_done(where, i, verify)
        try:
            frame = pd.read_parquet(part)
        except Exception as err:  # pyarrow's errors for a truncated file vary
            raise ProbeValueError(
                f"{where!r}: shard {i} truth is unreadable ({part}: {err})"
            ) from None
        if len(frame) != expected:
            raise ProbeValueError(
                f"{where!r}: shard {i} truth has {len(frame)} rows, expected {expected} ({part})"
            )
        parts.append(frame)
    truth = pd.concat(parts, ignore_index=True)
    order = attrs.get("columns")
    if order is not None:
        names = json.loads(order) if isinstance(order, str) else list(order)
        truth = truth[[c for c in names if c in truth.columns]
                      + [c for c in truth.columns if c not in names]]  # fmt: skip
    if "label" not in truth.columns:
        raise ProbeKeyError(f"{where!r} has no labels: no 'label' truth column")
    return DataSet(images=images, truth=truth, labels=truth["label"].to_numpy())


def _check_done(where: str, k: int, checksum: bool) -> None:
    """Shard ``k``'s completion record exists and its files have the recorded byte counts
    (and, with ``checksum``, sha256). Read here, without simlens."""
    import hashlib
    import json

    record_file = os.path.join(where, "done", f"shard-{k:05d}.json")
    try:
        with open(record_file, encoding="utf-8") as fh:
            record = json.load(fh)
        files = dict(record["files"])
    except FileNotFoundError:
        raise ProbeValueError(
            f"{where!r}: shard {k} has no completion record ({record_file}): its writer did "
            f"not finish it; finish the store with `{RESUME_COMMAND}`"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise ProbeValueError(
            f"{where!r}: shard {k} completion record is damaged ({record_file}: {err})"
        ) from None
    for name, want in files.items():
        file = os.path.join(where, *str(name).split("/"))
        try:
            size = os.path.getsize(file)
        except OSError:
            raise ProbeValueError(f"{where!r}: shard {k} is missing its file {name}") from None
        if size != int(want["bytes"]):
            raise ProbeValueError(
                f"{where!r}: shard {k} file {name} is truncated or changed ({size} bytes; its "
                f"completion record says {want['bytes']})"
            )
        if checksum:
            h = hashlib.sha256()
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != want["sha256"]:
                raise ProbeValueError(
                    f"{where!r}: shard {k} file {name} does not match the sha256 in its "
                    "completion record"
                )


def load_set(path: str | os.PathLike[str], *, verify: bool = False) -> DataSet:
    """Open a saved set: a ``.zarr`` store (:func:`load_zarr`; ``verify``: check every shard's
    sha256), else HDF5 (:func:`load_hdf5`)."""
    if os.fspath(path).rstrip("/\\").endswith(".zarr"):
        return load_zarr(path, verify=verify)
    return load_hdf5(path)


def open_image_set(path: str | os.PathLike[str]) -> Any:
    """Open a saved image set as the command line does: a ``.zarr`` store with :func:`load_zarr`;
    otherwise the simulator's own loader when it provides one
    (:func:`probe.adapters.simulators.set_loader`), else :func:`load_hdf5`."""
    if os.fspath(path).rstrip("/\\").endswith(".zarr"):
        return load_zarr(path)
    from probe.adapters.simulators import set_loader

    loader = set_loader()
    return load_hdf5(path) if loader is None else loader(os.fspath(path))
