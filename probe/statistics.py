"""Statistics of correct-class scores: per-bin summaries (trend estimates: :mod:`probe.trends`),
and binomial intervals of proportions (completeness, flagged fractions).

All formulas are named in :data:`COLUMN_METHODS` and in each :class:`~probe.trends.Trend`'s
``method``, and both travel with saved results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.errors import ProbeValueError
from probe.validation import check_positive_int

Interval = Literal["wilson", "jeffreys"]
"""Binomial interval methods of :func:`binomial_interval`."""

TrendMethod = Literal["images", "weighted"]
TREND_METHODS: tuple[str, ...] = ("images", "weighted")
"""Trend statistics of unpaired results (:attr:`StatsParams.trend`)."""

GROUPS: tuple[str, ...] = ("lens", "nonlens", "all")
"""Sample groups reported for every bin or value: label 1, label 0, and both pooled."""

TABLE_COLUMNS: tuple[str, ...] = (
    "value",
    "group",
    "n",
    "mean",
    "std",
    "sem",
    "ci_low",
    "ci_high",
    "accuracy",
    "low_count",
)


@dataclass(frozen=True)
class StatsParams:
    """Settings of every statistic probe reports (one object instead of scattered flags).

    Parameters
    ----------
    n_boot : int
        Bootstrap resamples for intervals of means and slopes.
    confidence : float
        Confidence level of all intervals, in (0, 1).
    min_count : int
        A bin or value whose group has fewer samples is flagged ``low_count`` (kept, not dropped).
    threshold : float
        A sample counts as correct when its correct-class score exceeds this.
    trend : {"images", "weighted"}
        Trend of unpaired results (binned parameters, unpaired re-simulations). "images"
        (default): least squares over images (bins weighted by their counts) with a bootstrap
        interval over images, :func:`image_trend`. "weighted": bins weighted by 1/sem^2,
        :func:`wls_trend`; biased when scores saturate (a near-perfect bin has a tiny sem and
        takes almost all the weight, so the slope is the one of the flat end): kept for
        comparison, not for verdicts. Paired results always use :func:`paired_trend`.
    """

    n_boot: int = 1000
    confidence: float = 0.95
    min_count: int = 30
    threshold: float = 0.5
    trend: TrendMethod = "images"

    def __post_init__(self) -> None:
        check_positive_int(self.n_boot, "n_boot", minimum=10)
        if self.trend not in TREND_METHODS:
            raise ProbeValueError(
                f"trend must be one of {', '.join(TREND_METHODS)}; got {self.trend!r}"
            )
        check_positive_int(self.min_count, "min_count", minimum=0)
        if not 0.0 < float(self.confidence) < 1.0:
            raise ProbeValueError(f"confidence must be in (0, 1); got {self.confidence!r}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ProbeValueError(f"threshold must be in [0, 1]; got {self.threshold!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy, for provenance."""
        return asdict(self)


def column_methods(params: StatsParams) -> dict[str, str]:
    """What each column of a result table is, as a formula (saved with every result)."""
    pct = f"{100 * params.confidence:g}%"
    return {
        "score": "s = p(lens) for lenses, 1 - p(lens) for non-lenses (correct-class score, "
        "float64)",
        "n": "number of samples in the bin/value and group",
        "mean": "mean(s) = sum(s_i) / n",
        "std": "sqrt(sum((s_i - mean)^2) / (n - 1)) (ddof=1; NaN for n < 2)",
        "sem": "std / sqrt(n)",
        "ci_low, ci_high": f"{pct} percentile bootstrap interval of the mean: {params.n_boot} "
        "resamples with replacement, seeded, stratified by class (lenses and non-lenses resampled "
        "separately; 'all' = (n_lens m_lens* + n_nonlens m_nonlens*) / n); NaN for n < 2",
        "accuracy": f"fraction of samples with s > {params.threshold:g}",
        "low_count": f"n < {params.min_count} (flagged, never dropped)",
    }


def bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``x`` with replacement (chunked to bound memory)."""
    n = x.size
    means = np.empty(n_boot)
    # At most ~4 million indices at a time (16 MB of int32) whatever n.
    chunk = max(1, 4_000_000 // max(n, 1))
    dtype = np.int32 if n < 2**31 else np.int64
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=dtype)
        means[start:stop] = x[idx].mean(axis=1)
    return means


def summarise_group(
    scores: np.ndarray, params: StatsParams, boot: np.ndarray | None
) -> dict[str, Any]:
    """n, mean, std, sem, interval, accuracy and low_count of one group's scores.

    ``boot`` holds the bootstrap means of the group (None if not estimable); the interval is
    their percentile interval, reported only for ``n >= 2``.
    """
    n = scores.size
    row: dict[str, Any] = {"n": n, "low_count": n < params.min_count}
    nan = float("nan")
    row.update(mean=nan, std=nan, sem=nan, ci_low=nan, ci_high=nan, accuracy=nan)
    if n == 0:
        return row
    row["mean"] = float(scores.mean())
    row["accuracy"] = float(np.mean(scores > params.threshold))
    if n < 2:
        return row
    std = float(scores.std(ddof=1))
    row["std"] = std
    row["sem"] = std / np.sqrt(n)
    if boot is not None:
        alpha = 1.0 - params.confidence
        lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
        row["ci_low"], row["ci_high"] = float(lo), float(hi)
    return row


def groups_present(labels: np.ndarray) -> tuple[str, ...]:
    """The groups worth reporting: a class absent from the whole data set gets no rows."""
    has_lens, has_nonlens = bool(np.any(labels == 1)), bool(np.any(labels == 0))
    if has_lens and has_nonlens:
        return GROUPS
    return ("lens", "all") if has_lens else ("nonlens", "all")


def summarise(
    scores: np.ndarray,
    labels: np.ndarray,
    keys: np.ndarray,
    key_values: np.ndarray,
    *,
    params: StatsParams,
    entropy: int,
) -> pd.DataFrame:
    """The tidy result table: one row per (bin or value, group).

    The bootstrap is stratified by class: lenses and non-lenses are resampled separately
    (their counts are fixed by the test design), and the "all" interval combines the two
    resampled means weighted by class counts, ``(n_l m_l* + n_n m_n*) / n``.

    Parameters
    ----------
    scores, labels : numpy.ndarray of shape (m,)
        Correct-class scores and 0/1 labels of every sample.
    keys : numpy.ndarray of shape (m,)
        Index into ``key_values`` of each sample's bin or sweep value.
    key_values : numpy.ndarray of shape (k,)
        The ``value`` column: bin centres or sweep values.
    params : StatsParams
        Statistic settings.
    entropy : int
        Root seed; bootstrap stream ``(BOOTSTRAP, key, class)`` serves each class of each row.
    """
    present = groups_present(labels)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.searchsorted(sorted_keys, np.arange(len(key_values)), side="left")
    stops = np.searchsorted(sorted_keys, np.arange(len(key_values)), side="right")
    rows = []
    for k, value in enumerate(key_values):
        members = order[starts[k] : stops[k]]
        s_k, l_k = scores[members], labels[members]
        per_class: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        for g, group in enumerate(GROUPS[:2]):
            # Sorting makes the bootstrap depend on the multiset of scores only, so results
            # do not change with the order of the rows.
            s = np.sort(s_k[l_k == (1 if group == "lens" else 0)])
            gen = _rng.child(entropy, _rng.BOOTSTRAP, k, g)
            boot = bootstrap_means(s, params.n_boot, gen) if s.size else None
            per_class[group] = (s, boot)
        all_boot = None
        if s_k.size >= 2:
            all_boot = np.zeros(params.n_boot)
            for s, b in per_class.values():
                if b is not None:
                    all_boot += s.size * b
            all_boot /= s_k.size
        for group in present:
            if group == "all":
                rows.append(
                    {
                        "value": float(value),
                        "group": group,
                        **summarise_group(s_k, params, all_boot),
                    }
                )
            else:
                s, boot = per_class[group]
                rows.append(
                    {"value": float(value), "group": group, **summarise_group(s, params, boot)}
                )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["n"] = table["n"].astype(np.int64)
    table["low_count"] = table["low_count"].astype(bool)
    return table


# --------------------------------------------------------------------------------------------
# binomial intervals (the completeness of probe.completeness, the flagged fractions of
# probe.sweeps.categories)
# --------------------------------------------------------------------------------------------


def normal_quantile(confidence: float) -> float:
    """``z``: the standard normal quantile of ``1/2 + confidence/2`` (two-sided level)."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float, checked to be in (0, 1)."""
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ProbeValueError(f"confidence must be in (0, 1); got {confidence!r}")
    return c


def binomial_interval(
    k: Any, n: Any, *, method: Interval = "wilson", confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided interval for a binomial proportion ``k / n``, vectorised.

    Parameters
    ----------
    k, n : array_like
        Successes and trials (broadcast together); NaN is returned where ``n == 0``.
    method : {"wilson", "jeffreys"}
        Wilson score interval or Jeffreys (Beta(k + 1/2, n - k + 1/2)) interval.
    confidence : float
        Nominal coverage, e.g. 0.95.

    Returns
    -------
    low, high : ndarray
        Bounds in [0, 1], float64.
    """
    c = check_confidence(confidence)
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    kk, nn = np.broadcast_arrays(kk, nn)
    if np.any(kk < 0) or np.any(kk > nn):
        raise ProbeValueError("binomial_interval needs 0 <= k <= n")
    empty = nn <= 0
    ns = np.where(empty, 1.0, nn)
    if method == "wilson":
        z = normal_quantile(c)
        f = kk / ns
        den = 1.0 + z * z / ns
        centre = (f + z * z / (2.0 * ns)) / den
        half = z / den * np.sqrt(f * (1.0 - f) / ns + z * z / (4.0 * ns * ns))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    elif method == "jeffreys":
        from scipy.stats import beta

        a, b = kk + 0.5, ns - kk + 0.5
        low = np.where(kk > 0, beta.ppf((1.0 - c) / 2.0, a, b), 0.0)
        high = np.where(kk < ns, beta.ppf((1.0 + c) / 2.0, a, b), 1.0)
    else:
        raise ProbeValueError(f"method must be 'wilson' or 'jeffreys'; got {method!r}")
    low = np.where(empty, np.nan, np.where(kk <= 0, 0.0, low))
    high = np.where(empty, np.nan, np.where(kk >= nn, 1.0, high))
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
