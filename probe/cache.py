"""A content-addressed on-disk cache of simulated sets and baseline predictions.

An entry's key is the SHA-256 of a JSON document describing everything that produced it (the
*inputs*): for a simulated set, the simulator (class, ``repr``, its ``provenance()`` without
timestamps, a digest of its package's source and data files), package versions, the set's
specification, its name and the seed; for baseline predictions, the model's content identity
(:func:`model_identity`; a model without one is never cached), the set's key, the perturber and
value, the perturbation seed and a digest of probe's own source.
A change to any of them gives another key, so a stale entry is never looked up.

Each entry is one or more data files plus a JSON sidecar written last, holding the key, the
inputs and the SHA-256 of every data file. An entry is served only if its sidecar parses, repeats
the key and the inputs, and every file's hash matches; anything else (a half-written, corrupted
or tampered entry) is reported once (a :class:`RuntimeWarning`) and recomputed. Writes are
atomic (:func:`probe.provenance.atomic_write`); two processes storing the same entry at once
both succeed, leaving one valid entry (each file's hash is taken before it is renamed into
place, and equal inputs give equal bytes). A cache that cannot be written (full disk, no
permission) is used read-only from then on, with one warning: the run goes on without it.

Layout: ``<root>/sets/<key>.{images.npy,labels.npy,truth.parquet,json}`` and
``<root>/scores/<key>.{npy,json}``. The default root is ``$PROBE_CACHE_DIR`` or
``~/.cache/probe``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.provenance import atomic_write, dumps, file_sha256, now_utc

logger = logging.getLogger(__name__)

__all__ = [
    "Cache",
    "default_cache_dir",
    "digest",
    "file_digest",
    "model_identity",
    "source_digest",
]

_SOURCE_SUFFIXES = (".py", ".toml", ".csv", ".json", ".txt", ".dat", ".ecsv")
_MAX_SOURCE_BYTES = 20_000_000  # larger files (weights, data cubes) are not source
_VOLATILE = ("created", "time", "date")  # provenance keys that change from run to run
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # default reprs show the object's address


def default_cache_dir() -> Path:
    """``$PROBE_CACHE_DIR`` if set, else ``~/.cache/probe``."""
    env = os.environ.get("PROBE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "probe"


def _make_private(root: Path) -> None:
    """Create the cache root readable by its owner only (0o700): cached sets and scores of
    another user's models are not for everyone on a shared cluster. An existing root is left
    as its owner set it."""
    if not root.exists():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)


def digest(inputs: Any) -> str:
    """SHA-256 of the canonical JSON of ``inputs`` (sorted keys, NaN as null)."""
    return hashlib.sha256(dumps(inputs).encode("utf-8")).hexdigest()


file_digest = file_sha256
"""SHA-256 of a file's bytes (:func:`probe.provenance.file_sha256`)."""


