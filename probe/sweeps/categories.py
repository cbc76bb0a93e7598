"""Scores broken down by a categorical truth column (``kind``, a survey field, any string).

One row per (category, group) with the statistics of :func:`probe.statistics.summarise` and the
fraction of images flagged as lenses (``p_lens >= threshold``: the true positive rate of lenses,
the false positive rate of non-lenses) with its binomial interval. Categories are ordered by
their mean correct-class score over all their images, worst first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.errors import ProbeValueError
from probe.statistics import StatsParams, binomial_interval, column_methods, summarise

#: Name given to a missing category value.
MISSING = "<missing>"

CATEGORY_COLUMNS: tuple[str, ...] = (
    "category",
    "group",
    "n",
    "mean",
    "std",
    "sem",
    "ci_low",
    "ci_high",
    "accuracy",
    "low_count",
    "flagged",
    "flagged_low",
    "flagged_high",
)


def category_names(values: Any, n: int, *, name: str = "categories") -> np.ndarray:
    """Per-image category names as strings (missing values become :data:`MISSING`)."""
    series = pd.Series(np.asarray(values, dtype=object))
    if len(series) != n:
        raise ProbeValueError(f"{name} has {len(series)} entries for {n} images")
    out = series.map(
        lambda v: MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else v
    )
    return np.asarray(
        [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in out], dtype=object
    )


def category_table(
    p_lens: np.ndarray,
    score: np.ndarray,
    labels: np.ndarray,
    categories: np.ndarray,
    *,
    params: StatsParams,
    entropy: int,
) -> pd.DataFrame:
    """The per-(category, group) table, categories ordered by their mean score (lowest first).

    ``flagged`` is the fraction of the group's images with ``p_lens >= params.threshold`` (TPR
    for lenses, FPR for non-lenses) and ``flagged_low``/``flagged_high`` its Wilson interval
    at ``params.confidence``.
    """
    names = np.asarray(categories, dtype=object)
    unique = sorted(set(names.tolist()))
    means = {c: float(score[names == c].mean()) for c in unique}
    order = sorted(unique, key=lambda c: (means[c], c))
    index = {c: i for i, c in enumerate(order)}
    keys = np.array([index[c] for c in names], dtype=np.int64)
    table = summarise(
        score, labels, keys, np.arange(len(order), dtype=np.float64), params=params, entropy=entropy
    )
    table.insert(0, "category", [order[int(v)] for v in table["value"]])
    # A class absent from a category (no lenses among stars) gets no row.
    table = table[table["n"] > 0].drop(columns="value").reset_index(drop=True)
    flagged_k, flagged_n = [], []
    for cat, group in zip(table["category"], table["group"]):
        sel = names == cat
        if group != "all":
            sel &= labels == (1 if group == "lens" else 0)
        flagged_k.append(int(np.sum(p_lens[sel] >= params.threshold)))
        flagged_n.append(int(sel.sum()))
    k, n = np.array(flagged_k), np.array(flagged_n)
    low, high = binomial_interval(k, n, confidence=params.confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["flagged"] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    table["flagged_low"], table["flagged_high"] = low, high
    return table[list(CATEGORY_COLUMNS)]


@dataclass
class CategoryResult:
    """What :meth:`probe.Probe.by_category` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`CATEGORY_COLUMNS`, one row per (category, group); categories ordered by
        their mean correct-class score, lowest first.
    scores : pandas.DataFrame
        ``sample, category, label, p_lens, score`` per image.
    parameter : str
        The categorical column's name.
    stats : StatsParams
        Settings of every statistic (``threshold`` decides ``flagged``).
    provenance : dict
        Model and data hashes, seeds, package versions.
    label : str
        Model label for plots.
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    parameter: str
    stats: StatsParams
    provenance: dict[str, Any]
    label: str = ""
    methods: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.methods:
            self.methods = {
                **column_methods(self.stats),
                "category": "the category; rows ordered by the mean score of all its images",
                "flagged": f"fraction with p_lens >= {self.stats.threshold:g}: true positive "
                "rate of lenses, false positive rate of non-lenses",
                "flagged_low, flagged_high": f"{100 * self.stats.confidence:g}% Wilson interval "
                "of flagged",
            }
        if not self.label:
            self.label = str(self.provenance.get("model", {}).get("description", "model"))

    @property
    def categories(self) -> list[str]:
        """Categories, lowest mean score first."""
        return list(dict.fromkeys(self.table["category"]))

    def metadata(self) -> dict[str, Any]:
        """Everything saved beside the table."""
        return {
            "kind": "by_category",
            "parameter": self.parameter,
            "label": self.label,
            "stats": self.stats.to_dict(),
            "methods": self.methods,
            "provenance": self.provenance,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`table` with its metadata (Parquet, CSV or JSON by the suffix)."""
        from probe.sweeps.result import save_table

        return save_table(self.table, self.metadata(), path)

    def plot(self, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
        """Mean score with its interval per category, one panel per group (PNG, SVG, PDF)."""
        from probe.sweeps.plotting import plot_categories

        return plot_categories(self, path, dpi=dpi)

    def __repr__(self) -> str:
        return (
            f"<CategoryResult of {self.label!r} by {self.parameter!r}: "
            f"{len(self.categories)} categories>"
        )
