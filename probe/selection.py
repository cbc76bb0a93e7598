"""Selection functions of a lens finder: completeness against lens properties (the core).

A *selection function* is the fraction of true lenses a search keeps, ``C(x) = P(p >= t | x)``,
as a function of a lens property ``x`` at a score threshold ``t``. Given scores ``p`` (the
model's p(lens)), labels (1 lens, 0 non-lens) and per-object values, :func:`selection_function`
bins the lenses by ``x`` and counts, in each bin and at each threshold, the ``k`` of ``n`` lenses
with ``p >= t``. Non-lenses never enter the completeness; they set thresholds at a fixed
false-positive rate and the ranking statistics TPR0/TPR10.

Formulas (also saved with every result, in ``methods``):

* completeness ``k / n``; Wilson (score) interval
  ``(k + z^2/2)/(n + z^2) +/- z/(n + z^2) sqrt(k (n - k)/n + z^2/4)`` or Jeffreys interval
  (quantiles ``(1 -/+ c)/2`` of ``Beta(k + 1/2, n - k + 1/2)``, lower 0 when ``k = 0``, upper 1
  when ``k = n``), ``z`` the normal quantile of the confidence ``c`` (Brown, Cai & DasGupta 2001).
* threshold at a false-positive rate ``f`` from ``N`` negatives: with ``j = floor(f N)`` false
  positives allowed, ``t`` is just above the ``(j+1)``-th highest negative score, so at most ``j``
  negatives (empirical FPR <= f) have ``p >= t``; needs ``f N >= 1``.
* ``TPR_k`` (TPR0: k = 1, TPR10: k = 10): the fraction of lenses scoring strictly above the
  k-th highest negative, i.e. found before the k-th false positive when objects are inspected in
  order of decreasing score (Metcalf et al. 2019's TPR0/TPR10).
* 50% point: per-object (unbinned) binomial likelihood of a curve
  ``C(x) = A F(u0 + b (x - x50))`` with ``F`` the logistic or normal CDF, ``u0 = F^-1(1/(2A))``
  (so ``C(x50) = 1/2`` exactly), plateau ``1/2 < A <= 1`` (or ``A = 1``) and slope ``b`` of
  either sign; interval by profile likelihood (``2 Delta lnL <= chi2_1(c)``) or by parametric
  bootstrap (seeded; percentiles of refits to data redrawn from the fitted curve).

This module holds the core: binomial intervals (:func:`binomial_interval`), thresholds at a
false-positive rate (:func:`threshold_at_fpr`), TPR0/TPR10 (:class:`Rate`, :func:`tpr_before`)
and the 1-D selection function (:class:`SelectionFunction`, :func:`selection_function`). The
rest lives beside it and is re-exported here, so ``from probe.selection import X`` keeps working:

* :mod:`probe.completeness_fit`: the curve fits and 50% points (:class:`CurveFit`,
  :func:`fit_completeness`);
* :mod:`probe.selection_surfaces`: 2-D selection surfaces (:class:`SelectionSurface`,
  :func:`selection_surface`);
* :mod:`probe.parent_comparison`: selected lenses against the parent population
  (:class:`ParentComparison`, :func:`selected_vs_parent`);
* :mod:`probe.selection_plots`: the figures and the HTML report fragment (:func:`plot_selection`,
  :func:`plot_surface`, :func:`plot_parent`, :func:`report_section`; matplotlib is imported only
  when plotting).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.binning import Binning
from probe.errors import ProbeKeyError, ProbeValueError
from probe.provenance import now_utc, package_versions

__all__ = [
    "CurveFit",
    "ParentComparison",
    "Rate",
    "SelectionFunction",
    "SelectionSurface",
    "binomial_interval",
    "report_section",
    "selected_vs_parent",
    "selection_function",
    "selection_surface",
    "threshold_at_fpr",
    "tpr_before",
]

Interval = Literal["wilson", "jeffreys"]
TABLE_COLUMNS = ("value", "threshold", "n", "completeness", "ci_low", "ci_high")
"""The contract columns of :attr:`SelectionFunction.table`, in this order (extras follow)."""


# --------------------------------------------------------------------------------------------
# binomial intervals and ranking statistics
# --------------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def _check_confidence(confidence: float) -> float:
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
    c = _check_confidence(confidence)
    kk = np.asarray(k, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    kk, nn = np.broadcast_arrays(kk, nn)
    if np.any(kk < 0) or np.any(kk > nn):
        raise ProbeValueError("binomial_interval needs 0 <= k <= n")
    empty = nn <= 0
    ns = np.where(empty, 1.0, nn)
    if method == "wilson":
        z = _z(c)
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
    p, lab = _scores_labels(scores, labels)
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


def _scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
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


# --------------------------------------------------------------------------------------------
# the 1-D selection function
# --------------------------------------------------------------------------------------------


def _bins_for(bins: Any, values: np.ndarray) -> Binning:
    if isinstance(bins, Binning):
        return bins
    if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
        return Binning.uniform(float(values.min()), float(values.max()), n=int(bins))
    return Binning.edges(bins)


def format_threshold(t: float) -> str:
    """A score threshold with enough digits to tell it from 1 (and 0): 0.9996, never "1".

    At least 4 significant digits, and two of ``1 - t`` (or of ``t`` near 0)."""
    t = float(t)
    if not math.isfinite(t) or t in (0.0, 1.0):
        return f"{t:g}"
    gap = min(abs(1.0 - t), abs(t)) or 1e-16
    digits = max(4, math.ceil(-math.log10(gap)) + 2)
    return f"{t:.{min(digits, 17)}g}"


def _threshold_list(
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


@dataclass
class SelectionFunction:
    """What :func:`selection_function` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (threshold, bin): ``value`` (bin centre), ``threshold``, ``n`` (lenses in the
        bin), ``completeness`` (``k / n``), ``ci_low``, ``ci_high`` (interval at
        ``confidence``), then ``k``, ``bin_low``, ``bin_high``, ``threshold_label`` (``"0.9"`` or
        ``"fpr=0.001"``), ``fpr`` (empirical false-positive rate of the negatives at that
        threshold, NaN without negatives), ``low_count`` (``n < min_count``).
    overall : pandas.DataFrame
        One row per threshold: the same over all lenses (not binned), plus ``n_negatives``.
    samples : pandas.DataFrame
        The lenses: ``value``, ``p_lens``, ``bin``.
    parameter, unit : str
        Name and unit of ``x``.
    """

    table: pd.DataFrame
    overall: pd.DataFrame
    samples: pd.DataFrame
    negatives: np.ndarray
    binning: Binning
    parameter: str
    unit: str
    interval: str
    confidence: float
    min_count: int
    provenance: dict[str, Any]
    label: str = ""
    methods: dict[str, str] = field(default_factory=dict)
    _fits: dict[tuple[Any, ...], CurveFit] = field(default_factory=dict, repr=False)

    # -- thresholds ---------------------------------------------------------------------------
    @property
    def thresholds(self) -> list[float]:
        """Thresholds in table order."""
        return [float(t) for t in self.overall["threshold"]]

    @property
    def axis_label(self) -> str:
        """``"parameter [unit]"``."""
        return f"{self.parameter} [{self.unit}]" if self.unit else self.parameter

    def _resolve(self, threshold: float | str | None) -> float:
        if threshold is None:
            if len(self.thresholds) != 1:
                raise ProbeValueError(
                    f"several thresholds ({self.overall['threshold_label'].tolist()}): name one"
                )
            return self.thresholds[0]
        if isinstance(threshold, str):
            hit = self.overall[self.overall["threshold_label"] == threshold]
            if hit.empty:
                raise ProbeKeyError(
                    f"threshold {threshold!r} not in {self.overall['threshold_label'].tolist()}"
                )
            return float(hit["threshold"].iloc[0])
        t = float(threshold)
        for have in self.thresholds:
            if math.isclose(have, t, rel_tol=1e-12, abs_tol=1e-12):
                return have
        # any other threshold is computed from the stored scores
        return t

    def found(self, threshold: float | str | None = None) -> np.ndarray:
        """Per-lens outcome ``p >= threshold`` (the order of :attr:`samples`)."""
        return self.samples["p_lens"].to_numpy() >= self._resolve(threshold)

    # -- ranking statistics -------------------------------------------------------------------
    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        p = np.concatenate([self.samples["p_lens"].to_numpy(), self.negatives])
        lab = np.concatenate([np.ones(len(self.samples)), np.zeros(self.negatives.size)])
        return p, lab

    def tpr_before(self, k: int) -> Rate:
        """Fraction of lenses found before the k-th false positive (:func:`tpr_before`)."""
        p, lab = self._ranked()
        return tpr_before(p, lab, k, interval=self.interval, confidence=self.confidence)  # type: ignore[arg-type]

    @property
    def tpr0(self) -> Rate:
        """TPR0: lenses scoring above every negative."""
        return self.tpr_before(1)

    @property
    def tpr10(self) -> Rate:
        """TPR10: lenses scoring above the 10th highest negative."""
        return self.tpr_before(10)

    # -- fits -----------------------------------------------------------------------------------
    def fit(
        self,
        threshold: float | str | None = None,
        *,
        model: CurveModel = "logistic",
        plateau: bool = True,
        method: Literal["profile", "bootstrap"] = "profile",
        n_boot: int = 200,
        rng: _rng.RngLike = 0,
    ) -> CurveFit:
        """Completeness curve at ``threshold`` (see :func:`fit_completeness`); cached."""
        t = self._resolve(threshold)
        key = (t, model, plateau, method, n_boot, rng if isinstance(rng, int) else None)
        if key not in self._fits or key[-1] is None:
            self._fits[key] = fit_completeness(
                self.samples["value"].to_numpy(),
                self.samples["p_lens"].to_numpy() >= t,
                threshold=t,
                model=model,
                plateau=plateau,
                method=method,
                confidence=self.confidence,
                n_boot=n_boot,
                rng=rng,
            )
        return self._fits[key]

    def fifty_percent_point(
        self, threshold: float | str | None = None, **kwargs: Any
    ) -> tuple[float, float, float]:
        """``(value, low, high)`` where the fitted completeness crosses 1/2 at ``threshold``.

        NaN when completeness never reaches 1/2 (or is constant); an infinite bound when the
        data do not close the interval. Keywords go to :meth:`fit` (``model``, ``plateau``,
        ``method``, ``n_boot``, ``rng``).
        """
        f = self.fit(threshold, **kwargs)
        return (f.x50, f.low, f.high)

    def fifty_percent_points(self, **kwargs: Any) -> pd.DataFrame:
        """One row per threshold: ``threshold, threshold_label, x50, low, high, slope, plateau,
        extrapolated``."""
        rows = []
        for t, lab in zip(self.thresholds, self.overall["threshold_label"]):
            f = self.fit(t, **kwargs)
            rows.append(
                {
                    "threshold": t,
                    "threshold_label": lab,
                    "x50": f.x50,
                    "low": f.low,
                    "high": f.high,
                    "slope": f.slope,
                    "plateau": f.plateau,
                    "extrapolated": f.extrapolated,
                }
            )
        return pd.DataFrame(rows)

    def summary(self, **kwargs: Any) -> pd.DataFrame:
        """Headline numbers: one row per threshold, then TPR0 and TPR10 where resolvable.

        Columns ``label, threshold, completeness, ci_low, ci_high`` (over all lenses) and
        ``x50, low, high`` (the 50% point, NaN for the TPR rows); ``kwargs`` go to :meth:`fit`.
        """
        overall = self.overall.set_index("threshold_label")
        rows = []
        for _, r in self.fifty_percent_points(**kwargs).iterrows():
            ov = overall.loc[r["threshold_label"]]
            rows.append(
                {
                    "label": str(r["threshold_label"]),
                    "threshold": float(r["threshold"]),
                    "completeness": float(ov["completeness"]),
                    "ci_low": float(ov["ci_low"]),
                    "ci_high": float(ov["ci_high"]),
                    "x50": float(r["x50"]),
                    "low": float(r["low"]),
                    "high": float(r["high"]),
                }
            )
        for name in ("tpr0", "tpr10"):
            try:
                rate = getattr(self, name)
            except ProbeValueError:  # too few negatives or no lenses: not resolvable here
                continue
            rows.append(
                {
                    "label": name.upper(),
                    "threshold": rate.threshold,
                    "completeness": rate.value,
                    "ci_low": rate.low,
                    "ci_high": rate.high,
                    "x50": math.nan,
                    "low": math.nan,
                    "high": math.nan,
                }
            )
        return pd.DataFrame(rows)

    # -- output ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything saved beside the table."""
        meta: dict[str, Any] = {
            "kind": "selection_function",
            "parameter": self.parameter,
            "unit": self.unit,
            "label": self.label,
            "interval": self.interval,
            "confidence": self.confidence,
            "min_count": self.min_count,
            "binning": self.binning.to_dict(),
            "overall": self.overall.to_dict(orient="list"),
            "methods": self.methods,
            "fits": [f.as_dict() for f in self._fits.values()],
            "provenance": self.provenance,
        }
        for name in ("tpr0", "tpr10"):
            try:
                meta[name] = getattr(self, name).as_dict()
            except ProbeValueError:
                meta[name] = None
        return meta

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`table` with its metadata (``.parquet``, ``.csv`` or ``.json``), as
        :meth:`probe.Result.save` does; read the metadata back with :func:`probe.read_metadata`.
        """
        return _save_table(self.table, self.metadata(), path)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Completeness against the value, one colour per threshold (:func:`plot_selection`)."""
        return plot_selection([self], path, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<SelectionFunction of {self.label!r} over {self.parameter!r}: "
            f"{self.binning.n_bins} bins, thresholds {self.overall['threshold_label'].tolist()}, "
            f"{len(self.samples)} lenses, {self.negatives.size} negatives>"
        )


