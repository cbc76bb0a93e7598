"""Provenance (what produced a result) and atomic file writing."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.adapters.simulators import SIMULATOR_PACKAGE

_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "tensorflow",
    "keras",
    SIMULATOR_PACKAGE,
)


def package_versions() -> dict[str, str]:
    """Versions of Python, probe and the relevant packages that are installed."""
    from probe._version import __version__

    versions = {"python": platform.python_version(), "probe": __version__}
    for name in _PACKAGES:
        # Only report a heavy package if this process loaded it: otherwise it did not take part.
        if name in ("tensorflow", "keras", SIMULATOR_PACKAGE) and name not in sys.modules:
            continue
        try:
            versions[name] = metadata.version(name if name != "tensorflow" else "tensorflow-cpu")
        except metadata.PackageNotFoundError:
            module = sys.modules.get(name)
            versions[name] = str(getattr(module, "__version__", "unknown"))
    return versions


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def now_utc() -> str:
    """Current time, ISO 8601 in UTC."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def hash_frame(frame: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's values and column names (row order matters)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays and paths so :func:`json.dumps` accepts them."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return f if np.isfinite(f) else None  # JSON has no NaN
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(obj: Any) -> str:
    """Strict JSON (NaN becomes null) of provenance-like data."""
    return json.dumps(to_jsonable(obj), allow_nan=False, sort_keys=True)


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], None],
    *,
    overwrite: bool | None = None,
    lock: bool = True,
) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A reader never sees a half-written file, and a failed write leaves no file behind. Missing
    parent directories are created. ``overwrite`` (None: :func:`probe.safe_io.overwrite_default`)
    decides whether an existing ``path`` may be replaced; ``lock`` holds ``<path>.lock`` so a
    second writer fails clearly (see :mod:`probe.safe_io`).
    """
    from probe.safe_io import safe_target

    target = Path(path)
    with safe_target(
        target, overwrite=overwrite, lock=lock, make_dirs=True, suffix=target.suffix
    ) as tmp:
        write(tmp)
        # give the result the permissions a plain open() would
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
    return target
