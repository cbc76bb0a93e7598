"""The study over a survey's own lens population: selection functions and expected yields.

:func:`probe.studies.study_selection.study_selection` reads completeness off a study's test sets,
which span the paper's experiment ranges (theta_E 1-2.7", source g 20-22, lens r 19-21), not the
lenses a survey holds. :func:`population_selection` draws the simulator's lens population at a
survey's depth and seeing once (:func:`probe.yields.survey_yields`: the LensPop-detectable lenses
and some others), scores it with every model, and returns both the expected yields and each model's
completeness against lensed-source g, lens r and Einstein radius over the detectable lenses, at
fixed thresholds and at the threshold where a given fraction of the survey's field non-lenses pass.
``./scripts/demo`` runs it with finder C (trained on that population); ``probe study --yields
SURVEY`` runs it with the user's models. :func:`study_yields` gives the expected yields alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.adapters.simulators import DEFAULT_POPULATION, DEFAULT_SIMULATOR
from probe.adapters.specs import load_callable
from probe.binning import Binning
from probe.completeness.result import SelectionFunction
from probe.errors import ProbeValueError
from probe.selection import selection_function
from probe.sweeps.sensitivity import Probe
from probe.yields import SurveyYields, survey_yields

if TYPE_CHECKING:
    from probe.studies.experiments import StudyModel

__all__ = [
    "MIN_LENSES",
    "NEGATIVES",
    "POPULATION_BINS",
    "YIELD_SIZES",
    "YIELD_THRESHOLDS",
    "PopulationSelection",
    "population_selection",
    "study_yields",
]

#: Score thresholds of the expected yields added to a study report.
YIELD_THRESHOLDS = (0.5, 0.9, 0.99)
#: Population draws (about 0.4% are LensPop-detectable at DES depth) and non-detectable lenses
#: scored for the yields, per study size.
YIELD_SIZES: dict[str, tuple[int, int]] = {
    "smoke": (1500, 16),
    "default": (100000, 300),
    "full": (300000, 2000),
}


def study_yields(
    models: Sequence[StudyModel],
    *,
    size: str = "default",
    survey: str = "des-y3",
    thresholds: Sequence[float] = YIELD_THRESHOLDS,
    seed: int = 2026,
    batch_size: int = 256,
    simulator: str = DEFAULT_SIMULATOR,
    population: str = DEFAULT_POPULATION,
    client: Any = None,
) -> Any:
    """Expected yields of the study's models over ``survey`` (:func:`probe.yields.survey_yields`).

    The population is drawn and rendered once at ``survey`` (DES: "des-y3", 5000 deg^2) and
    scored by every model; sizes from :data:`YIELD_SIZES`. Returns a
    :class:`probe.yields.SurveyYields` for :func:`probe.studies.report.write_report`.
    """
    if size not in YIELD_SIZES:
        raise ProbeValueError(f"size must be one of {sorted(YIELD_SIZES)}; got {size!r}")
    n_density, n_other = YIELD_SIZES[size]
    return survey_yields(
        {m.name: Probe(m.model, batch_size=batch_size, client=client).predict for m in models},
        tuple(thresholds),
        survey=survey,
        n_density=n_density,
        n_other=n_other,
        rng=seed,
        simulator=simulator,
        population=population,
    )


#: Parameter -> (low, high, bins, smoke bins, unit) of the population's selection functions:
#: the ranges that hold most LensPop-detectable lenses at DES depth (median theta_E ~1",
#: lensed source g ~22.3, lens r ~19.6).
POPULATION_BINS: dict[str, tuple[float, float, int, int, str]] = {
    "mag_source_g": (20.5, 23.5, 6, 3, "mag"),
    "mag_lens_r": (17.0, 22.0, 5, 3, "mag"),
    "theta_E": (0.6, 2.0, 7, 3, "arcsec"),
}
#: Fewest detectable lenses in a parameter's range for its selection function (the 50% point
#: fit needs 10); a smaller draw (``size="smoke"``) reports yields only.
MIN_LENSES = 10
#: Field non-lenses scored per study size, for the false-positive-rate thresholds.
NEGATIVES: dict[str, int] = {"smoke": 100, "default": 1000, "full": 4000}


@dataclass
class PopulationSelection:
    """Selection functions and yields of several models over one simulated survey population.

    Attributes
    ----------
    functions : dict
        ``{parameter: {model: SelectionFunction}}`` over the detectable lenses (parameters with
        fewer than :data:`MIN_LENSES` of them in range are left out).
    yields : SurveyYields
        Expected yields (:func:`probe.yields.survey_yields`) from the same lenses and scores.
    negative_scores : dict of str to ndarray
        Per model, p(lens) of the field non-lenses that set the ``fpr`` thresholds.
    note : str
        Free text shown with the section in ``report.html`` (e.g. the finder's test AUC).
    """

    functions: dict[str, dict[str, SelectionFunction]]
    yields: SurveyYields
    negative_scores: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def models(self) -> list[str]:
        return list(self.yields.yields)


def population_selection(
    models: Mapping[str, Any],
    *,
    size: str = "default",
    survey: str = "des-y3",
    thresholds: Sequence[float] = (0.5, 0.9, 0.99),
    fpr: Sequence[float] = (0.01,),
    seed: int = 2026,
    batch_size: int = 256,
    nonlens_kind: str = "field",
    n_negatives: int | None = None,
    n_density: int | None = None,
    interval: str = "wilson",
    note: str = "",
    simulator: str = DEFAULT_SIMULATOR,
    population: str = DEFAULT_POPULATION,
    client: Any = None,
) -> PopulationSelection:
    """Selection functions and expected yields of ``models`` over ``survey``'s lens population.

    Parameters
    ----------
    models : mapping of name -> model
        Anything :class:`probe.Probe` accepts (a Keras model, a ``.keras``/``.onnx`` path, a
        callable returning p(lens)).
    size : {"smoke", "default", "full"}
        Population draws and non-detectable lenses (:data:`YIELD_SIZES`) and field
        non-lenses (:data:`NEGATIVES`).
    survey : str
        Survey preset (DES: "des-y3", 5000 deg^2, its Moffat PSF).
    thresholds : sequence of float
        Score thresholds (found: ``p_lens >= t``), of the yields and the selection functions.
    fpr : sequence of float
        False-positive rates of the survey's ``nonlens_kind`` non-lenses whose thresholds are
        added to the selection functions (skipped when the negatives cannot resolve them).
    seed : int
        Seed of the population draws (negatives: ``seed + 1``).
    n_negatives : int, optional
        Non-lenses scored (default by ``size``).
    n_density : int, optional
        Population draws (default by ``size``; ~0.4% are detectable at DES depth).
    """
    if not models:
        raise ProbeValueError("models is empty; give at least one name -> model")
    if size not in YIELD_SIZES:
        raise ProbeValueError(f"size must be one of {sorted(YIELD_SIZES)}; got {size!r}")
    n_neg = _count("n_negatives", NEGATIVES[size], n_negatives)
    predict = {
        name: Probe(m, batch_size=batch_size, client=client).predict for name, m in models.items()
    }
    n_draws, n_other = YIELD_SIZES[size]
    n_draws = _count("n_density", n_draws, n_density)
    ylds = survey_yields(
        predict,
        tuple(thresholds),
        survey=survey,
        n_density=n_draws,
        n_other=n_other,
        rng=seed,
        simulator=simulator,
        population=population,
    )
    neg = _negative_scores(predict, simulator, survey, n_neg, seed + 1, nonlens_kind)
    functions = _selection_functions(
        ylds,
        neg,
        smoke=size == "smoke",
        thresholds=tuple(thresholds),
        fpr=[f for f in fpr if n_neg * f >= 1.0 - 1e-9] or None,
        interval=interval,
        provenance={
            "source": f"{survey} lens population (LensPop-detectable lenses)",
            "survey": survey,
            "seed": seed,
            "size": size,
        },
        negatives={"kind": nonlens_kind, "n": n_neg, "seed": seed + 1},
    )
    return PopulationSelection(functions, ylds, neg, note)


def _count(name: str, default: int, value: int | None) -> int:
    """``value`` (checked >= 1) or, when None, ``default``; ``name`` is the parameter's."""
    if value is None:
        return default
    if value < 1:
        raise ProbeValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def _negative_scores(
    predict: Mapping[str, Callable[[Any], Any]],
    simulator: str,
    survey: str,
    n: int,
    seed: int,
    kind: str,
) -> dict[str, np.ndarray]:
    """p(lens) of each model on ``n`` non-lenses of ``kind`` drawn at ``survey`` with ``seed``."""
    sim = load_callable(simulator, default_attr="Simulator")(survey=survey)
    x_neg = sim.render(sim.sample_nonlenses(n, rng=seed, kind=kind))
    return {name: np.asarray(f(x_neg), dtype=np.float64).reshape(-1) for name, f in predict.items()}


def _selection_function(
    lens_scores: np.ndarray, negative_scores: np.ndarray, values: np.ndarray, **kwargs: Any
) -> SelectionFunction:
    """One model's selection function over the detectable lenses (scores ``lens_scores``,
    parameter ``values``) and the non-lenses that set its ``fpr`` thresholds; ``kwargs`` go to
    :func:`probe.selection.selection_function`."""
    n_neg = len(negative_scores)
    return selection_function(
        np.r_[lens_scores, negative_scores],
        np.r_[np.ones(len(values), np.int8), np.zeros(n_neg, np.int8)],
        np.r_[values, np.full(n_neg, np.nan)],
        **kwargs,
    )


def _selection_functions(
    ylds: SurveyYields,
    neg: Mapping[str, np.ndarray],
    *,
    smoke: bool,
    thresholds: tuple[float, ...],
    fpr: Sequence[float] | None,
    interval: str,
    provenance: Mapping[str, Any],
    negatives: Mapping[str, Any],
) -> dict[str, dict[str, SelectionFunction]]:
    """``{parameter: {model: SelectionFunction}}`` over the detectable lenses of ``ylds`` and
    the non-lens scores ``neg``, binned by :data:`POPULATION_BINS` (a parameter with fewer than
    :data:`MIN_LENSES` detectable lenses in range is left out). ``provenance`` (plus the number
    of detectable lenses and ``negatives``) is recorded with each function."""
    functions: dict[str, dict[str, SelectionFunction]] = {}
    for param, (lo, hi, nb, nb_smoke, unit) in POPULATION_BINS.items():
        values = ylds.detectable_rows[param].to_numpy(dtype=np.float64)
        if np.count_nonzero((values >= lo) & (values <= hi)) < MIN_LENSES:
            continue
        per_model: dict[str, SelectionFunction] = {}
        for name, negative_scores in neg.items():
            per_model[name] = _selection_function(
                ylds.detectable_scores[name],
                negative_scores,
                values,
                bins=Binning.uniform(lo, hi, n=nb_smoke if smoke else nb, outside="drop"),
                thresholds=thresholds,
                fpr=fpr,
                interval=interval,
                name=param,
                unit=unit,
                label=name,
                provenance={
                    **provenance,
                    "n_detectable": len(values),
                    "negatives": dict(negatives),
                },
            )
        functions[param] = per_model
    return functions
