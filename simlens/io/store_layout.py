"""The layout of sharded image sets on disk (a Zarr v3 store per set, ``PATH.zarr``): its
constants, file names and the atomic file writes its shards use.

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
nothing passes whole image arrays through a scheduler. Readers
(:func:`simlens.io.store_reader.open_store`) refuse a store with a missing or truncated shard,
naming it; :func:`simlens.io.store.verify_shard` also checks sha256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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


def truth_name(k: int) -> str:
    return f"truth/part-{k:05d}.parquet"


def done_name(k: int) -> str:
    return f"done/shard-{k:05d}.json"


def image_name(k: int) -> str:
    return f"images/c/{k}/0/0/0"  # Zarr v3 default chunk key: one file per shard


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
