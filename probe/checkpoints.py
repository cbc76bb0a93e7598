"""Per-chunk score checkpoints, so a killed ``probe bin``/``sweep`` finishes with ``--resume``.

A run writes each chunk's scores (and, for the baseline, its hash leaves) as it completes, to
``DIR/<name>.npz`` (temp file + rename), with the digest of the run key and a sha256 of its
arrays. ``DIR/key.json`` holds the run key: everything that determines the scores (model
content identity, data identity, seed, perturber and values, chunk and batch size, probe's
source digest). With ``resume``, a directory whose key differs is refused, naming the entries
that differ; verified chunk files are reused, missing or corrupt ones recomputed. Without
``resume``, old checkpoints are discarded. Chunks are pure functions of (configuration, seed,
chunk index), so a resumed run's outputs equal an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from probe.errors import ProbeValueError
from probe.safe_io import atomic_bytes

KEY_FILE = "key.json"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def key_difference(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Names of the key entries that differ, with both values shortened."""

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    return [
        f"{k} (checkpoints {short(stored.get(k))}, this run {short(requested.get(k))})"
        for k in sorted(set(stored) | set(requested))
        if _digest(stored.get(k)) != _digest(requested.get(k))
    ]


def _arrays_sha(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Checkpoints:
    """Chunk results of one run under ``root`` (see the module docstring).

    ``reused`` and ``computed`` count chunk files read back and written.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        key: dict[str, Any],
        *,
        resume: bool,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.key = json.loads(json.dumps(key, sort_keys=True, default=str))
        self.key_digest = _digest(self.key)
        self.reused = 0
        self.computed = 0
        key_file = self.root / KEY_FILE
        if resume and key_file.is_file():
            try:
                stored = json.loads(key_file.read_text())
            except (OSError, ValueError):
                stored = None
            if isinstance(stored, dict):
                diff = key_difference(stored, self.key)
                if diff:
                    raise ProbeValueError(
                        f"--resume: the checkpoints in {self.root} are of another run; differs: "
                        + "; ".join(diff)
                    )
        elif self.root.exists():
            old = len(list(self.root.glob("*.npz")))
            if old and log is not None:
                log(f"discarding {old} chunk checkpoints of an earlier run in {self.root} "
                    "(--resume reuses them)")  # fmt: skip
            self.discard()
        # The directory and key are written with the first chunk: a run that fails before
        # any chunk finishes leaves nothing behind.
        self._started = False

    def get(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays of chunk ``name`` if a verified checkpoint of this run holds them."""
        import io

        path = self.root / f"{name}.npz"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception:  # a truncated or damaged file: recompute the chunk
            return None
        meta = arrays.pop("__meta__", None)
        if meta is None:
            return None
        try:
            info = json.loads(bytes(meta).decode())
        except ValueError:
            return None
        if info.get("key") != self.key_digest or info.get("name") != name:
            return None
        if info.get("sha256") != _arrays_sha(arrays):
            return None
        self.reused += 1
        return arrays

    def put(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Write chunk ``name``'s arrays (atomically, with the run key's digest and a sha256)."""
        import io

        if not self._started:
            self.root.mkdir(parents=True, exist_ok=True)
            key = json.dumps(self.key, indent=1, sort_keys=True).encode()
            atomic_bytes(self.root / KEY_FILE, key)
            self._started = True
        info = {"key": self.key_digest, "name": name, "sha256": _arrays_sha(arrays)}
        meta = np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **{"__meta__": meta, **arrays})  # type: ignore[arg-type]
        atomic_bytes(self.root / f"{name}.npz", buf.getvalue())
        self.computed += 1

    def discard(self) -> None:
        """Remove the checkpoint directory (after the outputs are written)."""
        discard_dir(self.root)

    def scoped(self, prefix: str, baseline_prefix: str | None = None) -> Scoped:
        """A view whose chunk names start with ``prefix``: several image sets of one run
        (a selection's lenses and its negatives, a yield's strata, a study's experiments) in
        one directory. ``baseline_prefix``: the prefix of the unperturbed scores
        (``baseline-*`` chunks) instead, so experiments on one image set share them."""
        return Scoped(self, prefix, baseline_prefix)

    def summary(self) -> str:
        """One line: chunks reused from the checkpoints and chunks computed in this run."""
        return (
            f"resume: {self.reused} chunk(s) reused from the checkpoints in {self.root}, "
            f"{self.computed} computed"
        )


class Scoped:
    """Chunk files of one image set inside a run's :class:`Checkpoints` (names prefixed)."""

    def __init__(
        self, parent: Checkpoints, prefix: str, baseline_prefix: str | None = None
    ) -> None:
        self.parent = parent
        self.prefix = prefix
        self.baseline_prefix = prefix if baseline_prefix is None else baseline_prefix

    def _name(self, name: str) -> str:
        shared = name.startswith("baseline-")
        return (self.baseline_prefix if shared else self.prefix) + name

    def get(self, name: str) -> dict[str, np.ndarray] | None:
        """As :meth:`Checkpoints.get`, for the prefixed name."""
        return self.parent.get(self._name(name))

    def put(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """As :meth:`Checkpoints.put`, for the prefixed name."""
        self.parent.put(self._name(name), arrays)


def discard_dir(root: str | os.PathLike[str]) -> None:
    """Remove a checkpoint directory ``root``: one holding a run key, or empty (never another
    directory that happens to have the name)."""
    path = Path(root)
    if not path.is_dir():
        return
    if (path / KEY_FILE).is_file() or not any(path.iterdir()):
        shutil.rmtree(path, ignore_errors=True)


def leaves_to_array(leaves: list[bytes]) -> np.ndarray:
    """Hash leaves (equal-length digests) as a uint8 array ``(n_leaves, digest_size)``."""
    if not leaves:
        return np.zeros((0, 0), dtype=np.uint8)
    return np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(len(leaves), -1).copy()


def array_to_leaves(array: np.ndarray) -> list[bytes]:
    """The inverse of :func:`leaves_to_array`."""
    return [bytes(row) for row in np.asarray(array, dtype=np.uint8)]


def data_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies a saved set's contents: a ``.zarr`` store's manifest fingerprint and
    every shard's recorded sha256 (its completion records); else the file's sha256."""
    where = os.fspath(path)
    if where.rstrip("/\\").endswith(".zarr"):
        manifest = json.loads(Path(where, "manifest.json").read_text())
        shards = []
        for k in range(int(manifest["n_shards"])):
            record = json.loads(Path(where, "done", f"shard-{k:05d}.json").read_text())
            shards.append({name: f["sha256"] for name, f in sorted(record["files"].items())})
        return {
            "kind": "zarr",
            "fingerprint": _digest(manifest.get("fingerprint")),
            "shards": _digest(shards),
        }
    from probe.cache import file_digest

    return {"kind": "file", "sha256": file_digest(where)}