def _tree_files(root: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in _SOURCE_SUFFIXES and path.stat().st_size <= _MAX_SOURCE_BYTES:
                files.append(path)
    return files


def source_digest(module_name: str) -> str:
    """SHA-256 of the source and data files of the top-level package of ``module_name``.

    Covers the package directory and the directories of its already-imported subpackages that
    live elsewhere (e.g. data packages mapped to another folder); a plain module contributes
    its own file. Empty string if the module has no files (built-in, interactive).
    """
    top = module_name.split(".")[0]
    roots: set[Path] = set()
    singles: set[Path] = set()
    for name, mod in list(sys.modules.items()):
        if name != top and not name.startswith(top + "."):
            continue
        path = getattr(mod, "__file__", None)
        if hasattr(mod, "__path__"):  # a package; a namespace (data) package has no __file__
            roots.update(Path(p).resolve() for p in mod.__path__)
        elif path:
            singles.add(Path(path).resolve())
    # A root inside another root is walked with it.
    outer = sorted(r for r in roots if not any(o != r and o in r.parents for o in roots))
    named = {f: Path(f.name) for f in singles if not any(r in f.parents for r in outer)}
    for root in outer:
        named.update({f: Path(root.name) / f.relative_to(root) for f in _tree_files(root)})
    h = hashlib.sha256()
    for f, rel in sorted(named.items(), key=lambda item: item[1].as_posix()):
        h.update(rel.as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest() if named else ""


def _without_volatile(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {
            str(k): _without_volatile(v)
            for k, v in obj.items()
            if not any(word in str(k).lower() for word in _VOLATILE)
        }
    if isinstance(obj, list | tuple):
        return [_without_volatile(v) for v in obj]
    return obj


def _no_address(text: str) -> str:
    return _ADDRESS.sub("", text)


def _public_state(obj: Any) -> dict[str, str]:
    """Public instance attributes, as reprs without memory addresses."""
    state = getattr(obj, "__dict__", {})
    return {k: _no_address(repr(v)) for k, v in sorted(state.items()) if not k.startswith("_")}


def simulator_identity(sim: Any) -> dict[str, Any]:
    """What identifies a simulator's output: class, configuration, provenance, code digest.

    The configuration is ``repr(sim)`` when the class defines ``__repr__`` (simlens's shows its
    settings); otherwise the reprs of its public instance attributes (private ones, such as
    caches and counters, are left out). Memory addresses are removed.
    """
    cls = type(sim)
    ident: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    if cls.__repr__ is object.__repr__:
        ident["state"] = _public_state(sim)
    else:
        ident["repr"] = _no_address(repr(sim))
    provenance = getattr(sim, "provenance", None)
    if callable(provenance):
        ident["provenance"] = _without_volatile(json.loads(dumps(provenance())))
    ident["source"] = source_digest(cls.__module__)
    return ident


def model_identity(model: Any) -> dict[str, Any] | None:
    """Content identity of a model for cache keys, or None when it has none (never cache it).

    A model file (``.keras``, ``.onnx``, ...): the SHA-256 of its bytes (re-saving the same
    weights may give a new key, never a stale hit). A Keras object or an adapter: its content
    digest (:func:`probe.models.model_digest`: architecture and weights). A callable or
    ``"module:callable"``: the identity it declares (``model_id`` and/or ``weight_files``,
    hashed now, plus its source file; :func:`probe.models.declared_identity`); an opaque
    callable declares none and gets None, because probe cannot see the files or state it reads.
    """
    from probe.adapters.models import model_digest, resolve_model

    if isinstance(model, str | os.PathLike) and Path(model).is_file():
        return {"kind": "file", "sha256": file_digest(model)}  # content, not name or mtime
    obj = resolve_model(model)
    content = model_digest(obj)
    if content is None:
        return None
    return {"kind": "object", "digest": content}


class Cache:
    """Content-addressed entries under ``root`` (see the module docstring).

    ``events`` records ``(kind, key, status)`` for every lookup and store: status "hit",
    "miss", "invalid: <why>" (ignored and recomputed) or "stored".
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.events: list[tuple[str, str, str]] = []
        self.writable = True  # False once a store failed (full disk...): no more stores
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Cache({os.fspath(self.root)!r})"

    def count(self, kind: str, status: str) -> int:
        """How many lookups of ``kind`` ("set", "scores") ended with ``status``."""
        return sum(1 for k, _, s in self.events if k == kind and s.startswith(status))

    # -- generic entry handling --------------------------------------------------------------
    def _paths(self, kind: str, key: str, parts: tuple[str, ...]) -> dict[str, Path]:
        folder = self.root / ("sets" if kind == "set" else "scores")
        return {part: folder / f"{key}.{part}" for part in (*parts, "json")}

    def _load(self, kind: str, key: str, inputs: Any, parts: tuple[str, ...]) -> dict[str, Path]:
        """The data files of a valid entry, or {} (recording why)."""
        paths = self._paths(kind, key, parts)
        if not paths["json"].is_file():
            self._event(kind, key, "miss")
            return {}
        try:
            side = json.loads(paths["json"].read_text(encoding="utf-8"))
            if side.get("key") != key or digest(side.get("inputs")) != key:
                raise ValueError("sidecar key does not match")
            if json.loads(dumps(inputs)) != side["inputs"]:
                raise ValueError("inputs differ")
            for part in parts:
                if file_digest(paths[part]) != side["files"][part]:
                    raise ValueError(f"{part} checksum differs")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            self._event(kind, key, f"invalid: {err}")
            self._warn_invalid(kind, key, str(err))
            return {}
        self._event(kind, key, "hit")
        return {p: paths[p] for p in parts}

    def _event(self, kind: str, key: str, status: str) -> None:
        self.events.append((kind, key, status))
        logger.debug("probe cache: %s %s: %s", kind, key[:16], status)  # shown by probe -v

    def _warn_invalid(self, kind: str, key: str, why: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        warnings.warn(
            f"probe cache: {kind} entry {key[:16]} in {self.root} is damaged ({why}); "
            "recomputing it",
            RuntimeWarning,
            stacklevel=3,
        )

    def _store(self, kind: str, key: str, inputs: Any, files: dict[str, Any]) -> None:
        if not self.writable:
            return
        try:
            self._store_files(kind, key, inputs, files)
        except OSError as err:  # full disk, read-only or foreign folder: go on without storing
            self.writable = False
            self._event(kind, key, f"not stored: {err}")
            warnings.warn(
                f"probe cache: cannot write to {self.root} ({err}); continuing without "
                "storing in the cache",
                RuntimeWarning,
                stacklevel=3,
            )

    def _store_files(self, kind: str, key: str, inputs: Any, files: dict[str, Any]) -> None:
        _make_private(self.root)
        paths = self._paths(kind, key, tuple(files))
        sums = {}
        for part, write_part in files.items():

            def write_and_hash(tmp: Path, write_part: Any = write_part, part: str = part) -> None:
                write_part(tmp)
                sums[part] = file_digest(tmp)  # before the rename: another writer may race

            atomic_write(paths[part], write_and_hash, overwrite=True, lock=False)
        side = {
            "key": key,
            "inputs": json.loads(dumps(inputs)),
            "files": sums,
            "created": now_utc(),
        }
        text = json.dumps(side, indent=1, sort_keys=True)

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        atomic_write(paths["json"], write, overwrite=True, lock=False)
        self._event(kind, key, "stored")

    # -- simulated sets ------------------------------------------------------------------------
    def load_set(
        self, inputs: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame] | None:
        """``(images, labels, truth)`` of the set produced by ``inputs``, or None."""
        key = digest(inputs)
        found = self._load("set", key, inputs, ("images.npy", "labels.npy", "truth.parquet"))
        if not found:
            return None
        try:
            images = np.load(found["images.npy"], allow_pickle=False)
            labels = np.load(found["labels.npy"], allow_pickle=False)
            truth = pd.read_parquet(found["truth.parquet"])
        except (OSError, ValueError) as err:
            self.events[-1] = ("set", key, f"invalid: {err}")
            self._warn_invalid("set", key, str(err))
            return None
        return images, labels, truth

    def save_set(
        self, inputs: Mapping[str, Any], images: np.ndarray, labels: np.ndarray, truth: pd.DataFrame
    ) -> None:
        """Store a simulated set under the key of ``inputs``."""
        self._store(
            "set",
            digest(inputs),
            inputs,
            {
                "images.npy": lambda tmp: _save_npy(tmp, images),
                "labels.npy": lambda tmp: _save_npy(tmp, labels),
                "truth.parquet": lambda tmp: truth.to_parquet(tmp, index=False),
            },
        )

    # -- baseline predictions -----------------------------------------------------------------
    def load_scores(self, inputs: Mapping[str, Any]) -> np.ndarray | None:
        """The p(lens) array stored for ``inputs``, or None."""
        key = digest(inputs)
        found = self._load("scores", key, inputs, ("npy",))
        if not found:
            return None
        try:
            return np.load(found["npy"], allow_pickle=False)
        except (OSError, ValueError) as err:
            self.events[-1] = ("scores", key, f"invalid: {err}")
            self._warn_invalid("scores", key, str(err))
            return None

    def save_scores(self, inputs: Mapping[str, Any], p_lens: np.ndarray) -> None:
        """Store a p(lens) array under the key of ``inputs``."""
        self._store("scores", digest(inputs), inputs, {"npy": lambda tmp: _save_npy(tmp, p_lens)})


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # np.save(path) would append ".npy" to the temporary name
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
