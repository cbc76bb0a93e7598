"""Reading sharded image sets (Zarr stores, layout in :mod:`simlens.io.store_layout`):
:class:`ZarrImages` (zarr-backed, lazy), the header, the truth parts and :func:`open_store`,
which refuses a store with a missing or truncated shard, naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.errors import SimlensValueError
from simlens.io.reader import LazyImages
from simlens.io.store import missing_message, missing_shards, read_manifest
from simlens.io.store_layout import STORE_FORMAT, truth_name

__all__ = [
    "ZarrImages",
    "iter_truth",
    "open_store",
    "read_store_info",
    "read_truth_part",
    "store_bytes",
]


# --------------------------------------------------------------------------- reading
class ZarrImages(LazyImages):
    """Read-only, array-like view of a store's ``images`` (zarr-backed).

    Indexing reads only the images asked for (one inner chunk each) and returns a numpy
    array. ``.zarr`` is the ``zarr.Array``; :meth:`to_dask` gives a dask array, one block per
    shard, for out-of-core computations.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import zarr

        self.path = Path(path)
        self.zarr = zarr.open_array(store=str(self.path), path="images", mode="r", zarr_format=3)
        self._data = self.zarr

    def _get(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer | slice):
            return np.asarray(self.zarr[int(key) if isinstance(key, np.integer) else key])
        index = np.arange(len(self))[key]
        if index.size == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        return np.asarray(self.zarr.get_orthogonal_selection((index,)))

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._get(key)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = np.asarray(self.zarr[...])
        return data if dtype is None else data.astype(dtype, copy=False)

    def to_dask(self) -> Any:
        """The images as a ``dask.array`` with one block per shard."""
        import dask.array as da

        return da.from_zarr(self.zarr, chunks=(self.zarr.shards or self.zarr.chunks))

    def close(self) -> None:
        """Nothing to close (zarr opens files per read); kept for the Dataset interface."""

    def __repr__(self) -> str:
        return f"ZarrImages({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def read_store_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header of a store, as :func:`simlens.io.dataset.read_info` gives for an HDF5 set."""
    import zarr

    manifest = read_manifest(path)
    attrs: dict[str, Any] = dict(
        zarr.open_group(store=os.fspath(path), mode="r", zarr_format=3).attrs
    )
    return {
        "format": STORE_FORMAT,
        "format_version": int(attrs["format_version"]),
        "n": int(attrs["n"]),
        "npix": int(attrs["npix"]),
        "bands": tuple(attrs["bands"]),
        "meta": json.loads(str(attrs["provenance"])),
        "writer": {
            "package": manifest["provenance"].get("package"),
            "version": manifest["provenance"].get("version"),
        },
        "created_utc": manifest["created_utc"],
        "compression": "blosc-zstd",
        "columns": json.loads(str(attrs["columns"])),
        "shard_size": int(attrs["shard_size"]),
        "n_shards": int(attrs["n_shards"]),
    }


def read_truth_part(path: str | os.PathLike[str], k: int) -> pd.DataFrame:
    """Truth rows of shard ``k``, with the dtypes they were written with.

    pandas >= 3 reads a Parquet string column as ``str``; columns written as ``object`` (as
    the samplers make them, and as an HDF5 set returns them) are given back as ``object``.
    """
    import pyarrow.parquet as pq

    file = Path(path) / truth_name(k)
    table = pq.read_table(file)
    frame = table.to_pandas()
    pandas_meta = table.schema.pandas_metadata or {}
    for column in pandas_meta.get("columns", []):
        name = column.get("name")
        if column.get("numpy_type") == "object" and name in frame.columns:
            values = frame[name].astype(object)
            frame[name] = values.where(values.notna(), None)
    return frame.reset_index(drop=True)


def iter_truth(path: str | os.PathLike[str]) -> Iterator[pd.DataFrame]:
    """The truth parts, shard by shard, in object order (:func:`read_truth_part`)."""
    root = Path(path)
    for k in range(int(read_manifest(root)["n_shards"])):
        yield read_truth_part(root, k)


def open_store(path: str | os.PathLike[str]) -> tuple[ZarrImages, pd.DataFrame, dict, tuple]:
    """``(images, truth, meta, bands)`` of a complete store; refuses an incomplete one.

    Checks that every shard has its done record and files of the recorded sizes (a cheap
    truncation check); :func:`missing_shards` with ``checksum=True`` checks every sha256.
    """
    root = Path(path)
    missing = missing_shards(root)
    if missing:
        raise SimlensValueError(missing_message(root, missing))
    info = read_store_info(root)
    truth = pd.concat(list(iter_truth(root)), ignore_index=True)
    if list(truth.columns) != info["columns"] or len(truth) != info["n"]:
        raise SimlensValueError(
            f"path: {str(root)!r}: truth parts do not match the header ({len(truth)} rows, "
            f"expected {info['n']})"
        )
    return ZarrImages(root), truth, info["meta"], info["bands"]


def store_bytes(path: str | os.PathLike[str]) -> dict[str, int]:
    """Bytes on disk: ``images`` (all shard files), ``truth`` (Parquet parts), ``total``."""
    root = Path(path)

    def size(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    images, truth = size(root / "images"), size(root / "truth")
    return {"images": images, "truth": truth, "total": size(root)}
