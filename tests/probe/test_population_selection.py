"""Selection functions and yields over a survey's lens population (probe.studies.population)."""

from __future__ import annotations

import numpy as np
import pytest

from probe.errors import ProbeValueError
from probe.studies.population import MIN_LENSES, POPULATION_BINS, population_selection


def blue_centre(images):
    """A crude finder: p(lens) rises with the g-band light in an annulus of 4-12 px."""
    x = np.asarray(images, dtype=np.float64)
    yy, xx = np.mgrid[: x.shape[1], : x.shape[2]] - (x.shape[1] - 1) / 2
    ring = (np.hypot(yy, xx) > 4) & (np.hypot(yy, xx) < 12)
    g = x[:, ring, 0].mean(axis=1)
    return 1.0 / (1.0 + np.exp(-(g - 5.0) / 3.0))


@pytest.fixture(scope="module")
def pop():
    return population_selection(
        {"blue": blue_centre},
        size="smoke",
        seed=11,
        n_negatives=50,
        n_density=6000,
        fpr=(0.01, 0.1),
    )


def test_selection_and_yields_score_the_same_lenses(pop):
    ylds = pop.yields
    rows, p = ylds.detectable_rows, ylds.detectable_scores["blue"]
    assert len(rows) == len(p) == ylds.n_detectable > 0
    # recomputing the scores from the truth table's images gives the same numbers
    import simlens

    again = blue_centre(simlens.Simulator("des-y3").render(rows))
    np.testing.assert_allclose(again, p, rtol=1e-6)
    for param, (lo, hi, *_) in POPULATION_BINS.items():
        inside = (rows[param] >= lo) & (rows[param] <= hi)
        # a selection function wherever enough lenses fall in range (the 50% fit needs 10)
        assert (param in pop.functions) == (inside.sum() >= MIN_LENSES)
        if param not in pop.functions:
            continue
        sf = pop.functions[param]["blue"]
        t = sf.table[sf.table["threshold_label"] == "0.5"]
        # every in-range detectable lens is counted once, and completeness = fraction found
        assert t["n"].sum() == inside.sum()
        assert t["k"].sum() == (p[inside.to_numpy()] >= 0.5).sum()
        assert sf.provenance["survey"] == "des-y3"
    # 50 field non-lenses resolve a 10% false-positive rate, not 1% (skipped)
    assert pop.functions, "no parameter had enough lenses: raise the test's draw"
    ov = next(iter(pop.functions.values()))["blue"].overall.set_index("threshold_label")
    assert "fpr=0.1" in ov.index
    assert "fpr=0.01" not in ov.index
    neg = pop.negative_scores["blue"]
    assert len(neg) == 50
    assert ov.loc["fpr=0.1", "fpr"] == pytest.approx((neg >= ov.loc["fpr=0.1", "threshold"]).mean())
    assert ov.loc["fpr=0.1", "fpr"] <= 0.1
    # the yields' detectable completeness at 0.5 is the selection function's overall one
    y05 = ylds.detectable_found["blue"][0]
    assert y05.threshold == 0.5
    assert y05.completeness == pytest.approx((p >= 0.5).mean())


def test_population_selection_rejects_bad_input():
    with pytest.raises(ProbeValueError, match="models is empty"):
        population_selection({})
    with pytest.raises(ProbeValueError, match="size"):
        population_selection({"m": blue_centre}, size="huge")
    with pytest.raises(ProbeValueError, match="n_negatives"):
        population_selection({"m": blue_centre}, size="smoke", n_negatives=0)
