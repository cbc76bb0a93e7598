"""Binning: half-open bins, closed last bin, out-of-range policy, quantiles; properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe import Binning, ProbeValueError


def test_uniform_edges_centres_and_repr():
    b = Binning.uniform(1.0, 2.7, n=30)
    assert b.n_bins == 30
    assert b.bin_edges[0] == 1.0
    assert b.bin_edges[-1] == 2.7
    np.testing.assert_allclose(np.diff(b.bin_edges), 1.7 / 30)
    np.testing.assert_allclose(b.centres, 1.0 + (np.arange(30) + 0.5) * 1.7 / 30)
    assert repr(b) == "Binning.uniform(1.0, 2.7, n=30)"
    assert eval(repr(b)) == b


def test_maximum_lands_in_last_bin_and_minimum_in_first():
    b = Binning.uniform(0.0, 1.0, n=4)
    np.testing.assert_array_equal(b.assign([0.0, 0.25, 0.2499, 0.5, 1.0]), [0, 1, 0, 2, 3])


def test_inner_edges_belong_to_the_bin_above():
    b = Binning.edges([0, 1, 2, 3])
    np.testing.assert_array_equal(b.assign([1.0, 2.0, 3.0]), [1, 2, 2])


def test_outside_raises_naming_value_and_index():
    b = Binning.uniform(0.0, 1.0, n=2)
    with pytest.raises(ProbeValueError, match=r"outside the binning range.*1.5 at index 2"):
        b.assign([0.1, 0.2, 1.5, -3.0])


def test_outside_drop_marks_minus_one():
    b = Binning.uniform(0.0, 1.0, n=2, outside="drop")
    np.testing.assert_array_equal(b.assign([0.1, 1.5, -3.0, 1.0]), [0, -1, -1, 1])
    assert "outside='drop'" in repr(b)


def test_quantiles_equal_counts():
    values = np.arange(100.0)
    b = Binning.quantiles(values, n=4)
    np.testing.assert_array_equal(np.bincount(b.assign(values)), [25, 25, 25, 25])


def test_quantiles_with_ties_raise():
    with pytest.raises(ProbeValueError, match="ties"):
        Binning.quantiles(np.r_[np.zeros(90), np.arange(10.0)], n=5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Binning.uniform(1.0, 1.0, n=3), "lo < hi"),
        (lambda: Binning.uniform(0.0, 1.0, n=0), "positive integer"),
        (lambda: Binning.edges([0.0]), "at least 2"),
        (lambda: Binning.edges([0.0, 2.0, 1.0]), "increase strictly"),
        (lambda: Binning.edges([0.0, np.nan]), "finite"),
        (lambda: Binning.edges([0.0, 1.0], outside="clip"), "outside"),  # type: ignore[arg-type]
    ],
)
def test_bad_binnings_raise(call, match):
    with pytest.raises(ProbeValueError, match=match):
        call()


def test_binning_is_immutable():
    b = Binning.uniform(0, 1, n=2)
    with pytest.raises(AttributeError):
        b.outside = "drop"  # type: ignore[misc]


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=200), st.integers(1, 40))
def test_bins_partition_the_sample(values, n):
    """Every value between min and max lands in exactly one bin; counts add up to the sample."""
    arr = np.asarray(values)
    if arr.max() == arr.min():
        arr = np.r_[arr, arr.min() + 1.0]
    b = Binning.uniform(arr.min(), arr.max(), n=n)
    idx = b.assign(arr)
    assert np.all((idx >= 0) & (idx < n))
    assert np.bincount(idx, minlength=n).sum() == arr.size
    lows, highs = b.lows[idx], b.highs[idx]
    assert np.all(lows <= arr)
    last = idx == n - 1
    assert np.all(arr[~last] < highs[~last])
    assert np.all(arr[last] <= highs[last])


def test_uniform_edges_sit_on_the_decimal_grid():
    b = Binning.uniform(0, 1, n=10)
    assert b.bin_edges == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert Binning.uniform(0.6, 3.0, n=12).bin_edges[1:4] == (0.8, 1.0, 1.2)
    # No short decimal step (1/3): linspace's edges are kept.
    np.testing.assert_array_equal(Binning.uniform(0, 1, n=3).bin_edges, np.linspace(0, 1, 4))


def test_gridded_values_land_in_the_bin_they_start():
    """Values on an edge go to the bin above (the top edge to the last bin), also when they
    carry a rounding error from how the grid was made."""
    b = Binning.uniform(0, 1, n=10)
    exact = np.round(np.arange(11) * 0.1, 10)
    np.testing.assert_array_equal(b.assign(exact), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9])
    arange = np.arange(0.0, 1.0, 0.1)  # 0.30000000000000004, 0.6000000000000001, ...
    np.testing.assert_array_equal(b.assign(arange), np.arange(10))
    below = np.array([0.7 - 0.4, 1.0 - 0.4, 0.1 + 0.2 + 0.3 + 0.1])  # 0.2999..., 0.6, 0.7
    assert below[0] < 0.3
    np.testing.assert_array_equal(b.assign(below), [3, 6, 7])
    # A value just below the lowest edge by rounding is in range; a real miss is not.
    assert b.assign([-1e-17]).tolist() == [0]
    with pytest.raises(ProbeValueError, match="outside the binning range"):
        b.assign([-1e-6])
