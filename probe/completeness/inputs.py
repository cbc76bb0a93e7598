"""Inputs of every completeness measurement: scores with their labels, and bins.

Shared by :func:`probe.selection.selection_function`, :func:`probe.selection_surface`,
:func:`probe.selected_vs_parent` and :func:`probe.completeness.rates.tpr_before`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probe.binning import Binning
from probe.errors import ProbeValueError

__all__ = ["bins_for", "scores_labels"]


def scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scores as finite float64 and labels as 0/1 int64 (all 1 when ``labels`` is None)."""
    p = np.asarray(scores, dtype=np.float64).ravel()
    if p.size == 0:
        raise ProbeValueError("scores is empty")
    if not np.all(np.isfinite(p)):
        i = int(np.flatnonzero(~np.isfinite(p))[0])
        raise ProbeValueError(f"scores must be finite; index {i} is {p[i]}")
    if labels is None:
        return p, np.ones(p.size, dtype=np.int64)
    lab = np.asarray(labels).ravel()
    if lab.size != p.size:
        raise ProbeValueError(f"labels has {lab.size} entries for {p.size} scores")
    if not np.all(np.isin(lab, (0, 1))):
        raise ProbeValueError("labels must be 0 (non-lens) or 1 (lens)")
    return p, lab.astype(np.int64)


def bins_for(bins: Any, values: np.ndarray) -> Binning:
    """``bins`` as a :class:`probe.Binning`: itself, ``n`` uniform bins over ``values``'
    range, or explicit edges."""
    if isinstance(bins, Binning):
        return bins
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        return Binning.uniform(float(values.min()), float(values.max()), n=int(bins))
    return Binning.edges(bins)
