"""Generate a set chunk by chunk on Dask (or in this process): :func:`generate`.

Chunk ``k`` is rows ``k*chunk .. (k+1)*chunk - 1`` of the seed's sequence (block seeding, see
:meth:`simlens.Simulator.sample_lenses`), sampled and rendered by one task that is a pure
function of (configuration, seed, ``k``): the set is the same bit for bit whatever the number
of workers, the scheduler or the chunk size. Into a ``.zarr`` store (:mod:`simlens.io.store`) each
task writes its own shard (shard size = ``chunk``) and returns a small record; into an ``.h5``
file the driver gathers chunks in order and appends them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simlens.errors import SimlensValueError
from simlens.scale.chunks import (
    ChunkSpec,
    h5_task,
    resume_fingerprint,
    sample_rows,
    shard_task,
    spec_simulator,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["generate"]


def generate(
    path: str | os.PathLike[str],
    n: int,
    *,
    kind: str = "lens",
    survey: str = "des-y3",
    npix: int = 100,
    seed: int = 0,
    chunk: int = 256,
    noise: bool = True,
    compression: str | None = None,
    client: Client | None = None,
    resume: bool = False,
    overwrite: bool | None = None,
    progress: bool = True,
    _factory: Callable[[str, int], Any] | None = None,
    **controls: Any,
) -> Path:
    """Simulate ``n`` objects of ``kind`` and write them to ``path`` (``.zarr`` or ``.h5``).

    Parameters
    ----------
    path : str or path-like
        ``X.zarr``: a sharded Zarr store (:mod:`simlens.io.store`), one shard of ``chunk`` objects
        written by each task. Anything else: an HDF5 set (:class:`simlens.DatasetWriter`).
    n : int
        Number of objects (>= 1).
    kind : str
        ``"lens"`` or a non-lens kind of :meth:`simlens.Simulator.sample_nonlenses`.
    survey, npix : str, int
        Simulator preset (or survey file) and stamp size in pixels.
    seed : int
        Random seed (>= 0): the same seed gives the same set for any ``chunk`` and ``client``.
    chunk : int
        Objects per task, and per shard of a store (>= 1).
    noise : bool
        Render with noise.
    compression : {None, "gzip", "lzf"}
        HDF5 only (a store is always compressed losslessly, Blosc-zstd).
    client : distributed.Client, optional
        Run the chunks on this Dask cluster; None runs them in this process.
    resume : bool
        ``.zarr`` only: finish a killed run. Shards that are complete and match their sha256
        are kept, missing or corrupt ones redone; refused if the store was made with another
        configuration, seed, chunk or software version (the message names what differs). A
        missing store is simply created.
    overwrite : bool, optional
        Replace an existing output; None follows :func:`probe.safe_io.overwrite_default`.
    progress : bool
        Show a tqdm bar over chunks.
    **controls
        Sampling controls of :meth:`simlens.Simulator.sample_lenses` /
        :meth:`~simlens.Simulator.sample_nonlenses` (``theta_E=(1.0, 2.7)``, ...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    spec, store = _chunk_spec(
        path, n, kind, survey, npix, seed, chunk, noise, compression, resume, _factory, controls
    )
    controls = spec.controls
    sim = spec_simulator(spec)
    first = sample_rows(spec, 0, 1)  # validates every control before anything is written
    from simlens.simulator import jsonable_controls

    # The same provenance keys as ``sim.lenses`` / ``sim.nonlenses`` write, plus ``n``.
    meta = sim.provenance(
        seed=spec.seed, kind=kind, controls=jsonable_controls(controls), noise=spec.noise, n=n
    )
    if store:
        _generate_store(spec, sim, meta, list(first.columns), client, resume, overwrite, progress)
    else:
        _generate_h5(spec, sim, meta, compression, client, overwrite, progress)
    return Path(path)


def _chunk_spec(
    path: str | os.PathLike[str],
    n: int,
    kind: str,
    survey: str,
    npix: int,
    seed: int,
    chunk: int,
    noise: bool,
    compression: str | None,
    resume: bool,
    factory: Callable[[str, int], Any] | None,
    controls: dict[str, Any],
) -> tuple[ChunkSpec, bool]:
    """The checked arguments of :func:`generate` as a task spec, and whether ``path`` is a store."""
    from simlens.io.store_layout import is_store_path

    for name, value in (("n", n), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise SimlensValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SimlensValueError(f"seed: expected an integer >= 0, got {seed!r}")
    store = is_store_path(path)
    if resume and not store:
        raise SimlensValueError("resume: applies to .zarr stores only, not an .h5 file")
    if store and compression is not None:
        raise SimlensValueError("compression: applies to .h5 files only (a .zarr is compressed)")
    controls = {k: v for k, v in controls.items() if v is not None}
    # Both samplers' default, spelled out as the CLI does: one fingerprint either way.
    controls.setdefault("psf_scale", 1.0)
    spec = ChunkSpec(
        path=os.fspath(path),
        n=int(n),
        kind=kind,
        survey=os.fspath(survey),
        npix=int(npix),
        seed=int(seed),
        chunk=int(chunk),
        noise=bool(noise),
        controls=controls,
        factory=factory,
    )
    return spec, store


def _generate_store(
    spec: ChunkSpec,
    sim: Any,
    meta: dict[str, Any],
    columns: list[str],
    client: Client | None,
    resume: bool,
    overwrite: bool | None,
    progress: bool,
) -> None:
    from probe.safe_io import acquire_lock
    from simlens.io.store import create_store, finish_store, remove_store
    from simlens.scale.cluster import map_chunks

    root = Path(spec.path)
    fingerprint = resume_fingerprint(meta, spec.chunk)
    existing = root.exists()
    meta = _check_store_target(spec, len(sim.bands), meta, fingerprint, resume, overwrite)
    lock = acquire_lock(root)
    try:
        if not (existing and resume):
            if existing:
                remove_store(root)
            create_store(
                root,
                n=spec.n,
                npix=spec.npix,
                bands=sim.bands,
                shard_size=spec.chunk,
                columns=columns,
                provenance=meta,
                fingerprint=fingerprint,
            )
        n_shards = -(-spec.n // spec.chunk)
        for _ in map_chunks(
            shard_task,
            n_shards,
            spec,
            bool(resume),
            client=client,
            progress=progress,
            desc="simulating",
            weights=lambda r: int(r["n"]),
            total=spec.n,
            unit="img",
        ):
            pass
        finish_store(root)
    finally:
        lock.unlink(missing_ok=True)


def _check_store_target(
    spec: ChunkSpec,
    n_bands: int,
    meta: dict[str, Any],
    fingerprint: dict[str, Any],
    resume: bool,
    overwrite: bool | None,
) -> dict[str, Any]:
    """Refuse a store target that cannot be written (a file, a missing directory, another
    configuration to resume, an existing store without ``overwrite``, too little free space);
    returns the provenance to write (a resumed store keeps its first run's)."""
    from probe.safe_io import OutputExistsError, check_free_space, overwrite_default
    from simlens.io.store import fingerprint_difference, read_manifest

    root = Path(spec.path)
    if root.exists() and not root.is_dir():
        raise SimlensValueError(
            f"path: {spec.path!r} is a file; a .zarr set is a directory (a Zarr store)"
        )
    if not root.parent.is_dir():
        raise FileNotFoundError(f"path: directory {str(root.parent)!r} does not exist")
    existing = root.exists()
    if existing and resume:
        manifest = read_manifest(root)
        differs = fingerprint_difference(manifest["fingerprint"], fingerprint)
        if differs:
            raise SimlensValueError(
                f"resume: {spec.path!r} was made with another configuration; differs in "
                + "; ".join(differs)
            )
        meta = manifest["provenance"]  # the store keeps the provenance of its first run
    elif existing:
        allow = overwrite_default() if overwrite is None else bool(overwrite)
        if not allow:
            raise OutputExistsError(
                f"{spec.path}: exists; pass --overwrite (overwrite=True) to replace it or "
                "--resume (resume=True) to finish it"
            )
    if not (existing and resume):
        check_free_space(
            root, spec.n * (spec.npix**2 * n_bands * 4 + 2_500), what=f"({spec.n} images)"
        )
    return meta


def _generate_h5(
    spec: ChunkSpec,
    sim: Any,
    meta: dict[str, Any],
    compression: str | None,
    client: Client | None,
    overwrite: bool | None,
    progress: bool,
) -> None:
    from simlens.io.writer import DatasetWriter
    from simlens.scale.cluster import map_chunks

    if compression is None:  # compressed sizes cannot be told in advance
        from probe.safe_io import check_free_space

        # float32 pixels plus ~2 kB of truth per image (174 columns, the compound copy)
        estimate = spec.n * (spec.npix**2 * len(sim.bands) * 4 + 2_500)
        check_free_space(spec.path, estimate, what=f"({spec.n} images)")
    with DatasetWriter(
        spec.path,
        spec.npix,
        sim.bands,
        meta,
        compression=compression,  # type: ignore[arg-type]
        expected_n=spec.n,
        overwrite=overwrite,
    ) as writer:
        for _, (images, rows) in map_chunks(
            h5_task,
            -(-spec.n // spec.chunk),
            spec,
            client=client,
            ordered=True,
            progress=progress,
            desc="simulating",
            weights=lambda r: len(r[1]),
            total=spec.n,
            unit="img",
        ):
            writer.append(images, rows)