def _methods(interval: str, confidence: float) -> dict[str, str]:
    iv = (
        "Wilson score interval (k + z^2/2)/(n + z^2) +/- z/(n + z^2) sqrt(k(n-k)/n + z^2/4)"
        if interval == "wilson"
        else "Jeffreys interval: Beta(k + 1/2, n - k + 1/2) quantiles (0 at k = 0, 1 at k = n)"
    )
    return {
        "completeness": "k/n: lenses in the bin with p_lens >= threshold over lenses in the bin",
        "ci_low, ci_high": f"{iv}, confidence {confidence:g}",
        "fpr": "fraction of negatives with p_lens >= threshold",
        "threshold (fpr=f)": "just above the (floor(f N)+1)-th highest negative score",
        "tpr0, tpr10": "fraction of lenses with p_lens above the 1st / 10th highest negative",
        "x50": "C(x) = A F(u0 + b (x - x50)), u0 = F^-1(1/(2A)); per-lens binomial likelihood; "
        "profile-likelihood (chi2_1) or parametric-bootstrap interval",
    }


def _save_table(table: pd.DataFrame, meta_obj: dict[str, Any], path: Any) -> Path:
    from probe.sweeps.result import save_table  # lazily: keeps `import probe` light

    return save_table(table, meta_obj, path)


