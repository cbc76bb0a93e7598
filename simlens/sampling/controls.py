"""User controls of the sampler: scalar, ``(low, high)`` range, or per-object array.

Controls are resolved into one float per object before any population draw, from the object's
own random stream, so a range control gives the same value to object ``i`` however the set is
chunked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simlens.errors import SimlensValueError

__all__ = ["CONTROL_RANGES", "Control", "parse_control"]

# parameter -> (low, high, low_inclusive, unit); the valid range of a control's values
CONTROL_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "theta_E": (0.0, 10.0, False, "arcsec"),
    "psf_scale": (0.0, math.inf, False, ""),
    "psf_scale_source": (0.0, math.inf, False, ""),
    "mag_lens_r": (10.0, 40.0, True, "mag"),
    "mag_source_g": (10.0, 40.0, True, "mag"),
    "n_sersic_source": (0.5, 8.0, True, ""),
    "gamma_ext": (0.0, 0.5, True, ""),
    "psi_ext": (-math.pi, math.pi, True, "rad"),
    "gamma_slope": (1.2, 2.8, True, ""),
}


def _range_text(name: str) -> str:
    lo, hi, inc, unit = CONTROL_RANGES[name]
    left = "[" if inc else "("
    u = f" {unit}" if unit else ""
    return f"{left}{lo}, {hi}]{u}"


def _check_values(name: str, v: NDArray[np.float64]) -> None:
    lo, hi, inc, _ = CONTROL_RANGES[name]
    if not np.all(np.isfinite(v)):
        idx = int(np.flatnonzero(~np.isfinite(v))[0])
        raise SimlensValueError(
            f"{name} is NaN or infinite at index {idx}; valid range {_range_text(name)}"
        )
    bad = (v < lo if inc else v <= lo) | (v > hi)
    if np.any(bad):
        idx = int(np.flatnonzero(bad)[0])
        raise SimlensValueError(
            f"{name} = {v[idx]!r} is outside the valid range {_range_text(name)} (index {idx})"
        )


@dataclass(frozen=True)
class Control:
    """A resolved control: ``kind`` is ``"none"``, ``"scalar"``, ``"range"`` or ``"array"``."""

    name: str
    kind: str
    values: NDArray[np.float64]  # scalar: (1,), range: (2,), array: (n,), none: (0,)

    def draw(self, u: NDArray[np.float64]) -> NDArray[np.float64] | None:
        """Values for objects whose uniform deviates are ``u`` (range) or indices (array)."""
        if self.kind == "none":
            return None
        if self.kind == "scalar":
            return np.full(u.shape, self.values[0])
        if self.kind == "range":
            lo, hi = self.values
            return lo + (hi - lo) * u
        raise AssertionError("array controls are sliced, not drawn")


def parse_control(name: str, value: Any, n: int) -> Control:
    """Validate a control given as ``None``, a scalar, a ``(low, high)`` tuple or an array."""
    if name not in CONTROL_RANGES:
        raise SimlensValueError(f"unknown control {name!r}; known: {', '.join(CONTROL_RANGES)}")
    if value is None:
        return Control(name, "none", np.empty(0))
    if isinstance(value, tuple) and len(value) == 2:
        v = np.asarray(value, dtype=float)
        _check_values(name, v)
        if not v[0] <= v[1]:
            raise SimlensValueError(f"{name} range (low, high) must have low <= high, got {value}")
        return Control(name, "range", v)
    if np.isscalar(value):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise SimlensValueError(f"{name} must be a number, a (low, high) tuple or an array")
        v = np.asarray([float(value)])
        _check_values(name, v)
        return Control(name, "scalar", v)
    if isinstance(value, Sequence | np.ndarray):
        v = np.asarray(value, dtype=float).ravel()
        if v.size != n:
            raise SimlensValueError(
                f"{name} given as an array must have length n = {n}, got {v.size} "
                "(use a (low, high) tuple for a uniform range)"
            )
        _check_values(name, v)
        return Control(name, "array", v)
    raise SimlensValueError(f"{name} must be a number, a (low, high) tuple or an array of length n")
