"""TPR0 and TPR10: the fraction of lenses found before the first (tenth) false positive.

``TPR_k`` (TPR0: k = 1, TPR10: k = 10) is the fraction of lenses scoring strictly above the
k-th highest negative, i.e. found before the k-th false positive when objects are inspected in
order of decreasing score (Metcalf et al. 2019's TPR0/TPR10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from probe.completeness.inputs import scores_labels
from probe.errors import ProbeValueError
from probe.statistics import Interval, binomial_interval

__all__ = ["Rate", "tpr_before"]


@dataclass(frozen=True)
class Rate:
    """A fraction of lenses with its interval: ``value`` (``k / n``), ``low``, ``high``.

    ``threshold`` is the score threshold it corresponds to (lenses with ``p >= threshold``).
    """

    value: float
    low: float
    high: float
    k: int
    n: int
    threshold: float
    method: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dict(self.__dict__)


def tpr_before(
    scores: Any,
    labels: Any,
    k: int,
    *,
    interval: Interval = "wilson",
    confidence: float = 0.95,
) -> Rate:
    """Fraction of lenses found before the ``k``-th false positive (``k = 1``: TPR0, 10: TPR10).

    Lenses count as found when their score is strictly above the ``k``-th highest negative
    score (ties with a negative are not found: inspecting in score order, they come with it).
    """
    p, lab = scores_labels(scores, labels)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ProbeValueError(f"k must be a positive integer; got {k!r}")
    neg = np.sort(p[lab == 0])[::-1]
    pos = p[lab == 1]
    if neg.size < k:
        raise ProbeValueError(
            f"TPR before the {k}th false positive needs at least {k} negatives; got {neg.size}"
        )
    if pos.size == 0:
        raise ProbeValueError("no lenses (label 1) to compute a true-positive rate")
    cut = float(neg[k - 1])
    found = int(np.count_nonzero(pos > cut))
    lo, hi = binomial_interval(found, pos.size, method=interval, confidence=confidence)
    return Rate(
        value=found / pos.size,
        low=float(lo),
        high=float(hi),
        k=found,
        n=int(pos.size),
        threshold=float(np.nextafter(cut, np.inf)),
        method=f"lenses with p > {k}th highest negative score; {interval} interval",
    )