def selection_function(
    scores: Any,
    labels: Any,
    values: Any,
    bins: Binning | int | Sequence[float] = 10,
    thresholds: Sequence[float] = (0.5, 0.9, 0.99),
    *,
    fpr: float | Sequence[float] | None = None,
    interval: Interval = "wilson",
    confidence: float = 0.95,
    min_count: int = 30,
    name: str = "value",
    unit: str = "",
    label: str = "",
    provenance: Mapping[str, Any] | None = None,
) -> SelectionFunction:
    """Completeness of a lens finder against a lens property, at several score thresholds.

    Parameters
    ----------
    scores : array_like
        p(lens) of every object, shape (n,).
    labels : array_like or None
        1 for lenses, 0 for non-lenses (None: all are lenses). Non-lenses enter only through
        ``fpr`` thresholds, the ``fpr`` column and TPR0/TPR10.
    values : array_like
        The property of each object (e.g. lensed source g magnitude); non-lens values are
        ignored and may be NaN.
    bins : Binning, int or sequence of edges
        :class:`probe.Binning` (its ``outside`` rule applies), a number of uniform bins over the
        lenses' range, or explicit edges.
    thresholds : sequence of float
        A lens is found when ``p_lens >= threshold``.
    fpr : float or sequence of float, optional
        Also add the threshold of each false-positive rate, set from the negatives
        (:func:`threshold_at_fpr`); labelled ``"fpr=<f>"``.
    interval : {"wilson", "jeffreys"}
        Binomial interval of each completeness.
    confidence : float
        Interval level.
    min_count : int
        Bins with fewer lenses are flagged ``low_count`` (never dropped).
    name, unit : str
        The property's name and unit (tables and plots).
    label : str
        Model label for plots.
    provenance : mapping, optional
        Extra provenance (model hash, data hash, seeds) to save with the result.
    """
    p, lab = _scores_labels(scores, labels)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size != p.size:
        raise ProbeValueError(f"values has {x.size} entries for {p.size} scores")
    if interval not in ("wilson", "jeffreys"):
        raise ProbeValueError(f"interval must be 'wilson' or 'jeffreys'; got {interval!r}")
    c = _check_confidence(confidence)
    is_lens = lab == 1
    xl, pl = x[is_lens], p[is_lens]
    if xl.size == 0:
        raise ProbeValueError("no lenses (label 1): completeness needs lenses")
    binning = _bins_for(bins, xl[np.isfinite(xl)] if np.isfinite(xl).any() else xl)
    idx = binning.assign(xl, name="values of lenses")
    keep = idx >= 0
    neg = p[~is_lens]
    ths = _threshold_list(thresholds, fpr, neg)
    nb = binning.n_bins
    counts = np.bincount(idx[keep], minlength=nb)
    rows, overall = [], []
    for t, tlabel, target in ths:
        hit = pl[keep] >= t
        k = np.bincount(idx[keep], weights=hit, minlength=nb).astype(np.int64)
        lo, hi = binomial_interval(k, counts, method=interval, confidence=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            comp = np.where(counts > 0, k / np.maximum(counts, 1), np.nan)
        fp = float(np.mean(neg >= t)) if neg.size else math.nan
        for b in range(nb):
            rows.append(
                {
                    "value": float(binning.centres[b]),
                    "threshold": t,
                    "n": int(counts[b]),
                    "completeness": float(comp[b]),
                    "ci_low": float(lo[b]),
                    "ci_high": float(hi[b]),
                    "k": int(k[b]),
                    "bin_low": float(binning.lows[b]),
                    "bin_high": float(binning.highs[b]),
                    "threshold_label": tlabel,
                    "fpr": fp,
                    "low_count": bool(counts[b] < min_count),
                }
            )
        kt, nt = int(hit.sum()), int(keep.sum())
        olo, ohi = binomial_interval(kt, nt, method=interval, confidence=c)
        overall.append(
            {
                "threshold": t,
                "threshold_label": tlabel,
                "n": nt,
                "k": kt,
                "completeness": kt / nt if nt else math.nan,
                "ci_low": float(olo),
                "ci_high": float(ohi),
                "fpr": fp,
                "target_fpr": target,
                "n_negatives": int(neg.size),
                "n_false_positives": int(np.count_nonzero(neg >= t)),
            }
        )
    table = pd.DataFrame(rows)
    samples = pd.DataFrame({"value": xl[keep], "p_lens": pl[keep], "bin": idx[keep]})
    prov = {
        "created": now_utc(),
        "versions": package_versions(),
        "n_lenses": int(xl.size),
        "n_dropped": int((~keep).sum()),
        "n_negatives": int(neg.size),
        **dict(provenance or {}),
    }
    return SelectionFunction(
        table=table,
        overall=pd.DataFrame(overall),
        samples=samples,
        negatives=np.sort(neg),
        binning=binning,
        parameter=name,
        unit=unit,
        interval=interval,
        confidence=c,
        min_count=int(min_count),
        provenance=prov,
        label=label or "model",
        methods=_methods(interval, c),
    )


# --------------------------------------------------------------------------------------------
# re-exports: the curve fits, 2-D surfaces, selected-vs-parent comparison and plots live in their
# own modules, which import the core above; they are imported last, so that they find it defined
# (``import probe`` always imports this module first).
# --------------------------------------------------------------------------------------------

from probe.completeness.fit import CurveFit, CurveModel, fit_completeness  # noqa: E402
from probe.completeness.parent import ParentComparison, selected_vs_parent  # noqa: E402
from probe.completeness.plots import (  # noqa: E402
    plot_parent,  # noqa: F401 (re-exported)
    plot_selection,
    plot_surface,  # noqa: F401 (re-exported)
    report_section,
)
from probe.completeness.surfaces import SelectionSurface, selection_surface  # noqa: E402
