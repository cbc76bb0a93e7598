"""Atomic writes: a file appears complete under its name, or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the same directory (so :func:`os.replace` is atomic on POSIX)
    and is removed if the block raises. An existing ``path`` is replaced only on success, and is
    otherwise left untouched. The final file gets the usual permissions (``0o666 & ~umask``).
    ``<path>.lock`` holds the writer's pid meanwhile, stale temporary files of killed writers
    are removed, and an existing ``path`` is replaced only if ``overwrite`` allows it (None:
    :func:`probe.safe_io.overwrite_default`); see :mod:`probe.safe_io`.

    Raises
    ------
    FileNotFoundError
        If the directory of ``path`` does not exist.
    FileExistsError
        If ``path`` exists and overwriting is not allowed, or another process writes it.
    OSError
        :class:`probe.safe_io.DiskFullError` when the disk fills (nothing is left behind).
    """
    from probe.safe_io import safe_target

    with safe_target(path, overwrite=overwrite) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask())


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
