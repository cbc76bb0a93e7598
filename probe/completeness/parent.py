"""Selected lenses against the parent population as the score threshold rises.

After Herle, O'Riordan & Vegetti (2024): :func:`selected_vs_parent` gives quantiles of lens
properties among the lenses with ``p >= t`` for a rising threshold ``t``, beside the same quantiles
over all lenses; :class:`ParentComparison` holds the table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe.completeness.inputs import scores_labels
from probe.completeness.plots import plot_parent
from probe.errors import ProbeValueError
from probe.sweeps.result import save_table

__all__ = ["ParentComparison", "selected_vs_parent"]


# --------------------------------------------------------------------------------------------
# selected vs parent (Herle et al. 2024)
# --------------------------------------------------------------------------------------------


@dataclass
class ParentComparison:
    """Quantiles of lens properties among lenses above a rising threshold, beside the parent's.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (parameter, threshold, quantile): ``parameter, threshold, quantile, value``
        (the quantile among lenses with ``p >= threshold``; NaN with none), ``parent`` (the
        same quantile over all lenses), ``n_selected``, ``n_parent``.
    units : dict
        Unit of each parameter.
    """

    table: pd.DataFrame
    units: dict[str, str]
    label: str = ""

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """One panel per parameter (:func:`plot_parent`)."""
        return plot_parent(self, path, **kwargs)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table with its metadata."""
        meta = {"kind": "selected_vs_parent", "units": self.units, "label": self.label}
        return save_table(self.table, meta, path)


def selected_vs_parent(
    scores: Any,
    labels: Any,
    parameters: Mapping[str, Any] | pd.DataFrame,
    thresholds: Sequence[float] | None = None,
    *,
    quantiles: Sequence[float] = (0.16, 0.5, 0.84),
    units: Mapping[str, str] | None = None,
    label: str = "",
) -> ParentComparison:
    """How the lenses a search keeps differ from all lenses as the threshold rises.

    After Herle, O'Riordan & Vegetti (2024, MNRAS 534, 1093): for each parameter (e.g.
    ``theta_E``, source g, ``z_source``), the ``quantiles`` of its values among lenses with
    ``p >= t`` for each ``t`` in ``thresholds`` (default 0, 0.1, ..., 0.9, 0.95, 0.99), against
    the same quantiles over the parent population (all lenses given).
    """
    p, lab = scores_labels(scores, labels)
    frame = pd.DataFrame(parameters)
    if len(frame) != p.size:
        raise ProbeValueError(f"parameters have {len(frame)} rows for {p.size} scores")
    ths = (
        np.concatenate([np.round(np.arange(0.0, 0.91, 0.1), 10), [0.95, 0.99]])
        if thresholds is None
        else np.asarray(thresholds, dtype=np.float64)
    )
    qs = np.asarray(quantiles, dtype=np.float64)
    is_lens = lab == 1
    rows = []
    for col in frame.columns:
        v = frame[col].to_numpy(dtype=np.float64)[is_lens]
        pl = p[is_lens]
        ok = np.isfinite(v)
        parent = np.quantile(v[ok], qs) if ok.any() else np.full(qs.size, np.nan)
        for t in ths:
            sel = ok & (pl >= t)
            vals = np.quantile(v[sel], qs) if sel.any() else np.full(qs.size, np.nan)
            for q, val, par in zip(qs, vals, parent):
                rows.append(
                    {
                        "parameter": str(col),
                        "threshold": float(t),
                        "quantile": float(q),
                        "value": float(val),
                        "parent": float(par),
                        "n_selected": int(sel.sum()),
                        "n_parent": int(ok.sum()),
                    }
                )
    return ParentComparison(
        table=pd.DataFrame(rows),
        units={str(c): (units or {}).get(str(c), "") for c in frame.columns},
        label=label or "model",
    )
