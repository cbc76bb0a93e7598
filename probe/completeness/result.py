"""The selection function of one lens property: :class:`SelectionFunction`, what
:func:`probe.selection.selection_function` returns (its table, fits, TPR0/TPR10, output).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.binning import Binning
from probe.completeness.fit import CurveFit, CurveModel, fit_completeness
from probe.completeness.plots import plot_selection
from probe.completeness.rates import Rate, tpr_before
from probe.errors import ProbeKeyError, ProbeValueError
from probe.sweeps.result import save_table

__all__ = ["TABLE_COLUMNS", "SelectionFunction", "selection_methods"]

TABLE_COLUMNS = ("value", "threshold", "n", "completeness", "ci_low", "ci_high")
"""The contract columns of :attr:`SelectionFunction.table`, in this order (extras follow)."""


@dataclass
class SelectionFunction:
    """What :func:`probe.selection.selection_function` returns.

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
        return save_table(self.table, self.metadata(), path)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Completeness against the value, one colour per threshold (:func:`plot_selection`)."""
        return plot_selection([self], path, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<SelectionFunction of {self.label!r} over {self.parameter!r}: "
            f"{self.binning.n_bins} bins, thresholds {self.overall['threshold_label'].tolist()}, "
            f"{len(self.samples)} lenses, {self.negatives.size} negatives>"
        )


def selection_methods(interval: str, confidence: float) -> dict[str, str]:
    """The formula of every column and statistic (saved with the result, ``methods``)."""
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
