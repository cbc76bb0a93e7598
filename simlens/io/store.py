"""Writing and checking sharded image sets (Zarr stores, layout in
:mod:`simlens.io.store_layout`): a store is created, written shard by shard (each worker its
own shards), checked and marked complete; :func:`missing_shards` and :func:`verify_shard` say
which shards are incomplete or damaged. Reading: :mod:`simlens.io.store_reader`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.safe_io import atomic_bytes
from simlens.errors import SimlensValueError
from simlens.io.h5format import check_truth
from simlens.io.provenance import utc_now
from simlens.io.store_layout import (
    MANIFEST,
    STORE_FORMAT,
    STORE_VERSION,
    done_name,
    image_name,
    sha256,
    shard_bounds,
    truth_name,
)

__all__ = [
    "create_store",
    "fingerprint_difference",
    "finish_store",
    "missing_shards",
    "read_manifest",
    "remove_store",
    "save_store",
    "verify_shard",
    "write_shard",
]


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
    layout: dict[str, Any] = {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "n": int(n),
        "npix": int(npix),
        "bands": list(bands),
        "shard_size": int(shard_size),
        "n_shards": n_shards,
    }
    group.attrs.update(
        {
            **layout,
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
        **layout,
        "created_utc": utc_now(),
        "fingerprint": fingerprint,
        "provenance": provenance,
        "complete": False,
    }
    atomic_bytes(root / MANIFEST, json.dumps(manifest, indent=1).encode())
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
    check_truth(truth)
    with contextlib.suppress(FileNotFoundError):
        (root / done_name(k)).unlink()  # an old record must not vouch for new files
    array = zarr.open_array(store=str(root), path="images", mode="r+", zarr_format=3)
    array[start:stop] = images.astype(np.float32, copy=False)
    part = root / truth_name(k)
    tmp = part.with_name(f".{part.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        truth.reset_index(drop=True).to_parquet(tmp, index=False, engine="pyarrow")
        os.replace(tmp, part)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    files = {}
    for name in (image_name(k), truth_name(k)):
        file = root / name
        files[name] = {"bytes": file.stat().st_size, "sha256": sha256(file)}
    record = {"shard": k, "start": start, "stop": stop, "files": files}
    atomic_bytes(root / done_name(k), json.dumps(record).encode())
    return record


def finish_store(path: str | os.PathLike[str]) -> None:
    """Mark the store complete in its manifest, once every shard is done (checked here)."""
    root = Path(path)
    missing = missing_shards(root)
    if missing:
        raise SimlensValueError(missing_message(root, missing))
    manifest = read_manifest(root)
    manifest["complete"] = True
    manifest["completed_utc"] = utc_now()
    atomic_bytes(root / MANIFEST, json.dumps(manifest, indent=1).encode())


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
    from probe.safe_io import OutputExistsError, acquire_lock, overwrite_default

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
    lock = acquire_lock(root)
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


def shard_problem(root: Path, k: int, *, checksum: bool) -> str | None:
    """None if shard ``k`` is complete (and, with ``checksum``, matches its sha256)."""
    try:
        record = json.loads((root / done_name(k)).read_text())
    except FileNotFoundError:
        return "missing (never completed)"
    except json.JSONDecodeError:
        return f"damaged done record {done_name(k)}"
    for name, want in record["files"].items():
        file = root / name
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            return f"file {name} missing"
        if size != want["bytes"]:
            return f"file {name} truncated or changed ({size} bytes, expected {want['bytes']})"
        if checksum and sha256(file) != want["sha256"]:
            return f"file {name} does not match its sha256"
    return None


def verify_shard(path: str | os.PathLike[str], k: int) -> bool:
    """True if shard ``k`` is complete and its files match their recorded sha256."""
    return shard_problem(Path(path), k, checksum=True) is None


def missing_shards(
    path: str | os.PathLike[str], *, checksum: bool = False
) -> list[tuple[int, str]]:
    """``(k, problem)`` for every shard that is missing, truncated (file sizes differ from its
    done record) or, with ``checksum``, fails its sha256."""
    root = Path(path)
    n_shards = int(read_manifest(root)["n_shards"])
    out = []
    for k in range(n_shards):
        problem = shard_problem(root, k, checksum=checksum)
        if problem is not None:
            out.append((k, problem))
    return out


def missing_message(root: Path, missing: list[tuple[int, str]]) -> str:
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
