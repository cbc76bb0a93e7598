"""Steps of :meth:`probe.Probe.by_parameter`: the binning, per-bin counts, the per-image table."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from probe.binning import Binning
from probe.errors import ProbeTypeError, ProbeValueError


def resolve_binning(values: np.ndarray, bins: Any) -> Binning:
    """``bins`` as a :class:`Binning`: an int ``k`` means ``k`` uniform bins over ``values``.

    Raises
    ------
    ProbeValueError
        ``bins`` is an int and all ``values`` are equal.
    ProbeTypeError
        ``bins`` is neither a Binning nor an int.
    """
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        if values.min() == values.max():
            raise ProbeValueError(f"values are all {values.min()}; cannot make {bins} bins")
        return Binning.uniform(values.min(), values.max(), n=int(bins))
    if isinstance(bins, Binning):
        return bins
    raise ProbeTypeError(f"bins must be a Binning or an int; got {bins!r}")


def bin_counts(binning: Binning, bin_index: np.ndarray) -> pd.DataFrame:
    """One row per bin: its index, edges, centre and the count of images in it (``bin_index``
    -1: outside every bin, not counted)."""
    counts = np.bincount(bin_index[bin_index >= 0], minlength=binning.n_bins)
    return pd.DataFrame(
        {
            "bin": np.arange(binning.n_bins),
            "low": binning.lows,
            "high": binning.highs,
            "centre": binning.centres,
            "count": counts,
        }
    )


def binned_scores(
    binning: Binning,
    bin_index: np.ndarray,
    values: np.ndarray,
    labels: np.ndarray,
    p_lens: np.ndarray,
    score: np.ndarray,
) -> pd.DataFrame:
    """Per-image table: ``value`` is the bin centre (NaN outside every bin), ``parameter`` the
    image's own value."""
    kept = bin_index >= 0
    centre_of = np.where(kept, binning.centres[np.maximum(bin_index, 0)], np.nan)
    return pd.DataFrame(
        {
            "sample": np.arange(values.size),
            "value": centre_of,
            "label": labels,
            "p_lens": p_lens,
            "score": score,
            "parameter": values,
            "bin": bin_index,
        }
    )
