"""argparse types for output paths of both command lines (``--out``): bad input before any work.

An output that cannot be written (a directory without write permission, a read-only file
system, a path under a regular file) is reported when the command line is parsed, naming the
option and the directory, instead of after minutes of simulation with the name of a hidden
temporary file. Imports nothing heavy: ``simlens.cli`` uses it too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

__all__ = ["output_dir", "output_file"]


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the directory a write would start in)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_writable(path: Path) -> None:
    start = _existing_ancestor(path)
    if not start.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {os.fspath(path)!r}: {os.fspath(start)!r} is a file, not a directory"
        )
    try:
        # A real test (permissions, read-only mounts, root on special file systems); the
        # anonymous file leaves nothing behind.
        with tempfile.TemporaryFile(dir=start):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise argparse.ArgumentTypeError(
            f"cannot write in directory {os.fspath(start)!r} ({reason})"
        ) from None


def output_file(text: str) -> Path:
    """An output file: not a directory, and its directory writable (if it exists yet)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file path")
    _check_writable(path.parent if path.parent.exists() else path)
    return path


def output_dir(text: str) -> Path:
    """An output directory: a directory (or creatable under one) that can be written."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a directory")
    _check_writable(path)
    return path
