"""The steps of :func:`probe.selection.selection_function`: lenses and negatives apart, lenses
binned, found lenses counted per bin and threshold, provenance.

Completeness is ``k / n``: of the ``n`` lenses in a bin, the ``k`` with ``p >= t``; the
interval is :func:`probe.statistics.binomial_interval`'s. Non-lenses only set the false-positive
rate ``fpr`` of each threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from probe.binning import Binning
from probe.completeness.inputs import bins_for, scores_labels
from probe.errors import ProbeValueError
from probe.provenance import now_utc, package_versions
from probe.statistics import Interval, binomial_interval, check_confidence

__all__ = ["LensSample", "bin_lenses", "count_found", "lens_sample", "selection_provenance"]


@dataclass(frozen=True)
class LensSample:
    """The lenses' property values and scores, and the scores of the negatives (non-lenses)."""

    values: np.ndarray
    scores: np.ndarray
    negatives: np.ndarray


def lens_sample(
    scores: Any, labels: Any, values: Any, *, interval: Interval, confidence: float
) -> tuple[LensSample, float]:
    """The checked inputs split by label, and the checked ``confidence`` (in (0, 1))."""
    p, lab = scores_labels(scores, labels)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size != p.size:
        raise ProbeValueError(f"values has {x.size} entries for {p.size} scores")
    if interval not in ("wilson", "jeffreys"):
        raise ProbeValueError(f"interval must be 'wilson' or 'jeffreys'; got {interval!r}")
    c = check_confidence(confidence)
    is_lens = lab == 1
    if not is_lens.any():
        raise ProbeValueError("no lenses (label 1): completeness needs lenses")
    return LensSample(values=x[is_lens], scores=p[is_lens], negatives=p[~is_lens]), c


def bin_lenses(bins: Binning | int | Any, values: np.ndarray) -> tuple[Binning, np.ndarray]:
    """The binning (an int: uniform over the finite values) and each lens's bin (-1: dropped
    by the binning's ``outside`` rule)."""
    finite = np.isfinite(values)
    binning = bins_for(bins, values[finite] if finite.any() else values)
    return binning, binning.assign(values, name="values of lenses")


def _bin_rows(
    binning: Binning,
    bin_index: np.ndarray,
    hit: np.ndarray,
    counts: np.ndarray,
    threshold: tuple[float, str, float],
    fp: float,
    *,
    interval: Interval,
    confidence: float,
    min_count: int,
) -> list[dict[str, Any]]:
    """The table's rows of one threshold: one per bin."""
    nb = binning.n_bins
    k = np.bincount(bin_index, weights=hit, minlength=nb).astype(np.int64)
    lo, hi = binomial_interval(k, counts, method=interval, confidence=confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        comp = np.where(counts > 0, k / np.maximum(counts, 1), np.nan)
    return [
        {
            "value": float(binning.centres[b]),
            "threshold": threshold[0],
            "n": int(counts[b]),
            "completeness": float(comp[b]),
            "ci_low": float(lo[b]),
            "ci_high": float(hi[b]),
            "k": int(k[b]),
            "bin_low": float(binning.lows[b]),
            "bin_high": float(binning.highs[b]),
            "threshold_label": threshold[1],
            "fpr": fp,
            "low_count": bool(counts[b] < min_count),
        }
        for b in range(nb)
    ]


def _overall_row(
    hit: np.ndarray,
    negatives: np.ndarray,
    threshold: tuple[float, str, float],
    fp: float,
    *,
    interval: Interval,
    confidence: float,
) -> dict[str, Any]:
    """The overall row of one threshold: all binned lenses together."""
    t, tlabel, target = threshold
    kt, nt = int(hit.sum()), int(hit.size)
    olo, ohi = binomial_interval(kt, nt, method=interval, confidence=confidence)
    return {
        "threshold": t,
        "threshold_label": tlabel,
        "n": nt,
        "k": kt,
        "completeness": kt / nt if nt else math.nan,
        "ci_low": float(olo),
        "ci_high": float(ohi),
        "fpr": fp,
        "target_fpr": target,
        "n_negatives": int(negatives.size),
        "n_false_positives": int(np.count_nonzero(negatives >= t)),
    }


def count_found(
    sample: LensSample,
    binning: Binning,
    bin_index: np.ndarray,
    thresholds: list[tuple[float, str, float]],
    *,
    interval: Interval,
    confidence: float,
    min_count: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(table, overall, samples)`` of :class:`probe.SelectionFunction`: found lenses per
    (threshold, bin), per threshold, and the binned lenses (``value, p_lens, bin``).

    ``thresholds``: ``(threshold, label, target fpr or NaN)`` of
    :func:`probe.completeness.thresholds.threshold_list`.
    """
    keep = bin_index >= 0
    kept_index, kept_scores = bin_index[keep], sample.scores[keep]
    counts = np.bincount(kept_index, minlength=binning.n_bins)
    neg = sample.negatives
    rows: list[dict[str, Any]] = []
    overall = []
    for threshold in thresholds:
        t = threshold[0]
        hit = kept_scores >= t
        fp = float(np.mean(neg >= t)) if neg.size else math.nan
        rows += _bin_rows(binning, kept_index, hit, counts, threshold, fp, interval=interval,
                          confidence=confidence, min_count=min_count)  # fmt: skip
        overall.append(_overall_row(hit, neg, threshold, fp, interval=interval,
                                    confidence=confidence))  # fmt: skip
    samples = pd.DataFrame({"value": sample.values[keep], "p_lens": kept_scores, "bin": kept_index})
    return pd.DataFrame(rows), pd.DataFrame(overall), samples


def selection_provenance(
    sample: LensSample, bin_index: np.ndarray, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """When, with which packages, how many lenses (and dropped) and negatives; then ``extra``."""
    return {
        "created": now_utc(),
        "versions": package_versions(),
        "n_lenses": int(sample.values.size),
        "n_dropped": int((bin_index < 0).sum()),
        "n_negatives": int(sample.negatives.size),
        **dict(extra or {}),
    }
