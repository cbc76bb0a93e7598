"""Sharded image sets on disk: a Zarr v3 store per set (``PATH.zarr``), written shard by shard.

Layout (``format`` = ``"simlens-zarr"``, ``format_version`` 1)
------------------------------------------------------------
- ``PATH.zarr/`` is a Zarr v3 group. Root attributes: ``format``, ``format_version``, ``n``
  (objects), ``npix``, ``bands`` (list of str), ``shard_size`` (objects per shard), ``n_shards``,
  ``columns`` (JSON list: the truth columns in order), ``provenance`` (JSON: the same record as
  an HDF5 set's ``meta``: package version, survey, seed, kind, controls, ...).
- ``images``: float32 ``(n, npix, npix, nbands)`` with Zarr's sharding codec: shard ``k`` holds
  objects ``k*shard_size .. (k+1)*shard_size - 1`` in one file (``images/c/k/0/0/0``), inner
  chunks of one image each (random access reads one image), compressed losslessly with
  Blosc-zstd + byte shuffle.
- ``truth/part-KKKKK.parquet``: the truth rows of shard ``k``, in object order, with the
  columns and dtypes of an HDF5 set's truth table.
- ``done/shard-KKKKK.json``: written last for shard ``k`` (temp file + rename): its rows and the
  byte count and sha256 of its two files. A shard without one is incomplete.
- ``manifest.json``: the format, layout, provenance and ``fingerprint`` (everything that
  determines the pixels: configuration, seed, versions) used by resume; ``complete`` is true
  once every shard is done and verified.

Every file is written to a temporary name and renamed into place (Zarr's own local store does
the same), so a killed writer leaves whole files or none. Each worker writes its own shards;
nothing passes whole image arrays through a scheduler. Readers (:func:`open_store`) refuse a
store with a missing or truncated shard, naming it; :func:`verify_shard` also checks sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.errors import SimlensValueError
from simlens.io.dataset import LazyImages, _check_truth
from simlens.io.provenance import utc_now

__all__ = [
    "STORE_FORMAT",
    "STORE_VERSION",
    "ZarrImages",
    "create_store",
    "fingerprint_difference",
    "is_store_path",
    "iter_truth",
    "missing_shards",
    "open_store",
    "read_manifest",
    "read_store_info",
    "read_truth_part",
    "save_store",
    "shard_bounds",
    "store_bytes",
    "verify_shard",
    "write_shard",
]

STORE_FORMAT = "simlens-zarr"
STORE_VERSION = 1
MANIFEST = "manifest.json"


def is_store_path(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` names a sharded Zarr set (its name ends in ``.zarr``)."""
    return os.fspath(path).rstrip("/").endswith(".zarr")


