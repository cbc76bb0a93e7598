"""Expectations a lens finder must *demonstrate*: five frozen dataclasses.

They map one-to-one onto the ``[[expectation]]`` tables of a suite file (:mod:`probe.gating.suite`);
:mod:`probe.gating.verdicts` tests them. ``s`` is the correct-class score (p for lenses, 1 - p for
non-lenses).

==============  ========================================================================
``type``        property, in every bin
==============  ========================================================================
min_score       mean ``s`` of a class exceeds ``min_mean``
invariance      mean ``s`` stays within ``+-tolerance`` of its reference (equivalence, TOST)
direction       mean ``s`` does not increase (or decrease) by ``tolerance`` between neighbours
completeness    fraction of lenses with ``p >= threshold`` exceeds ``min_completeness``
no_regression   candidate minus baseline mean ``s`` on the same images exceeds ``-delta``
==============  ========================================================================

An expectation is tested over a *sweep* (``over`` names a perturber, ``values`` its settings:
one bin per value), over a *binned truth parameter* (``over`` a truth column, ``range`` and
``bins``) or, with neither, over the whole set (one bin).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, cast

import numpy as np

from probe import rng as _rng
from probe.binning import Binning
from probe.errors import ProbeTypeError, ProbeValueError
from probe.validation import names_list

if TYPE_CHECKING:
    from probe.gating.cells import Cell, ScoreData
    from probe.gating.verdicts import Outcome

__all__ = [
    "TYPES",
    "Completeness",
    "Direction",
    "Expectation",
    "Invariance",
    "MinScore",
    "NoRegression",
]

GROUPS: tuple[str, ...] = ("lens", "nonlens", "all")
DIRECTIONS: tuple[str, ...] = ("nonincreasing", "nondecreasing")


def _number(value: Any, who: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ProbeTypeError(f"{who}: {name} must be a number; got {value!r}")
    if not np.isfinite(float(value)):
        raise ProbeValueError(f"{who}: {name} must be finite; got {value!r}")
    return float(value)


def _within(value: Any, who: str, name: str, closed: str = "") -> float:
    """``value`` as a float in (0, 1); ``closed`` holds "l" and/or "r" for closed ends."""
    v = _number(value, who, name)
    if not ((v >= 0 if "l" in closed else v > 0) and (v <= 1 if "r" in closed else v < 1)):
        span = f"{'[' if 'l' in closed else '('}0, 1{']' if 'r' in closed else ')'}"
        raise ProbeValueError(f"{who}: {name} must be in {span}; got {value!r}")
    return v


def _score(group: str) -> str:
    """The statistic in words: "mean lens score", "mean non-lens score" or "mean score"."""
    return {"lens": "mean lens score", "nonlens": "mean non-lens score"}.get(group, "mean score")


def _choice(value: Any, who: str, name: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ProbeValueError(f"{who}: {name} must be one of {names_list(options)}; got {value!r}")


@dataclass(frozen=True, kw_only=True)
class _Expectation:
    """Fields shared by every expectation.

    Attributes
    ----------
    name : str
        The user's label: unique within a suite, names the test in reports.
    over : str
        A perturber short name (``probe.perturbers.registry()``, e.g. "blur") with ``values``;
        a truth column (e.g. "theta_E") with ``range`` and ``bins``; "" for the whole set.
    values : tuple of float
        Sweep settings in the perturber's unit, strictly increasing.
    range : (float, float) or None
        ``(lo, hi)`` of the truth parameter, in its unit; images outside are left out.
    bins : int
        Number of equal-width bins over ``range`` (1 to 1000).
    set : str
        Which of the suite's data sets to use (``[data.sets.<name>]``).
    """

    type: ClassVar[str] = ""
    name: str
    over: str = ""
    values: tuple[float, ...] = ()
    range: tuple[float, float] | None = None
    bins: int = 1
    set: str = "main"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProbeValueError(
                f"{self.type}: name must be a non-empty string; got {self.name!r}"
            )
        who = self.who
        if not isinstance(self.over, str):
            raise ProbeTypeError(f"{who}: over must be a string; got {self.over!r}")
        if not isinstance(self.set, str) or not self.set:
            raise ProbeValueError(f"{who}: set must be a non-empty string; got {self.set!r}")
        if not isinstance(self.values, list | tuple | np.ndarray):
            raise ProbeTypeError(f"{who}: values must be a list of numbers; got {self.values!r}")
        values = tuple(_number(v, who, "values") for v in self.values)
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ProbeValueError(f"{who}: values must increase strictly; got {list(values)}")
        object.__setattr__(self, "values", values)
        if self.range is not None:
            if not isinstance(self.range, list | tuple) or len(self.range) != 2:
                raise ProbeValueError(f"{who}: range must be [lo, hi]; got {self.range!r}")
            lo, hi = (_number(v, who, "range") for v in self.range)
            if hi <= lo:
                raise ProbeValueError(f"{who}: range must have lo < hi; got [{lo:g}, {hi:g}]")
            object.__setattr__(self, "range", (lo, hi))
        if isinstance(self.bins, bool) or not isinstance(self.bins, int | np.integer):
            raise ProbeTypeError(f"{who}: bins must be an integer; got {self.bins!r}")
        if not 1 <= self.bins <= 1000:
            raise ProbeValueError(f"{who}: bins must be in [1, 1000]; got {self.bins}")
        object.__setattr__(self, "bins", int(self.bins))
        if values and self.range is not None:
            raise ProbeValueError(f"{who}: give values (a sweep) or range (a parameter), not both")
        if (values or self.range is not None) and not self.over:
            raise ProbeValueError(f"{who}: values and range need over (a perturber or a column)")
        if self.over and not values and self.range is None:
            raise ProbeValueError(
                f"{who}: over={self.over!r} needs values (a perturber sweep) or range and bins "
                "(a truth parameter)"
            )
        if self.bins != 1 and self.range is None:
            raise ProbeValueError(f"{who}: bins needs range")
        self._validate()

    def _validate(self) -> None:
        """Type-specific checks."""

    @property
    def who(self) -> str:
        """``type 'name'``, the prefix of every message about this expectation."""
        return f"{self.type} {self.name!r}"

    @property
    def mode(self) -> str:
        """How the bins are formed: "sweep", "binned" or "whole"."""
        if self.values:
            return "sweep"
        return "binned" if self.range is not None else "whole"

    @property
    def binning(self) -> Binning | None:
        """The binning of ``over`` (values outside ``range`` are left out), or None."""
        if self.range is None:
            return None
        return Binning.uniform(*self.range, n=self.bins, outside="drop")

    @property
    def group(self) -> str:
        """Which images enter: "lens", "nonlens" or "all" (overridden by a field)."""
        return "lens"

    def describe(self) -> str:
        """The property in words, with its threshold."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The ``[[expectation]]`` table: ``type`` plus every field that is set."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is not None and v != ():
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def evaluate(
        self,
        p_lens: Any,
        labels: Any,
        *,
        parameter: Any = None,
        baseline: Any = None,
        alpha: float = 0.05,
        n_boot: int = 2000,
        rng: _rng.RngLike = 0,
    ) -> Outcome:
        """Test this expectation on per-image outputs (see
        :func:`probe.gating.verdicts.evaluate`)."""
        from probe.gating.verdicts import evaluate

        return evaluate(
            cast("Expectation", self),
            p_lens,
            labels,
            parameter=parameter,
            baseline=baseline,
            alpha=alpha,
            n_boot=n_boot,
            rng=rng,
        )

    def cells(self, data: ScoreData) -> list[Cell]:
        """The per-bin tests of this expectation on ``data`` (see :mod:`probe.gating.verdicts`)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class MinScore(_Expectation):
    """Mean correct-class score of ``group`` must exceed ``min_mean`` in every bin.

    ``min_mean`` in (0, 1); ``group`` "lens" (default), "nonlens" or "all".
    """

    type: ClassVar[str] = "min_score"
    min_mean: float
    group: str = "lens"

    def _validate(self) -> None:
        object.__setattr__(self, "min_mean", _within(self.min_mean, self.who, "min_mean"))
        _choice(self.group, self.who, "group", GROUPS)

    def describe(self) -> str:
        return f"{_score(self.group)} must exceed {self.min_mean:g}"

    def cells(self, data: ScoreData) -> list[Cell]:
        return [
            data.boot_cell(
                b,
                sl.label,
                sl.low,
                sl.high,
                data.scores[sl.row, sl.index],
                sl.index,
                above=self.min_mean,
            )
            for b, sl in enumerate(data.slices(self.group))
        ]


@dataclass(frozen=True, kw_only=True)
class Invariance(_Expectation):
    """Mean score within ``+-tolerance`` of its reference in every bin (TOST).

    Sweeps: per value, the paired change ``mean(s_v - s_ref)`` over the same images, against
    ``reference`` (default: the first value, normally "no perturbation"). Binned parameters:
    each bin's mean minus the mean over the whole range (bootstrap stratified by bin and class).
    ``tolerance`` in (0, 1).
    """

    type: ClassVar[str] = "invariance"
    tolerance: float
    group: str = "all"
    reference: float | None = None

    def _validate(self) -> None:
        who = self.who
        object.__setattr__(self, "tolerance", _within(self.tolerance, who, "tolerance"))
        _choice(self.group, who, "group", GROUPS)
        if self.mode == "whole":
            raise ProbeValueError(f"{who}: invariance needs values (a sweep) or range and bins")
        if (self.mode == "sweep" and len(self.values) < 2) or (
            self.mode == "binned" and self.bins < 2
        ):
            raise ProbeValueError(f"{who}: invariance needs at least 2 values or 2 bins")
        if self.reference is not None:
            ref = _number(self.reference, who, "reference")
            if ref not in self.values:
                raise ProbeValueError(
                    f"{who}: reference must be one of values {list(self.values)}; got {ref:g}"
                )
            object.__setattr__(self, "reference", ref)

    @property
    def reference_value(self) -> float | None:
        """The sweep value every other is compared with (None for a binned parameter)."""
        if self.mode != "sweep":
            return None
        return self.values[0] if self.reference is None else self.reference

    def describe(self) -> str:
        if self.mode == "sweep":
            what = f"change of {_score(self.group)} from {self.over}={self.reference_value:g}"
        else:
            what = f"{_score(self.group)} of each {self.over} bin minus its mean over the range"
        return f"{what} must stay within +-{self.tolerance:g}"

    def cells(self, data: ScoreData) -> list[Cell]:
        tol = self.tolerance
        if self.mode == "sweep":
            ref = self.values[0] if self.reference is None else self.reference
            j_ref = self.values.index(ref)
            cells = []
            for b, sl in enumerate(data.slices(self.group)):
                if sl.row != j_ref:
                    d = data.scores[sl.row, sl.index] - data.scores[j_ref, sl.index]
                    label = f"{sl.label} vs {self.reference_value:g}"
                    cells.append(
                        data.boot_cell(
                            b, label, sl.low, sl.high, d, sl.index, above=-tol, below=tol
                        )
                    )
            return cells
        return data.binned_cells(self.group, lambda m, total: m - total, above=-tol, below=tol)


@dataclass(frozen=True, kw_only=True)
class Direction(_Expectation):
    """Mean score must not rise ("nonincreasing") or fall ("nondecreasing") by ``tolerance``
    or more between neighbouring values or bins.

    Sweeps use the paired change over the same images; binned parameters the difference of
    neighbouring bins' means. For "nonincreasing" the null of each step is ``d >= tolerance``.
    ``tolerance`` in [0, 1) (default 0.02).
    """

    type: ClassVar[str] = "direction"
    direction: str
    tolerance: float = 0.02
    group: str = "all"

    def _validate(self) -> None:
        who = self.who
        _choice(self.direction, who, "direction", DIRECTIONS)
        object.__setattr__(self, "tolerance", _within(self.tolerance, who, "tolerance", "l"))
        _choice(self.group, who, "group", GROUPS)
        if (
            self.mode == "whole"
            or (self.mode == "sweep" and len(self.values) < 2)
            or (self.mode == "binned" and self.bins < 2)
        ):
            raise ProbeValueError(f"{who}: direction needs at least 2 values or 2 bins")

    def describe(self) -> str:
        verb = "rise" if self.direction == "nonincreasing" else "fall"
        return (
            f"{_score(self.group)} must not {verb} by {self.tolerance:g} or more between "
            f"neighbouring {self.over} values"
        )

    def cells(self, data: ScoreData) -> list[Cell]:
        # "nonincreasing": the property is d < tol; "nondecreasing": d > -tol.
        if self.direction == "nonincreasing":
            bound = {"below": self.tolerance}
        else:
            bound = {"above": -self.tolerance}
        if self.mode == "sweep":
            cells = []
            slices = data.slices(self.group)
            for b, (s0, s1) in enumerate(itertools.pairwise(slices)):
                d = data.scores[s1.row, s1.index] - data.scores[s0.row, s0.index]
                label = f"{self.over} {s0.low:g}->{s1.low:g}"
                cells.append(data.boot_cell(b, label, s0.low, s1.low, d, s0.index, **bound))
            return cells
        return data.neighbour_cells(self.group, **bound)


@dataclass(frozen=True, kw_only=True)
class Completeness(_Expectation):
    """Fraction of lenses with ``p_lens >= threshold`` must exceed ``min_completeness``.

    Lenses only. p-value ``P(c <= x | k, n)`` under the Jeffreys posterior
    ``Beta(k + 1/2, n - k + 1/2)``. ``threshold`` in (0, 1], ``min_completeness`` in (0, 1).
    """

    type: ClassVar[str] = "completeness"
    min_completeness: float
    threshold: float = 0.5

    def _validate(self) -> None:
        who = self.who
        x = _within(self.min_completeness, who, "min_completeness")
        object.__setattr__(self, "min_completeness", x)
        object.__setattr__(self, "threshold", _within(self.threshold, who, "threshold", "r"))

    def describe(self) -> str:
        return f"completeness at p_lens >= {self.threshold:g} must exceed {self.min_completeness:g}"

    def cells(self, data: ScoreData) -> list[Cell]:
        # For a lens, s = p_lens, so "p >= t" is "s >= t".
        return [
            data.binomial_cell(
                sl.label,
                sl.low,
                sl.high,
                data.scores[sl.row, sl.index] >= self.threshold,
                self.min_completeness,
            )
            for sl in data.slices("lens")
        ]


@dataclass(frozen=True, kw_only=True)
class NoRegression(_Expectation):
    """Candidate minus baseline mean score on the same images must exceed ``-delta`` per bin.

    Paired bootstrap over images (one resample of indices for both models). ``delta`` in
    (0, 1); ``group`` "all" (default), "lens" or "nonlens".
    """

    type: ClassVar[str] = "no_regression"
    delta: float
    group: str = "all"

    def _validate(self) -> None:
        object.__setattr__(self, "delta", _within(self.delta, self.who, "delta"))
        _choice(self.group, self.who, "group", GROUPS)

    def describe(self) -> str:
        return f"candidate - baseline {_score(self.group)} must exceed -{self.delta:g}"

    def cells(self, data: ScoreData) -> list[Cell]:
        if data.baseline is None:
            raise ProbeValueError(f"{self.who}: needs the baseline's outputs (baseline=...)")
        return [
            data.boot_cell(
                b,
                sl.label,
                sl.low,
                sl.high,
                data.scores[sl.row, sl.index] - data.baseline[sl.row, sl.index],
                sl.index,
                above=-self.delta,
            )
            for b, sl in enumerate(data.slices(self.group))
        ]


Expectation: TypeAlias = MinScore | Invariance | Direction | Completeness | NoRegression
"""Any of the five expectation types."""

TYPES: dict[str, type[_Expectation]] = {
    cls.type: cls for cls in (MinScore, Invariance, Direction, Completeness, NoRegression)
}
"""Expectation classes by their suite ``type`` name."""
