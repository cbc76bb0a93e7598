"""Per-bin cells of correct-class scores: the units a verdict (:mod:`probe.gating.verdicts`) tests.

:class:`ScoreData` holds one expectation's checked per-image scores and cuts them into
:class:`Cell` s (one per bin, or per sweep value) with their bootstrap replicates, drawn from
stream ``(GATE_STREAM, crc32(name), 0, bin)`` so a cell depends on the seed and the expectation
alone.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from probe import rng as _rng
from probe.statistics import bootstrap_means

if TYPE_CHECKING:
    from probe.gating.expectations import Expectation

__all__ = ["GATE_STREAM", "Cell", "ScoreData", "Slice", "class_boot"]


GATE_STREAM = 5
"""First element of the spawn keys used here (probe.rng's own streams are 0-3)."""


@dataclass(frozen=True)
class Slice:
    """One bin's images: ``index`` into the set, ``row`` of the score matrix (sweep value)."""

    label: str
    low: float
    high: float
    row: int
    index: np.ndarray


@dataclass
class Cell:
    """One bin's test: estimate, bootstrap replicates (or binomial count) and the region
    ``above < value < below`` where the property holds (NaN: that side is open)."""

    label: str
    low: float
    high: float
    n: int
    estimate: float
    boot: np.ndarray | None = None
    above: float = np.nan
    below: float = np.nan
    k: int | None = None  # completeness: lenses passing the threshold (binomial test)


class ScoreData:
    """Correct-class scores of one expectation's images, with its bins and random streams.

    ``scores`` and ``baseline`` are ``(k, n)``: one row per sweep value (one row otherwise).
    """

    def __init__(
        self,
        expectation: Expectation,
        scores: np.ndarray,
        labels: np.ndarray,
        *,
        parameter: np.ndarray | None,
        baseline: np.ndarray | None,
        n_boot: int,
        entropy: int,
    ) -> None:
        self.expectation = expectation
        self.scores = scores
        self.labels = labels
        self.parameter = parameter
        self.baseline = baseline
        self.n_boot = n_boot
        self.entropy = entropy
        self.key = zlib.crc32(expectation.name.encode("utf-8"))

    def gen(self, b: int) -> np.random.Generator:
        """The bootstrap generator of bin ``b``."""
        return _rng.child(self.entropy, GATE_STREAM, self.key, 0, b)

    def group_index(self, group: str) -> np.ndarray:
        """Indices of the images of ``group`` ("lens", "nonlens" or "all")."""
        if group == "all":
            return np.arange(self.labels.size)
        return np.flatnonzero(self.labels == (1 if group == "lens" else 0))

    def slices(self, group: str) -> list[Slice]:
        """The bins of the expectation, restricted to ``group``."""
        e, gi = self.expectation, self.group_index(group)
        if e.mode == "sweep":
            return [Slice(f"{e.over}={v:g}", v, v, j, gi) for j, v in enumerate(e.values)]
        binning = e.binning
        if binning is None:
            return [Slice("all images", np.nan, np.nan, 0, gi)]
        assert self.parameter is not None
        which = binning.assign(self.parameter[gi])
        last = binning.n_bins - 1
        return [
            Slice(f"{e.over} [{lo:g}, {hi:g}{']' if b == last else ')'}", lo, hi, 0, gi[which == b])
            for b, (lo, hi) in enumerate(zip(binning.lows, binning.highs))
        ]

    def boot_cell(
        self,
        b: int,
        label: str,
        low: float,
        high: float,
        x: np.ndarray,
        index: np.ndarray,
        *,
        above: float = np.nan,
        below: float = np.nan,
    ) -> Cell:
        """A bootstrap cell for the mean of ``x`` (the statistic of images ``index``)."""
        boot = class_boot(x, self.labels[index], self.n_boot, self.gen(b))
        est = float(x.mean()) if x.size else np.nan
        return Cell(label, low, high, int(x.size), est, boot, above, below)

    def binomial_cell(
        self, label: str, low: float, high: float, passed: np.ndarray, min_fraction: float
    ) -> Cell:
        """A completeness cell: ``passed`` flags the lenses above the score threshold."""
        n, k = int(passed.size), int(np.sum(passed))
        return Cell(label, low, high, n, k / n if n else np.nan, None, min_fraction, np.nan, k)

    def _bin_boots(self, group: str) -> tuple[list[Slice], np.ndarray, list[np.ndarray | None]]:
        slices = self.slices(group)
        s = self.scores[0]
        means = np.array([s[sl.index].mean() if sl.index.size else np.nan for sl in slices])
        boots = [
            class_boot(s[sl.index], self.labels[sl.index], self.n_boot, self.gen(b))
            for b, sl in enumerate(slices)
        ]
        return slices, means, boots

    def binned_cells(
        self, group: str, stat: Callable[[Any, Any], Any], *, above: float, below: float
    ) -> list[Cell]:
        """Cells of ``stat(bin mean, mean over the range)`` for a binned parameter."""
        slices, means, boots = self._bin_boots(group)
        counts = np.array([sl.index.size for sl in slices], dtype=float)
        if counts.sum() == 0:
            return [Cell(sl.label, sl.low, sl.high, 0, np.nan) for sl in slices]
        w = counts / counts.sum()
        total = float(np.nansum(w * means))
        # A one-image bin has a fixed mean in every replicate; an empty one has weight 0.
        fixed = [
            bt if bt is not None else np.full(self.n_boot, 0.0 if np.isnan(m) else m)
            for bt, m in zip(boots, means)
        ]
        total_boot = np.sum([wk * bt for wk, bt in zip(w, fixed)], axis=0)
        return [
            Cell(
                sl.label,
                sl.low,
                sl.high,
                int(sl.index.size),
                float(stat(m, total)),
                None if bt is None else stat(bt, total_boot),
                above,
                below,
            )
            for sl, m, bt in zip(slices, means, boots)
        ]

    def neighbour_cells(
        self, group: str, *, above: float = np.nan, below: float = np.nan
    ) -> list[Cell]:
        """Cells of the change of mean score from each bin to the next (independent bins)."""
        slices, means, boots = self._bin_boots(group)
        cells = []
        for b in range(len(slices) - 1):
            s0, s1 = slices[b], slices[b + 1]
            label = f"{s0.label} -> {s1.label}"
            n = int(min(s0.index.size, s1.index.size))
            b0, b1 = boots[b], boots[b + 1]
            if b0 is None or b1 is None:
                cells.append(Cell(label, s0.low, s1.high, n, np.nan, None, above, below))
            else:
                est = float(means[b + 1] - means[b])
                cells.append(Cell(label, s0.low, s1.high, n, est, b1 - b0, above, below))
        return cells


def class_boot(
    x: np.ndarray, labels: np.ndarray, n_boot: int, gen: np.random.Generator
) -> np.ndarray | None:
    """Bootstrap means of ``x`` resampled within each class (class counts kept); None if n < 2."""
    if x.size < 2:
        return None
    total = np.zeros(n_boot)
    for cls in (1, 0):  # fixed order: the generator is consumed the same way every time
        part = x[labels == cls]
        if part.size:
            total += part.size * bootstrap_means(part, n_boot, gen)
    return total / x.size
