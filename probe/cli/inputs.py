"""Where the ``probe`` commands get their inputs: value lists, thresholds, image sets and
simulators. :func:`load_data` and :func:`make_simulator` are the seams tests replace with fakes
(the commands look them up here at call time)."""

from __future__ import annotations

from typing import Any

import numpy as np

from probe.errors import ProbeValueError


def parse_values(text: str) -> np.ndarray:
    """``"start:stop:step"`` (stop included when on the grid) or ``"a,b,c"`` -> float64 array."""
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ProbeValueError(f"--values {text!r}: need step > 0 and stop >= start")
            # Count steps with a tolerance so 0:3:0.25 includes 3 despite rounding.
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return np.round(start + step * np.arange(count), 12)
        return np.array([float(x) for x in text.split(",") if x.strip()])
    except ProbeValueError:
        raise
    except ValueError:
        raise ProbeValueError(
            f"--values {text!r}: expected start:stop:step or a comma-separated list"
        ) from None


def parse_thresholds(text: str, option: str) -> list[float]:
    """Score thresholds ``a,b,...``, each in [0, 1] (``option`` names the flag in errors)."""
    values = [float(v) for v in parse_values(text)]
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad or not values:
        raise ProbeValueError(f"{option} {text!r}: each threshold must be in [0, 1]")
    return values


def parse_floats(text: str | None) -> list[float]:
    """Like :func:`parse_values`, as a list; ``[]`` for no text (an option not given)."""
    return [] if not text else [float(v) for v in parse_values(text)]


def load_data(path: str) -> Any:
    """Load an image set (:func:`probe.adapters.datasets.open_image_set`)."""
    from probe.adapters.datasets import open_image_set

    return open_image_set(path)


def close_data(data: Any) -> None:
    """Close an image set from :func:`load_data` (one without ``close`` needs none)."""
    close = getattr(data, "close", None)
    if callable(close):
        close()


def make_simulator(survey: str, npix: int | None) -> Any:
    """The default simulator for ``survey``
    (:func:`probe.adapters.simulators.default_simulator`)."""
    from probe.adapters.simulators import default_simulator

    return default_simulator(survey, npix)
