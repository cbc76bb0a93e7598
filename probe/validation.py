"""Eager validation of user input. Every message names the argument and the problem."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from probe.errors import ProbeTypeError, ProbeValueError


def check_labels(labels: Any, n: int) -> np.ndarray:
    """Return ``labels`` as an int8 array of 0 (non-lens) and 1 (lens).

    Parameters
    ----------
    labels : array_like of shape (n,)
        Ground-truth classes; booleans are accepted.
    n : int
        Number of images the labels must match.

    Raises
    ------
    ProbeValueError
        If the length differs from ``n`` or a label is not 0 or 1 (the first bad index is named).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ProbeTypeError(f"labels must be 1-D; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ProbeValueError(f"labels has length {arr.shape[0]} but images has {n} images")
    if arr.dtype.kind not in "biuf":
        raise ProbeTypeError(f"labels must be 0/1 numbers or booleans; got dtype {arr.dtype}")
    bad = np.flatnonzero(~np.isin(arr, (0, 1)))
    if bad.size:
        raise ProbeValueError(
            f"labels must be 0 or 1; got {arr[bad[0]].item()!r} at index {bad[0]} "
            f"({bad.size} bad label(s))"
        )
    return arr.astype(np.int8)


def check_values(values: Any, n: int, *, name: str = "values") -> np.ndarray:
    """Return per-image parameter values as finite float64, one per image.

    Raises
    ------
    ProbeValueError
        On a length mismatch or a NaN/inf (the first bad index is named).
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ProbeTypeError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ProbeValueError(f"{name} has length {arr.shape[0]} but images has {n} images")
    if arr.dtype.kind not in "biuf":
        raise ProbeTypeError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ProbeValueError(f"{name} contain {arr[bad[0]].item()} at index {bad[0]}")
    return arr


def check_grid(values: Any, *, name: str = "values") -> np.ndarray:
    """Return sweep values (the perturbation or simulator settings) as a finite float64 grid.

    The grid must be non-empty, 1-D, finite and without duplicates (a duplicate would merge two
    rows of the result table).
    """
    if isinstance(values, int | float | np.number):
        values = [values]
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ProbeTypeError(f"{name} must be a 1-D sequence of numbers; got shape {arr.shape}")
    if arr.size == 0:
        raise ProbeValueError(f"{name} is empty; give at least one value")
    if arr.dtype.kind not in "biuf":
        raise ProbeTypeError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ProbeValueError(f"{name} contain {arr[bad[0]].item()} at index {bad[0]}")
    uniq, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ProbeValueError(f"{name} contain duplicate value {uniq[counts > 1][0]}")
    return arr


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ProbeTypeError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ProbeValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_nonnegative(value: Any, name: str) -> float:
    """Return ``value`` as a float, raising unless it is finite and >= 0."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ProbeTypeError(f"{name} must be a number; got {value!r}") from None
    if not np.isfinite(out) or out < 0:
        raise ProbeValueError(f"{name} must be finite and >= 0; got {value!r}")
    return out


def first_nonfinite(batch: np.ndarray) -> tuple[int, str] | None:
    """Index (within ``batch``) and kind ("NaN" or "inf") of the first non-finite image, if any."""
    # A float sum is a fast screen: NaN propagates and inf stays inf, so a finite sum proves the
    # batch is clean. A non-finite sum may also be overflow of large finite pixels, so only then
    # do we pay for the per-pixel test.
    if np.isfinite(batch.sum()):
        return None
    per_image_nan = np.isnan(batch).reshape(batch.shape[0], -1).any(axis=1)
    per_image_inf = np.isinf(batch).reshape(batch.shape[0], -1).any(axis=1)
    bad = np.flatnonzero(per_image_nan | per_image_inf)
    if bad.size == 0:
        return None
    i = int(bad[0])
    return i, "NaN" if per_image_nan[i] else "inf"


def names_list(names: Sequence[str]) -> str:
    """Comma-separated quoted names, for messages listing valid choices."""
    return ", ".join(repr(n) for n in names)
