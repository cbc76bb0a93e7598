"""Writing output files safely: whole or not at all, one writer at a time, no silent overwrite.

Used by every writer of both tools (``simlens`` sets, ``probe`` tables, plots, reports and the
cache), through :func:`safe_target`:

- Data go to ``.<name>.<pid>.<random>.tmp`` beside the target and are renamed onto it only when
  complete (:func:`os.replace` is atomic on POSIX): a crash, ``kill -9`` or a full disk leaves
  either the old file or the complete new one.
- While writing, ``<target>.lock`` holds the writer's pid (created with ``O_EXCL``): a second
  writer to the same path fails at once with :class:`WriterBusyError`. A lock whose pid is dead
  (a killed run) is taken over.
- Temporary files of killed runs (their pid is dead, or they predate this process and carry no
  pid) are removed by the next writer of the same target. A live writer's file is left alone.
- An existing target is replaced only with ``overwrite=True``; ``overwrite=None`` follows
  :func:`overwrite_default` (True in Python, set by the command lines from ``--overwrite``).
- A full disk (``ENOSPC``, ``EDQUOT``, ``EFBIG``) raises :class:`DiskFullError`, one line naming
  the target, after the temporary file is removed.

Only the standard library is imported: both ``simlens`` and ``probe`` import this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DiskFullError",
    "OutputExistsError",
    "WriterBusyError",
    "atomic_bytes",
    "check_free_space",
    "overwrite_default",
    "overwrite_policy",
    "remove_stale_temps",
    "safe_target",
]

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_START = time.time()  # temporary files without a pid older than this belong to a dead run
_OVERWRITE: contextvars.ContextVar[bool] = contextvars.ContextVar("overwrite", default=True)


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not asked for."""


class WriterBusyError(FileExistsError):
    """Another live process is writing the same output."""


class DiskFullError(OSError):
    """The disk (or quota, or file-size limit) ran out while writing; nothing was written."""


def atomic_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temporary file, fsync, rename), with no
    lock or overwrite check: for files inside an output that :func:`safe_target` or the
    caller's own lock already guards (a store's shards, a run's checkpoints). Unlike
    :func:`safe_target` it fsyncs (a resumed run trusts what it finds) and removes no other
    writer's temporary files (workers on other hosts share the folder; pids say nothing)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def overwrite_default() -> bool:
    """Whether writers replace an existing output when not told (``overwrite=None``)."""
    return _OVERWRITE.get()


@contextlib.contextmanager
def overwrite_policy(allow: bool) -> Iterator[None]:
    """Within the block, ``overwrite=None`` means ``allow`` (the CLIs pass ``--overwrite``)."""
    token = _OVERWRITE.set(bool(allow))
    try:
        yield
    finally:
        _OVERWRITE.reset(token)


def is_disk_full(err: BaseException) -> bool:
    """True for the errors of a full disk, an exhausted quota or a file-size limit."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return True
        text = str(err).lower()
        if "no space left" in text or "file too large" in text or "disk quota" in text:
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _temp_pattern(name: str) -> re.Pattern[str]:
    # New: .<name>.<pid>.<random>.tmp[suffix]; old (no pid): .<name>.<random>.tmp[suffix]
    return re.compile(rf"^\.{re.escape(name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp(?:\.[^.]*)?$")


def remove_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files of dead writers of ``target``; returns those removed."""
    path = Path(target)
    folder = path.parent if str(path.parent) else Path(".")
    pattern = _temp_pattern(path.name)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if not match:
            continue
        pid = match.group(1)
        try:
            stale = not _pid_alive(int(pid)) if pid is not None else entry.stat().st_mtime < _START
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def acquire_lock(target: Path) -> Path:
    """Take the lock file beside ``target`` (``NAME.lock``, holding this process id), or raise
    naming the process that holds it; a lock left by a dead process is taken over. Returns the
    lock path (remove it to release)."""
    lock = _lock_path(target)
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                owner = -1
                # An empty lock may be one being written this instant: give it a moment.
                if time.time() - _mtime(lock) < 2.0:
                    time.sleep(0.05)
                    continue
            if owner > 0 and _pid_alive(owner):
                raise WriterBusyError(
                    f"{target}: another process (pid {owner}) is writing it; wait for it or "
                    f"remove {lock.name} if that process is gone"
                ) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # a dead writer's lock: take it over
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return lock
    raise WriterBusyError(f"{target}: could not take the lock {lock.name}; try again")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def safe_target(
    target: str | os.PathLike[str],
    *,
    overwrite: bool | None = None,
    lock: bool = True,
    make_dirs: bool = False,
    suffix: str = "",
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds.

    Parameters
    ----------
    target : path
        The final file.
    overwrite : bool, optional
        Replace an existing ``target``; None follows :func:`overwrite_default`.
    lock : bool
        Hold ``<target>.lock`` while writing (False for content-addressed files, where two
        writers write the same bytes and either rename wins).
    make_dirs : bool
        Create missing parent directories (otherwise a missing one is an error).
    suffix : str
        Appended to the temporary name (tools that pick a format by suffix).

    Raises
    ------
    OutputExistsError, WriterBusyError, DiskFullError, FileNotFoundError
    """
    final = Path(target)
    folder = final.parent if str(final.parent) else Path(".")
    if make_dirs:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise FileNotFoundError(f"path: directory {str(folder)!r} does not exist")
    allow = overwrite_default() if overwrite is None else bool(overwrite)
    if not allow and final.exists():
        raise OutputExistsError(f"{final}: exists; pass --overwrite (overwrite=True) to replace it")
    held = acquire_lock(final) if lock else None
    tmp: Path | None = None
    try:
        remove_stale_temps(final)
        tmp = Path(f"{folder}/.{final.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp{suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            yield tmp
            if not allow and final.exists():  # appeared while we wrote (an unlocked writer)
                raise OutputExistsError(f"{final}: appeared while writing; not replaced")
            os.replace(tmp, final)
        except BaseException as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if is_disk_full(err) and not isinstance(err, DiskFullError):
                raise DiskFullError(
                    errno.ENOSPC,
                    f"{final}: disk full (or file-size limit) while writing; nothing written "
                    f"(free after removing it: {_free_text(folder)})",
                ) from None
            raise
    finally:
        if held is not None:
            with contextlib.suppress(OSError):
                held.unlink()


def _free_text(folder: Path) -> str:
    try:
        return _size(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_free_space(target: str | os.PathLike[str], estimate: int, *, what: str = "") -> None:
    """Refuse (:class:`DiskFullError`) a job whose ``estimate`` bytes exceed the free space."""
    folder = Path(target).parent if str(Path(target).parent) else Path(".")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: let the write itself report
    if estimate > free:
        label = f" {what}" if what else ""
        raise DiskFullError(
            errno.ENOSPC,
            f"{target}: the output{label} needs about {_size(estimate)} but only {_size(free)} "
            f"is free on its disk; nothing written",
        )
