"""Selection functions of a study's models, computed from the study's own per-image scores.

The paper's study already scores every model on lenses binned by Einstein radius, lens r and
lensed source g, and on unperturbed non-lenses (the first value of every perturbation sweep is
"no perturbation"). :func:`study_selection` turns those scores into completeness curves
(:func:`probe.selection_function`) at fixed score thresholds and at thresholds set from the
model's own negatives at fixed false-positive rates, so the report shows, for each model, the
fraction of lenses found as a function of the lens properties (the paper's closing section) at
no extra inference cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.binning import Binning
from probe.completeness.result import SelectionFunction
from probe.selection import selection_function

if TYPE_CHECKING:  # pragma: no cover
    from probe.studies.experiments import StudyResult

__all__ = ["SELECTION_BINS", "study_negatives", "study_selection"]

#: Parameter -> (low, high, bins, smoke bins) of the selection functions drawn from a study.
SELECTION_BINS: dict[str, tuple[float, float, int, int]] = {
    "mag_source_g": (20.0, 23.0, 12, 4),
    "theta_E": (1.0, 2.7, 9, 4),
    "mag_lens_r": (17.0, 23.0, 12, 4),
}


def study_negatives(study: StudyResult, model: str) -> np.ndarray:
    """p(lens) of the unperturbed non-lenses of ``model`` (first value of its first sweep).

    Empty when the study ran no perturbation sweep.
    """
    for e in study.experiments():
        if e.kind != "sweep" or (model, e.name) not in study.results:
            continue
        s = study.results[(model, e.name)].scores
        first = s["value"].min()
        neg = s[(s["label"] == 0) & (s["value"] == first)]
        return neg["p_lens"].to_numpy(dtype=np.float64)
    return np.empty(0)


def study_selection(
    study: StudyResult,
    *,
    thresholds: Sequence[float] = (0.5, 0.9, 0.99),
    fpr: Sequence[float] = (0.01,),
    interval: str = "wilson",
    bins: Mapping[str, tuple[float, float, int, int]] | None = None,
) -> dict[str, dict[str, SelectionFunction]]:
    """Selection functions ``{parameter: {model: SelectionFunction}}`` from a study's scores.

    Parameters
    ----------
    study : StudyResult
        A finished study (its binned experiments give the lenses, its sweeps the negatives).
    thresholds : sequence of float
        Score thresholds (found: ``p_lens >= t``).
    fpr : sequence of float
        False-positive rates whose thresholds are set from each model's own unperturbed
        negatives; a rate its negatives cannot resolve (fewer than ``1 / fpr``) is skipped.
    interval : {"wilson", "jeffreys"}
        Binomial interval of each completeness.
    bins : mapping, optional
        Overrides :data:`SELECTION_BINS`.
    """
    table = dict(SELECTION_BINS if bins is None else bins)
    smoke = bool(study.config.get("sizes", {}).get("smoke", False))
    out: dict[str, dict[str, SelectionFunction]] = {}
    for e in study.experiments():
        if e.kind != "bin" or e.column not in table:
            continue
        lo, hi, nb, nb_smoke = table[e.column]
        per_model: dict[str, SelectionFunction] = {}
        for m in study.models:
            if (m, e.name) not in study.results:
                continue
            s = study.results[(m, e.name)].scores
            neg = study_negatives(study, m)
            usable = [f for f in fpr if neg.size * f >= 1.0 - 1e-9]
            p = np.r_[s["p_lens"].to_numpy(dtype=np.float64), neg]
            labels = np.r_[np.ones(len(s), np.int8), np.zeros(neg.size, np.int8)]
            values = np.r_[s["parameter"].to_numpy(dtype=np.float64), np.full(neg.size, np.nan)]
            per_model[m] = selection_function(
                p,
                labels,
                values,
                bins=Binning.uniform(lo, hi, n=nb_smoke if smoke else nb, outside="drop"),
                thresholds=tuple(thresholds),
                fpr=usable or None,
                interval=interval,  # type: ignore[arg-type]
                name=e.column,
                unit=e.unit,
                label=m,
                provenance=_provenance(study, m, e.name),
            )
        if per_model:
            out[e.column] = per_model
    return out


def _provenance(study: StudyResult, model: str, experiment: str) -> dict[str, Any]:
    r = study.results[(model, experiment)]
    return {
        "source": f"study experiment {experiment!r} of model {model!r}",
        "study": {k: study.config.get(k) for k in ("seed", "sizes", "nonlens_kinds")},
        "result": getattr(r, "provenance", {}),
    }