def shard_bounds(n: int, shard_size: int, k: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of shard ``k``: shard ``k`` holds objects ``k*shard_size`` on."""
    start = k * shard_size
    return start, min(start + shard_size, n)


def _truth_name(k: int) -> str:
    return f"truth/part-{k:05d}.parquet"


def _done_name(k: int) -> str:
    return f"done/shard-{k:05d}.json"


def _image_name(k: int) -> str:
    return f"images/c/{k}/0/0/0"  # Zarr v3 default chunk key: one file per shard


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- writing
def create_store(
    path: str | os.PathLike[str],
    *,
    n: int,
    npix: int,
    bands: tuple[str, ...] | list[str],
    shard_size: int,
    columns: list[str],
    provenance: dict[str, Any],
    fingerprint: dict[str, Any],
    clevel: int = 3,
) -> Path:
    """Create an empty store (root attributes, the ``images`` array, the manifest).

    ``path`` must not exist (the caller decides about overwriting). ``shard_size`` objects go
    in each shard; ``fingerprint`` is what resume compares (:func:`fingerprint_difference`).
    """
    import zarr
    from zarr.codecs import BloscCodec

    root = Path(path)
    if n < 1 or shard_size < 1:
        raise SimlensValueError(f"n and shard_size: expected >= 1, got {n} and {shard_size}")
    n_shards = -(-n // shard_size)
    root.mkdir()
    group = zarr.open_group(store=str(root), mode="w-", zarr_format=3)
    for sub in ("truth", "done"):
        (root / sub).mkdir()
    group.attrs.update(
        {
            "format": STORE_FORMAT,
            "format_version": STORE_VERSION,
            "n": int(n),
            "npix": int(npix),
            "bands": list(bands),
            "shard_size": int(shard_size),
            "n_shards": n_shards,
            "columns": json.dumps(list(columns)),
            "provenance": json.dumps(provenance),
        }
    )
    nb = len(bands)
    group.create_array(
        "images",
        shape=(n, npix, npix, nb),
        shards=(shard_size, npix, npix, nb),
        chunks=(1, npix, npix, nb),
        dtype="float32",
        compressors=BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle"),
        fill_value=0.0,
    )
    manifest = {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "n": int(n),
        "npix": int(npix),
        "bands": list(bands),
        "shard_size": int(shard_size),
        "n_shards": n_shards,
        "created_utc": utc_now(),
        "fingerprint": fingerprint,
        "provenance": provenance,
        "complete": False,
    }
    _atomic_bytes(root / MANIFEST, json.dumps(manifest, indent=1).encode())
    return root


def write_shard(
    path: str | os.PathLike[str], k: int, images: np.ndarray, truth: pd.DataFrame
) -> dict[str, Any]:
    """Write shard ``k`` (its images region, its truth part), then its done record.

    Returns the done record (small: rows, bytes and sha256 of each file). Safe to repeat:
    rewriting a shard replaces its files whole.
    """
    import zarr

    root = Path(path)
    info = read_manifest(root)
    start, stop = shard_bounds(info["n"], info["shard_size"], k)
    expected = (stop - start, info["npix"], info["npix"], len(info["bands"]))
    images = np.asarray(images)
    if images.shape != expected or len(truth) != expected[0]:
        raise SimlensValueError(
            f"shard {k}: expected images {expected} and {expected[0]} truth rows, got "
            f"{images.shape} and {len(truth)}"
        )
    _check_truth(truth)
    with contextlib.suppress(FileNotFoundError):
        (root / _done_name(k)).unlink()  # an old record must not vouch for new files
    array = zarr.open_array(store=str(root), path="images", mode="r+", zarr_format=3)
    array[start:stop] = images.astype(np.float32, copy=False)
    part = root / _truth_name(k)
    tmp = part.with_name(f".{part.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        truth.reset_index(drop=True).to_parquet(tmp, index=False, engine="pyarrow")
        os.replace(tmp, part)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    files = {}
    for name in (_image_name(k), _truth_name(k)):
        file = root / name
        files[name] = {"bytes": file.stat().st_size, "sha256": _sha256(file)}
    record = {"shard": k, "start": start, "stop": stop, "files": files}
    _atomic_bytes(root / _done_name(k), json.dumps(record).encode())
    return record


def finish_store(path: str | os.PathLike[str]) -> None:
    """Mark the store complete in its manifest, once every shard is done (checked here)."""
    root = Path(path)
    missing = missing_shards(root)
    if missing:
        raise SimlensValueError(_missing_message(root, missing))
    manifest = read_manifest(root)
    manifest["complete"] = True
    manifest["completed_utc"] = utc_now()
    _atomic_bytes(root / MANIFEST, json.dumps(manifest, indent=1).encode())


def remove_store(path: str | os.PathLike[str]) -> None:
    """Delete a simlens store (refuses a directory that is not one, so nothing else is lost)."""
    root = Path(path)
    if not (root / MANIFEST).is_file() and not (root / "zarr.json").is_file():
        raise SimlensValueError(
            f"path: {str(root)!r} is a directory but not a simlens store; not removed"
        )
    shutil.rmtree(root)


def save_store(
    dataset: Any,
    path: str | os.PathLike[str],
    *,
    shard_size: int = 256,
    overwrite: bool | None = None,
) -> Path:
    """Write an in-memory (or lazily loaded) :class:`simlens.Dataset` to a new store.

    Used by :meth:`simlens.Dataset.save` for a ``.zarr`` path. The fingerprint is the set's
    ``meta`` (such a store cannot be resumed by ``simlens generate``). An existing ``path`` is
    replaced only if ``overwrite`` allows it (None: :func:`probe.safe_io.overwrite_default`),
    and only if it is a simlens store.
    """
    from probe.safe_io import OutputExistsError, _acquire, overwrite_default

    root = Path(path)
    if root.exists() and not root.is_dir():
        raise SimlensValueError(
            f"path: {str(root)!r} is a file; a .zarr set is a directory (a Zarr store)"
        )
    if not root.parent.is_dir():
        raise FileNotFoundError(f"path: directory {str(root.parent)!r} does not exist")
    if len(dataset) == 0:
        raise SimlensValueError("dataset: a .zarr store needs at least one image")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise SimlensValueError(f"shard_size: expected an integer >= 1, got {shard_size!r}")
    allow = overwrite_default() if overwrite is None else bool(overwrite)
    if root.exists() and not allow:
        raise OutputExistsError(f"{root}: exists; pass --overwrite (overwrite=True) to replace it")
    lock = _acquire(root)
    try:
        if root.exists():
            remove_store(root)
        n = len(dataset)
        create_store(
            root,
            n=n,
            npix=dataset.npix,
            bands=dataset.bands,
            shard_size=shard_size,
            columns=[str(c) for c in dataset.truth.columns],
            provenance=dataset.meta,
            fingerprint={"meta": dataset.meta, "shard_size": shard_size},
        )
        for k in range(-(-n // shard_size)):
            start, stop = shard_bounds(n, shard_size, k)
            write_shard(
                root, k, np.asarray(dataset.images[start:stop]), dataset.truth.iloc[start:stop]
            )
        finish_store(root)
    finally:
        lock.unlink(missing_ok=True)
    return root


# --------------------------------------------------------------------------- checking
def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's manifest; a clear error if ``path`` is not a simlens store."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise SimlensValueError(
            f"path: {str(root)!r} is a file; a .zarr set is a directory (a Zarr store)"
        )
    if not root.is_dir():
        raise FileNotFoundError(f"path: no such store {str(root)!r}")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise SimlensValueError(
            f"path: {str(root)!r} is not a simlens store (no {MANIFEST})"
        ) from None
    except json.JSONDecodeError as err:
        raise SimlensValueError(f"path: {str(root)!r}: {MANIFEST} is damaged ({err.msg})") from None
    if manifest.get("format") != STORE_FORMAT:
        raise SimlensValueError(
            f"path: {str(root)!r} is not a simlens store (format={manifest.get('format')!r})"
        )
    if not 1 <= int(manifest.get("format_version", -1)) <= STORE_VERSION:
        raise SimlensValueError(
            f"path: {str(root)!r} has format_version {manifest.get('format_version')}; this "
            f"simlens reads 1..{STORE_VERSION}"
        )
    return manifest


def _shard_problem(root: Path, k: int, *, checksum: bool) -> str | None:
    """None if shard ``k`` is complete (and, with ``checksum``, matches its sha256)."""
    try:
        record = json.loads((root / _done_name(k)).read_text())
    except FileNotFoundError:
        return "missing (never completed)"
    except json.JSONDecodeError:
        return f"damaged done record {_done_name(k)}"
    for name, want in record["files"].items():
        file = root / name
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            return f"file {name} missing"
        if size != want["bytes"]:
            return f"file {name} truncated or changed ({size} bytes, expected {want['bytes']})"
        if checksum and _sha256(file) != want["sha256"]:
            return f"file {name} does not match its sha256"
    return None


def verify_shard(path: str | os.PathLike[str], k: int) -> bool:
    """True if shard ``k`` is complete and its files match their recorded sha256."""
    return _shard_problem(Path(path), k, checksum=True) is None


def missing_shards(
    path: str | os.PathLike[str], *, checksum: bool = False
) -> list[tuple[int, str]]:
    """``(k, problem)`` for every shard that is missing, truncated (file sizes differ from its
    done record) or, with ``checksum``, fails its sha256."""
    root = Path(path)
    n_shards = int(read_manifest(root)["n_shards"])
    out = []
    for k in range(n_shards):
        problem = _shard_problem(root, k, checksum=checksum)
        if problem is not None:
            out.append((k, problem))
    return out


def _missing_message(root: Path, missing: list[tuple[int, str]]) -> str:
    head = "; ".join(f"shard {k}: {why}" for k, why in missing[:3])
    more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
    return (
        f"path: {str(root)!r} is incomplete or damaged: {head}{more}; finish it with "
        "`simlens generate ... --resume`"
    )


def fingerprint_difference(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Names of the fingerprint entries that differ (``"seed (stored 1, requested 2)"``)."""

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True)
        return text if len(text) <= 60 else text[:57] + "..."

    out = []
    for key in sorted(set(stored) | set(requested)):
        a, b = stored.get(key), requested.get(key)
        if short(a) != short(b) or json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            out.append(f"{key} (stored {short(a)}, requested {short(b)})")
    return out


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

    file = Path(path) / _truth_name(k)
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
        raise SimlensValueError(_missing_message(root, missing))
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
