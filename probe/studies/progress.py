"""The clocks and progress lines of a study run (:func:`probe.studies.run.run_study`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["StudyClock"]

# The study's progress lines keep the logger name they have always had.
logger = logging.getLogger("probe.study")


class StudyClock:
    """Wall and CPU time of each step of a study, and where its progress lines go.

    ``timings[label]`` is a step's wall time (s) and ``timings["cpu " + label]`` its process
    CPU time (s, all threads): the CPU time is what an idle machine needs, whatever the load on
    the one that ran it. :meth:`say` sends a progress line to ``log`` if given, else logs it at
    INFO (logger ``probe.study``) when ``progress``, else drops it.
    """

    def __init__(self, log: Callable[[str], None] | None, progress: bool) -> None:
        self.t_start, self.c_start = time.perf_counter(), time.process_time()
        self.timings: dict[str, float] = {}
        t_start = self.t_start
        self.say: Callable[[str], None] = log or (
            (lambda s: logger.info("[study %6.0f s] %s", time.perf_counter() - t_start, s))
            if progress
            else (lambda s: None)
        )

    @staticmethod
    def start() -> tuple[float, float]:
        """Wall and CPU clocks now (s): the ``t0, c0`` of :meth:`clock`."""
        return time.perf_counter(), time.process_time()

    def clock(self, label: str, t0: float, c0: float) -> None:
        """Record the wall and CPU time of step ``label`` since ``t0, c0`` (:meth:`start`)."""
        self.timings[label] = time.perf_counter() - t0
        self.timings[f"cpu {label}"] = time.process_time() - c0

    @staticmethod
    def elapsed(t0: float) -> float:
        """Wall time since ``t0`` (s)."""
        return time.perf_counter() - t0

    def total(self) -> None:
        """Record the whole run's wall and CPU time (``total``, ``cpu total``)."""
        self.timings["total"] = time.perf_counter() - self.t_start
        self.timings["cpu total"] = time.process_time() - self.c_start
