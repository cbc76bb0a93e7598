"""Assertion helpers for teams writing their own tests of a lens finder.

Each helper builds an expectation (:mod:`probe.gating.expectations`), tests it on the model outputs
you
pass (:func:`probe.gating.verdicts.evaluate`: per-bin tests, Holm's correction, seeded bootstrap)
and
raises :class:`AssertionError` with the outcome's message when it does not hold; otherwise it
returns the :class:`~probe.gating.verdicts.Outcome`. The fixtures ``probe_suite`` and
``probe_gate_result`` come with the pytest plugin (:mod:`probe.pytest_plugin`).

>>> import numpy as np
>>> from probe.testing import assert_min_score
>>> p = np.r_[np.full(50, 0.9), np.full(50, 0.2)]; labels = np.r_[np.ones(50), np.zeros(50)]
>>> assert_min_score(p, labels, min_mean=0.8).holds
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probe import rng as _rng
from probe.gating.expectations import Invariance, MinScore, NoRegression
from probe.gating.verdicts import Outcome, evaluate

if TYPE_CHECKING:
    from probe.gating.expectations import Expectation
    from probe.gating.result import GateResult

__all__ = [
    "assert_expectation",
    "assert_gate",
    "assert_invariant",
    "assert_min_score",
    "assert_no_regression",
]


def assert_expectation(
    expectation: Expectation | Outcome, p_lens: Any = None, labels: Any = None, **kwargs: Any
) -> Outcome:
    """Assert that an expectation holds.

    Parameters
    ----------
    expectation : Expectation or Outcome
        An expectation, tested on ``p_lens`` and ``labels`` with ``kwargs`` (``parameter``,
        ``baseline``, ``alpha``, ``n_boot``, ``rng``: see :func:`probe.gating.verdicts.evaluate`);
        or
        an outcome already computed (e.g. from ``probe_gate_result.outcomes``).

    Returns
    -------
    Outcome
        When the expectation holds.

    Raises
    ------
    AssertionError
        With the outcome's message (property, failing bins, measured values with intervals,
        thresholds) when it does not.
    """
    if isinstance(expectation, Outcome):
        outcome = expectation
    else:
        if p_lens is None or labels is None:
            raise TypeError("assert_expectation needs p_lens and labels to test an expectation")
        outcome = evaluate(expectation, p_lens, labels, **kwargs)
    if not outcome.holds:
        raise AssertionError(outcome.message)
    return outcome


def assert_gate(result: GateResult) -> GateResult:
    """Assert that every expectation of a gate run holds (the messages of all failures)."""
    failed = result.failures
    if failed:
        raise AssertionError("\n".join(o.message for o in failed))
    return result


def _where(over: str, values: Any, range: Any, bins: int) -> dict[str, Any]:
    sweep = values is not None and len(values) > 0
    binned = range is not None
    return {
        "over": over if (sweep or binned) else "",
        "values": tuple(values) if sweep else (),
        "range": range,
        "bins": bins,
    }


def assert_min_score(
    p_lens: Any,
    labels: Any,
    *,
    min_mean: float,
    group: str = "lens",
    over: str = "value",
    values: Any = None,
    parameter: Any = None,
    range: tuple[float, float] | None = None,
    bins: int = 1,
    alpha: float = 0.05,
    n_boot: int = 2000,
    rng: _rng.RngLike = 0,
) -> Outcome:
    """Assert that the mean correct-class score of ``group`` exceeds ``min_mean`` in every bin.

    ``p_lens`` is ``(len(values), n)`` for a sweep over ``values``, else ``(n,)``; with
    ``range`` (and ``parameter``, one value per image) the images are binned into ``bins``.
    """
    e = MinScore(
        name="min_score", min_mean=min_mean, group=group, **_where(over, values, range, bins)
    )
    return assert_expectation(
        e, p_lens, labels, parameter=parameter, alpha=alpha, n_boot=n_boot, rng=rng
    )


def assert_invariant(
    p_lens: Any,
    labels: Any,
    *,
    tolerance: float,
    values: Any = None,
    parameter: Any = None,
    range: tuple[float, float] | None = None,
    bins: int = 1,
    reference: float | None = None,
    group: str = "all",
    over: str = "value",
    alpha: float = 0.05,
    n_boot: int = 2000,
    rng: _rng.RngLike = 0,
) -> Outcome:
    """Assert, by an equivalence test (TOST), that the mean score moves by less than
    ``tolerance``: between each sweep value and ``reference`` (default the first value), or
    between each ``parameter`` bin and the whole ``range``."""
    e = Invariance(
        name="invariance", tolerance=tolerance, reference=reference, group=group,
        **_where(over, values, range, bins),
    )  # fmt: skip
    return assert_expectation(
        e, p_lens, labels, parameter=parameter, alpha=alpha, n_boot=n_boot, rng=rng
    )


def assert_no_regression(
    p_lens: Any,
    baseline: Any,
    labels: Any,
    *,
    delta: float,
    group: str = "all",
    over: str = "value",
    values: Any = None,
    parameter: Any = None,
    range: tuple[float, float] | None = None,
    bins: int = 1,
    alpha: float = 0.05,
    n_boot: int = 2000,
    rng: _rng.RngLike = 0,
) -> Outcome:
    """Assert that the candidate's mean correct-class score minus the baseline's, on the same
    images, exceeds ``-delta`` in every bin (paired bootstrap)."""
    e = NoRegression(
        name="no_regression", delta=delta, group=group, **_where(over, values, range, bins)
    )
    return assert_expectation(
        e, p_lens, labels, parameter=parameter, baseline=baseline, alpha=alpha, n_boot=n_boot,
        rng=rng,
    )  # fmt: skip
