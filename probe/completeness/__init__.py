"""Completeness of a lens finder beyond one property: fits, 2-D surfaces, parent comparison, plots.

Helpers of :mod:`probe.selection` (selection functions): :mod:`probe.completeness.fit` (curve fits
and 50% points), :mod:`probe.completeness.surfaces` (2-D surfaces),
:mod:`probe.completeness.parent` (selected vs parent) and :mod:`probe.completeness.plots`.
"""
