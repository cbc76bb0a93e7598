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

This module holds :func:`selection_function`; its parts live beside it, mostly in
:mod:`probe.completeness`:

* :mod:`probe.statistics`: the binomial intervals (:func:`~probe.statistics.binomial_interval`);
* :mod:`probe.completeness.thresholds`: thresholds at a false-positive rate
  (:func:`~probe.completeness.thresholds.threshold_at_fpr`);
* :mod:`probe.completeness.rates`: TPR0/TPR10 (:class:`~probe.completeness.rates.Rate`,
  :func:`~probe.completeness.rates.tpr_before`);
* :mod:`probe.completeness.counts`: the steps of :func:`selection_function`;
* :mod:`probe.completeness.result`: what it returns (:class:`probe.SelectionFunction`);
* :mod:`probe.completeness.fit`: the curve fits and 50% points (:class:`CurveFit`,
  :func:`fit_completeness`);
* :mod:`probe.completeness.surfaces`: 2-D selection surfaces (:class:`probe.SelectionSurface`,
  :func:`probe.selection_surface`);
* :mod:`probe.completeness.parent`: selected lenses against the parent population
  (:class:`ParentComparison`, :func:`probe.selected_vs_parent`);
* :mod:`probe.completeness.plots`: the figures and the HTML report fragment (:func:`plot_selection`,
  :func:`plot_surface`, :func:`plot_parent`, :func:`report_section`; matplotlib is imported only
  when plotting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from probe.binning import Binning
from probe.completeness.counts import bin_lenses, count_found, lens_sample, selection_provenance
from probe.completeness.result import SelectionFunction, selection_methods
from probe.completeness.thresholds import threshold_list
from probe.statistics import Interval

__all__ = ["selection_function"]


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
    sample, c = lens_sample(scores, labels, values, interval=interval, confidence=confidence)
    binning, bin_index = bin_lenses(bins, sample.values)
    ths = threshold_list(thresholds, fpr, sample.negatives)
    table, overall, samples = count_found(
        sample, binning, bin_index, ths, interval=interval, confidence=c, min_count=min_count
    )
    return SelectionFunction(
        table=table,
        overall=overall,
        samples=samples,
        negatives=np.sort(sample.negatives),
        binning=binning,
        parameter=name,
        unit=unit,
        interval=interval,
        confidence=c,
        min_count=int(min_count),
        provenance=selection_provenance(sample, bin_index, provenance),
        label=label or "model",
        methods=selection_methods(interval, c),
    )
