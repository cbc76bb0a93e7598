"""One engine for long steps: Dask (``distributed``), or the plain in-process loop.

Every long step is a map over chunk indices ``k = 0..n-1`` of a function that is pure in
(configuration, seed, ``k``), so results do not depend on the number of workers, the chunk
order or the scheduler. :func:`dask_client` gives the ``distributed.Client`` the step runs on
(none: run in this process), :func:`map_chunks` runs the map with a tqdm bar over chunks.
Scheduling, retries and spilling are Dask's; nothing here replaces them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from simlens.errors import SimlensValueError

if TYPE_CHECKING:  # distributed is imported only when a cluster is used
    from distributed import Client

__all__ = ["CONNECT_TIMEOUT_S", "dask_client", "map_chunks"]

logger = logging.getLogger(__name__)

#: Seconds to wait for a ``--scheduler`` to answer before giving up (the issue asks < 30 s).
CONNECT_TIMEOUT_S = 15


@contextlib.contextmanager
def dask_client(
    workers: int = 1,
    scheduler: str | None = None,
    client: Client | None = None,
    *,
    quiet: bool = False,
) -> Iterator[Client | None]:
    """The Dask client a step runs on, or None for the in-process path.

    Parameters
    ----------
    workers : int
        ``1`` (default): no cluster, the step runs in this process. ``N > 1``: a
        ``distributed.LocalCluster`` of N worker processes, one thread each, closed on exit.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``, e.g. one started by
        dask-jobqueue); ``workers`` is then ignored. Fails within :data:`CONNECT_TIMEOUT_S`
        seconds if nothing answers there.
    client : distributed.Client, optional
        An existing client: used as is and left open.
    quiet : bool
        Do not log the dashboard address (logged at INFO otherwise; the ``simlens`` command
        shows it on stderr).

    Raises
    ------
    SimlensValueError
        ``workers`` below 1, or no scheduler answers at ``scheduler``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SimlensValueError(f"workers: expected an integer >= 1, got {workers!r}")
    if client is not None:
        yield client
        return
    if scheduler is None and workers == 1:
        yield None
        return
    import distributed

    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                made = distributed.Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError, ValueError) as err:
                raise SimlensValueError(
                    f"--scheduler: no Dask scheduler answers at {scheduler!r} within "
                    f"{CONNECT_TIMEOUT_S} s ({type(err).__name__}); start one or check the address"
                ) from None
        else:
            import dask

            # Dask's workers default to MALLOC_TRIM_THRESHOLD_=65536, which also turns off
            # glibc's dynamic mmap threshold: every large numpy temporary is then mmapped
            # afresh, and a chunk costs ~40% more CPU than in a plain process (measured by
            # scripts/bench_scale.py against a ProcessPoolExecutor). None unsets it. The
            # worker's statistical profiler (a stack sample every 10 ms, kept for the
            # dashboard) cost ~7% of a chunk's CPU and grew the workers' memory; off.
            local = {
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                "distributed.worker.profile.enabled": False,
            }
            with dask.config.set(local):
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=40,  # logging.ERROR: a killed worker is Dask's to report
                    )
                )
            made = distributed.Client(cluster)
        stack.callback(made.close)
        if not quiet:
            logger.info("dask dashboard: %s", made.dashboard_link)
        yield made


def _workers_of(client: Client) -> int:
    try:
        return max(1, len(client.scheduler_info().get("workers", {})))
    except Exception:  # an unusual scheduler: any positive guess only sizes the window
        return 1


def map_chunks(
    func: Callable[..., Any],
    n_chunks: int,
    *args: Any,
    client: Client | None = None,
    ordered: bool = False,
    progress: bool = True,
    desc: str = "chunks",
    weights: Callable[[Any], int] | None = None,
    total: int | None = None,
    unit: str = "chunk",
) -> Iterator[tuple[int, Any]]:
    """Yield ``(k, func(*args, k))`` for ``k`` in ``range(n_chunks)``.

    Without a client the calls run here, in order. With one they run on its workers;
    results come back as they complete (``ordered=False``, the whole map submitted at once,
    for tasks that write their own output and return small summaries), or in chunk order
    (``ordered=True``, at most two tasks per worker in flight, so the driver holds a bounded
    number of results). ``func`` must be pure in its arguments: the results are the same either
    way. A tqdm bar advances by ``weights(result)`` (default 1) per chunk, to ``total``.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=n_chunks if total is None else total, desc=desc, unit=unit, disable=not progress
    )
    with bar:
        if client is None:
            for k in range(n_chunks):
                result = func(*args, k)
                bar.update(1 if weights is None else weights(result))
                yield k, result
            return
        from distributed import as_completed

        if not ordered:
            futures = client.map(func, *([a] * n_chunks for a in args), range(n_chunks))
            index = {f.key: k for k, f in enumerate(futures)}
            try:
                for future in as_completed(futures):
                    result = future.result()
                    k = index[future.key]
                    future.release()
                    bar.update(1 if weights is None else weights(result))
                    yield k, result
            finally:
                client.cancel(futures)
            return
        window = 2 * _workers_of(client)
        pending: dict[int, Any] = {}
        next_submit = 0
        try:
            for k in range(n_chunks):
                while next_submit < n_chunks and next_submit < k + window:
                    pending[next_submit] = client.submit(func, *args, next_submit)
                    next_submit += 1
                future = pending.pop(k)
                result = future.result()
                future.release()
                bar.update(1 if weights is None else weights(result))
                yield k, result
        finally:
            client.cancel(list(pending.values()))
