"""2-D selection surfaces: completeness of the lenses on a grid of two lens properties.

:func:`selection_surface` bins the lenses by two properties (e.g. source g against lens r) and
counts, per cell and threshold, the lenses found, with the same binomial intervals and thresholds
as :func:`probe.selection.selection_function`; :class:`SelectionSurface` holds the table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.binning import Binning
from probe.completeness.inputs import bins_for, scores_labels
from probe.completeness.plots import plot_surface
from probe.completeness.thresholds import threshold_list
from probe.errors import ProbeKeyError, ProbeValueError
from probe.provenance import now_utc, package_versions
from probe.statistics import Interval, binomial_interval, check_confidence
from probe.sweeps.result import save_table

__all__ = ["SelectionSurface", "selection_surface"]


# --------------------------------------------------------------------------------------------
# 2-D selection surfaces
# --------------------------------------------------------------------------------------------


@dataclass
class SelectionSurface:
    """Completeness on a grid of two lens properties (:func:`selection_surface`).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (threshold, x bin, y bin): ``x, y, threshold, n, completeness, ci_low,
        ci_high, width`` (``ci_high - ci_low``), ``k``, ``thin`` (``n < min_count``: masked in
        plots), ``threshold_label``.
    """

    table: pd.DataFrame
    x_binning: Binning
    y_binning: Binning
    x_name: str
    y_name: str
    x_unit: str
    y_unit: str
    interval: str
    confidence: float
    min_count: int
    provenance: dict[str, Any]
    label: str = ""

    def grid(self, column: str, threshold: float | str | None = None) -> pd.DataFrame:
        """``column`` at one threshold as a labelled (n_x bins, n_y bins) table: rows are the
        x bins, columns the y bins, each an :class:`pandas.IntervalIndex` named after its
        property (``grid(...).loc[x_value, y_value]`` reads the cell holding those values;
        ``.to_numpy()`` gives the bare array)."""
        labels = self.table["threshold_label"].unique().tolist()
        if threshold is None:
            if len(labels) != 1:
                raise ProbeValueError(f"several thresholds ({labels}): name one")
            sel = self.table
        elif isinstance(threshold, str):
            sel = self.table[self.table["threshold_label"] == threshold]
        else:
            sel = self.table[np.isclose(self.table["threshold"], float(threshold))]
        if sel.empty:
            raise ProbeKeyError(f"threshold {threshold!r} not in {labels}")
        nx, ny = self.x_binning.n_bins, self.y_binning.n_bins
        return pd.DataFrame(
            sel[column].to_numpy().reshape(nx, ny),
            index=pd.IntervalIndex.from_breaks(self.x_binning.bin_edges, name=self.x_name,
                                               closed="left"),
            columns=pd.IntervalIndex.from_breaks(self.y_binning.bin_edges, name=self.y_name,
                                                 closed="left"),
        )  # fmt: skip

    def counts(self) -> np.ndarray:
        """Lenses per cell, shape (n_x bins, n_y bins)."""
        first = self.table["threshold_label"].iloc[0]
        return self.grid("n", first).to_numpy().astype(np.int64)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table with its metadata (as :meth:`SelectionFunction.save`)."""
        meta = {
            "kind": "selection_surface",
            "x": {"name": self.x_name, "unit": self.x_unit, **self.x_binning.to_dict()},
            "y": {"name": self.y_name, "unit": self.y_unit, **self.y_binning.to_dict()},
            "interval": self.interval,
            "confidence": self.confidence,
            "min_count": self.min_count,
            "label": self.label,
            "provenance": self.provenance,
        }
        return save_table(self.table, meta, path)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Heat maps of completeness and interval width per threshold (:func:`plot_surface`)."""
        return plot_surface(self, path, **kwargs)


def _cells_frame(
    gx: np.ndarray,
    gy: np.ndarray,
    threshold: float,
    threshold_label: str,
    counts: np.ndarray,
    k: np.ndarray,
    completeness: np.ndarray,
    interval: tuple[np.ndarray, np.ndarray],
    min_count: int,
) -> pd.DataFrame:
    """One threshold's rows of a surface table: one row per cell (``gx``, ``gy``: its centre)."""
    lo, hi = interval
    return pd.DataFrame(
        {
            "x": gx.ravel(),
            "y": gy.ravel(),
            "threshold": threshold,
            "n": counts,
            "completeness": completeness,
            "ci_low": lo,
            "ci_high": hi,
            "width": hi - lo,
            "k": k,
            "thin": counts < min_count,
            "threshold_label": threshold_label,
        }
    )


def selection_surface(
    scores: Any,
    labels: Any,
    x: Any,
    y: Any,
    x_bins: Binning | int | Sequence[float],
    y_bins: Binning | int | Sequence[float],
    thresholds: Sequence[float] = (0.5, 0.9),
    *,
    fpr: float | Sequence[float] | None = None,
    interval: Interval = "wilson",
    confidence: float = 0.95,
    min_count: int = 20,
    x_name: str = "x",
    y_name: str = "y",
    x_unit: str = "",
    y_unit: str = "",
    label: str = "",
) -> SelectionSurface:
    """Completeness of the lenses on a 2-D grid (e.g. source g against lens r), per threshold.

    Arguments as :func:`selection_function`, with two properties and two binnings. Cells with
    fewer than ``min_count`` lenses are ``thin`` (masked in plots); every cell keeps its count
    and interval width.
    """
    p, lab = scores_labels(scores, labels)
    xx = np.asarray(x, dtype=np.float64).ravel()
    yy = np.asarray(y, dtype=np.float64).ravel()
    if xx.size != p.size or yy.size != p.size:
        raise ProbeValueError(f"x and y need {p.size} entries; got {xx.size} and {yy.size}")
    c = check_confidence(confidence)
    is_lens = lab == 1
    if not is_lens.any():
        raise ProbeValueError("no lenses (label 1): completeness needs lenses")
    xb = bins_for(x_bins, xx[is_lens])
    yb = bins_for(y_bins, yy[is_lens])
    ix = xb.assign(xx[is_lens], name="x of lenses")
    iy = yb.assign(yy[is_lens], name="y of lenses")
    keep = (ix >= 0) & (iy >= 0)
    cell = ix[keep] * yb.n_bins + iy[keep]
    ncell = xb.n_bins * yb.n_bins
    counts = np.bincount(cell, minlength=ncell)
    pl = p[is_lens][keep]
    neg = p[~is_lens]
    gx, gy = np.meshgrid(xb.centres, yb.centres, indexing="ij")
    frames = []
    for t, tlabel, _ in threshold_list(thresholds, fpr, neg):
        k = np.bincount(cell, weights=pl >= t, minlength=ncell).astype(np.int64)
        lo, hi = binomial_interval(k, counts, method=interval, confidence=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp = np.where(counts > 0, k / np.maximum(counts, 1), np.nan)
        frames.append(_cells_frame(gx, gy, t, tlabel, counts, k, comp, (lo, hi), min_count))
    return SelectionSurface(
        table=pd.concat(frames, ignore_index=True),
        x_binning=xb,
        y_binning=yb,
        x_name=x_name,
        y_name=y_name,
        x_unit=x_unit,
        y_unit=y_unit,
        interval=interval,
        confidence=c,
        min_count=int(min_count),
        provenance={
            "created": now_utc(),
            "versions": package_versions(),
            "n_dropped": int((~keep).sum()),
        },
        label=label or "model",
    )
