"""Completeness of a lens finder: the parts of selection functions, fits, 2-D surfaces, plots.

The machinery of :func:`probe.selection.selection_function`: :mod:`probe.completeness.inputs`
(scores, labels, bins), :mod:`probe.completeness.thresholds` (thresholds at a false-positive
rate), :mod:`probe.completeness.rates` (TPR0/TPR10), :mod:`probe.completeness.counts` (its steps)
and :mod:`probe.completeness.result` (:class:`probe.SelectionFunction`); beyond one property:
:mod:`probe.completeness.fit` (curve fits and 50% points), :mod:`probe.completeness.surfaces`
(2-D surfaces), :mod:`probe.completeness.parent` (selected vs parent) and
:mod:`probe.completeness.plots`.
"""
