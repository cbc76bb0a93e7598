"""Score thresholds: set at a false-positive rate, listed as requested, shown as given.

A threshold at a false-positive rate ``f`` from ``N`` negatives: with ``j = floor(f N)`` false
positives allowed, ``t`` is just above the ``(j+1)``-th highest negative score, so at most ``j``
negatives (empirical FPR <= f) have ``p >= t``; needs ``f N >= 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from probe.errors import ProbeValueError

__all__ = ["format_threshold", "threshold_at_fpr", "threshold_list"]


def threshold_at_fpr(negative_scores: Any, fpr: float) -> float:
    """Lowest score threshold whose empirical false-positive rate is at most ``fpr``.

    With ``N`` negatives and ``j = floor(fpr N)``, returns the smallest float above the
    ``(j+1)``-th highest negative score, so that at most ``j`` negatives have ``p >= t``.

    Raises
    ------
    ProbeValueError
        If ``fpr N < 1``: the rate cannot be resolved with so few negatives (the number needed
        is given).
    """
    neg = np.sort(np.asarray(negative_scores, dtype=np.float64).ravel())[::-1]
    f = float(fpr)
    if not 0.0 < f < 1.0:
        raise ProbeValueError(f"fpr must be in (0, 1); got {fpr!r}")
    if neg.size * f < 1.0 - 1e-9:
        raise ProbeValueError(
            f"fpr={f:g} needs at least {math.ceil(1.0 / f - 1e-9)} negatives to be resolved; "
            f"got {neg.size}"
        )
    j = math.floor(f * neg.size + 1e-9)
    if j >= neg.size:
        return float(neg[-1])
    return float(np.nextafter(neg[j], np.inf))


def format_threshold(t: float) -> str:
    """A score threshold with enough digits to tell it from 1 (and 0): 0.9996, never "1".

    At least 4 significant digits, and two of ``1 - t`` (or of ``t`` near 0)."""
    t = float(t)
    if not math.isfinite(t) or t in (0.0, 1.0):
        return f"{t:g}"
    gap = min(abs(1.0 - t), abs(t)) or 1e-16
    digits = max(4, math.ceil(-math.log10(gap)) + 2)
    return f"{t:.{min(digits, 17)}g}"


def threshold_list(
    thresholds: Sequence[float], fpr: float | Sequence[float] | None, neg: np.ndarray
) -> list[tuple[float, str, float]]:
    """(threshold, label, target fpr or NaN) for every requested threshold."""
    out: list[tuple[float, str, float]] = []
    for t in thresholds:
        tf = float(t)
        if not math.isfinite(tf):
            raise ProbeValueError(f"thresholds must be finite; got {t!r}")
        out.append((tf, repr(tf), math.nan))  # the label is the threshold as given
    if fpr is not None:
        rates = [fpr] if isinstance(fpr, float | int) else list(fpr)
        if neg.size == 0:
            raise ProbeValueError("fpr= needs negatives (label 0) to set thresholds from")
        for f in rates:
            out.append((threshold_at_fpr(neg, float(f)), f"fpr={float(f):g}", float(f)))
    if not out:
        raise ProbeValueError("give at least one threshold (thresholds= or fpr=)")
    return out
