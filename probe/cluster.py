"""Dask for probe: a client from ``--workers``/``--scheduler``, and an ordered map over chunks.

Every long step of probe is a map over chunks of independent objects, each chunk a pure
function of (configuration, seed, chunk index), so a result is bit-identical run serially
(``client=None``, the default), on a ``distributed.LocalCluster`` or on a remote cluster.
Scheduling, retries and spilling are Dask's; this module only opens the client and maps.

Models reach the workers as their spec: a model given as a file path or ``"module:callable"``
is re-opened on each worker (cached per worker process), which works on a remote cluster that
sees the same file; a model object (a Python callable, an adapter) is sent with ``cloudpickle``,
which works when it pickles and its code is importable on the workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.errors import ProbeValueError
from probe.validation import check_positive_int

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT_S = 20
"""Seconds to wait for ``--scheduler`` to answer before giving up (exit 2)."""


logger = logging.getLogger(__name__)


def _say(line: str) -> None:
    logger.info(line)


@contextmanager
def open_client(
    workers: int | None = None,
    scheduler: str | None = None,
    client: Client | None = None,
    *,
    log: Callable[[str], None] | None = _say,
) -> Iterator[Client | None]:
    """The Dask client of a run, or None for the serial in-process path.

    Parameters
    ----------
    workers : int, optional
        Processes of a ``distributed.LocalCluster`` (threads_per_worker=1); 1 or None: serial.
    scheduler : str, optional
        Address of a running scheduler (e.g. ``tcp://host:8786``, one dask-jobqueue started).
    client : distributed.Client, optional
        An open client, used as it is (and not closed here).
    log : callable, optional
        Receives the dashboard line (default: logged at INFO; the ``probe`` command shows it
        on stderr).

    Raises
    ------
    ProbeValueError
        ``workers`` below 1, both ``workers`` > 1 and ``scheduler``, or a scheduler that does
        not answer within :data:`CONNECT_TIMEOUT_S` seconds.
    """
    n = 1 if workers is None else check_positive_int(workers, "workers")
    if client is not None:
        if scheduler is not None or n > 1:
            raise ProbeValueError("give client= or workers=/scheduler=, not both")
        yield client
        return
    if scheduler is not None and n > 1:
        raise ProbeValueError("give --workers N or --scheduler ADDRESS, not both")
    if scheduler is None and n == 1:
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is not None:
        try:
            opened = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise ProbeValueError(
                f"--scheduler {scheduler}: no Dask scheduler answered within "
                f"{CONNECT_TIMEOUT_S} s ({type(err).__name__}: {err})"
            ) from None
    else:
        import dask

        # Dask's workers default to MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's
        # dynamic mmap threshold: every large numpy temporary is then mmapped afresh, and the
        # same chunk costs ~40% more CPU than in a plain process (scripts/bench_scale.py). The
        # worker's statistical profiler (a stack sample every 10 ms, for the dashboard) costs
        # ~7% of a chunk's CPU and grows the workers' memory: off.
        local = {
            "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
            "distributed.worker.profile.enabled": False,
        }
        with dask.config.set(local):
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
        opened = Client(cluster)
    try:
        if log is not None:
            where = scheduler or f"LocalCluster of {n} worker processes"
            log(f"dask: {where}; dashboard {opened.dashboard_link}")
        yield opened
    finally:
        opened.close()
        if cluster is not None:
            cluster.close()


def chunk_map(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    client: Client | None,
    *,
    desc: str = "chunks",
    progress: bool = False,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[fn(*t) for t in tasks]``, on ``client``'s workers when given, with a tqdm bar.

    Results come back in task order whatever order the workers finish in; the first failed
    task's exception is raised (the remaining tasks are cancelled). ``on_result(i, result)``
    is called here as each task ``i`` finishes (to checkpoint it before the others end).
    """
    from tqdm import tqdm

    if client is None:
        out = []
        for i, t in enumerate(tqdm(tasks, desc=desc, unit="chunk", disable=not progress)):
            out.append(fn(*t))
            if on_result is not None:
                on_result(i, out[-1])
        return out
    from distributed import Future, as_completed

    if tasks:
        # An argument every task shares (the model, the simulator) is sent to the workers
        # once, not pickled into every task.
        first = tasks[0]
        shared = {
            i: client.scatter([v], broadcast=True, hash=False)[0]
            for i, v in enumerate(first)
            if not isinstance(v, int | float | str | bytes | Future | type(None))
            and all(t[i] is v for t in tasks[1:])
        }
        tasks = [tuple(shared.get(i, v) for i, v in enumerate(t)) for t in tasks]
    futures = [client.submit(fn, *t, pure=False) for t in tasks]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for done in tqdm(
            as_completed(futures), total=len(futures), desc=desc, unit="chunk",
            disable=not progress,
        ):  # fmt: skip
            if done.status == "error":
                done.result()  # raises the worker's exception here
            if on_result is not None:
                on_result(index[done.key], done.result())
        return list(client.gather(futures))
    finally:
        client.cancel([f for f in futures if not f.done()])


# -- what travels to the workers ---------------------------------------------------------------
class ModelSpec:
    """How a worker gets the model: re-opened from its path/spec, or the pickled adapter."""

    def __init__(self, model: Any, adapter: Any, options: dict[str, Any]) -> None:
        if isinstance(model, str | os.PathLike):
            self.source: str | None = (
                os.fspath(Path(model).resolve()) if _is_file(model) else str(model)
            )
            self.adapter = None
        else:
            self.source = None
            self.adapter = adapter
        self.options = tuple(sorted(options.items()))

    def get(self) -> Any:
        """The model adapter in this process (opened once per worker process)."""
        if self.adapter is not None:
            return self.adapter
        assert self.source is not None
        return _open_model(self.source, self.options)


def _is_file(model: Any) -> bool:
    """Whether ``model`` names a file or directory (resolved to an absolute path for workers)."""
    try:
        return Path(model).exists()
    except (OSError, ValueError):
        return False


@lru_cache(maxsize=4)
def _open_model(source: str, options: tuple[tuple[str, Any], ...]) -> Any:
    from probe.adapters.models import ModelAdapter

    return ModelAdapter(source, **dict(options))


class H5Source:
    """An HDF5 dataset named by file and path, re-opened read-only where it is read."""

    def __init__(self, filename: str, name: str, shape: tuple[int, ...], dtype: Any) -> None:
        self.filename, self.name = filename, name
        self.shape, self.dtype = shape, np.dtype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(_h5_dataset(self.filename, self.name)[key])


@lru_cache(maxsize=8)
def _h5_dataset(filename: str, name: str) -> Any:
    import h5py

    return h5py.File(filename, "r")[name]


class Window:
    """Images ``lo:hi`` of a source, read lazily (slices only, as :class:`ImageSet` asks)."""

    def __init__(self, source: Any, lo: int, hi: int) -> None:
        self.source, self.lo, self.hi = source, lo, hi
        self.shape = (hi - lo, *tuple(source.shape[1:]))
        self.dtype = np.dtype(source.dtype)

    def __getitem__(self, key: slice) -> np.ndarray:
        from probe.adapters.images import read_slice

        start, stop, _ = key.indices(self.hi - self.lo)
        return read_slice(self.source, self.lo + start, self.lo + stop)


def remote_source(source: Any) -> Any | None:
    """A picklable stand-in of an image source that workers read themselves, or None when
    the images must be sent (in-memory arrays: scattered chunk by chunk)."""
    if isinstance(source, np.ndarray):
        return None
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        h5py = None
    if h5py is not None and isinstance(source, h5py.Dataset):
        return H5Source(source.file.filename, source.name, source.shape, source.dtype)
    try:
        import zarr
    except ImportError:  # pragma: no cover - zarr is a dependency
        return None
    if isinstance(source, zarr.Array):
        return source  # pickles as its store and path: workers read their own shards
    return None


def chunk_inputs(source: Any, lo: int, hi: int, client: Client | None, remote: Any | None) -> Any:
    """What a chunk task reads its images ``lo:hi`` from (a future of the array when scattered)."""
    if remote is not None:
        return Window(remote, lo, hi)
    if client is None:
        return Window(source, lo, hi)
    return client.scatter(np.asarray(source[lo:hi]), hash=False)


def add_cluster_args(parser: Any) -> None:
    """``--workers``, ``--scheduler`` and ``--chunk-size`` on a command's parser."""
    from probe.cli_policy import positive_int

    group = parser.add_argument_group("Dask (survey-scale runs)")
    group.add_argument(
        "--workers", type=positive_int, default=1,
        help="worker processes of a local Dask cluster (default 1: in-process, no Dask)",
    )  # fmt: skip
    group.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. one dask-jobqueue started)",
    )  # fmt: skip
    group.add_argument(
        "--chunk-size", type=positive_int, default=None,
        help="images per chunk task on a cluster (default 1024; results do not depend on it)",
    )  # fmt: skip
