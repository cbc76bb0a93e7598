"""Binning of a continuous per-image parameter: a small immutable value object.

Bins are half-open, ``[e_i, e_{i+1})``, except the last, which is closed, ``[e_{k-1}, e_k]``, so
every value inside the range lands in exactly one bin and the maximum of a range built from the
data is kept (Sensie dropped it). A bin is reported by its edges and centre ``(e_i + e_{i+1}) / 2``.

Round numbers stay round: :meth:`Binning.uniform` snaps its edges to the decimal grid of ``lo``,
``hi`` and the step (``uniform(0, 1, n=10)`` has the edge 0.3, not linspace's
0.30000000000000004), and a value within ``1e-9`` of a bin width below an edge counts as on the
edge (a gridded value such as ``0.7 - 0.4 = 0.29999999999999993`` goes to the bin of 0.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from probe.errors import ProbeTypeError, ProbeValueError

Outside = Literal["raise", "drop"]

#: A value this fraction of the narrowest bin width below an edge is taken as on the edge.
EDGE_TOLERANCE = 1e-9


def _decimals(x: float) -> int:
    """Digits after the point in the shortest decimal that reads back as ``x``."""
    from decimal import Decimal

    exponent = Decimal(repr(float(x))).normalize().as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0


def _decimal_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """``n + 1`` equal-width edges from ``lo`` to ``hi``, on the decimal grid of the inputs when
    there is one (lo, hi and the step all short decimals), else :func:`numpy.linspace`'s."""
    edges = np.linspace(lo, hi, n + 1)
    step = float(f"{(hi - lo) / n:.12g}")
    if abs(step * n - (hi - lo)) > 1e-14 * max(abs(hi), abs(lo)):
        return edges  # the step is no short decimal (e.g. 1/3): nothing to snap to
    d = max(_decimals(lo), _decimals(hi), _decimals(step))
    if d > 12:
        return edges
    snapped = np.round(lo + step * np.arange(n + 1), d)
    snapped[0], snapped[-1] = lo, hi
    return snapped


@dataclass(frozen=True)
class Binning:
    """Bin edges plus what to do with values outside them.

    Build one with :meth:`uniform`, :meth:`edges` or :meth:`quantiles`.

    Parameters
    ----------
    bin_edges : tuple of float
        Strictly increasing edges, at least two, in the parameter's own unit.
    outside : {"raise", "drop"}
        "raise" (default): a value outside ``[bin_edges[0], bin_edges[-1]]`` is an error.
        "drop": such values are left out and the result reports how many (``Result.n_dropped``).
    """

    bin_edges: tuple[float, ...]
    outside: Outside = "raise"

    def __post_init__(self) -> None:
        edges = np.asarray(self.bin_edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2:
            raise ProbeValueError(f"bin_edges needs at least 2 edges; got {self.bin_edges!r}")
        if not np.all(np.isfinite(edges)):
            raise ProbeValueError(f"bin_edges must be finite; got {self.bin_edges!r}")
        if np.any(np.diff(edges) <= 0):
            i = int(np.flatnonzero(np.diff(edges) <= 0)[0])
            raise ProbeValueError(
                f"bin_edges must increase strictly; edge {i + 1} ({edges[i + 1]}) "
                f"<= edge {i} ({edges[i]})"
            )
        if self.outside not in ("raise", "drop"):
            raise ProbeValueError(f"outside must be 'raise' or 'drop'; got {self.outside!r}")
        object.__setattr__(self, "bin_edges", tuple(float(e) for e in edges))

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def uniform(cls, lo: float, hi: float, *, n: int, outside: Outside = "raise") -> Binning:
        """``n`` equal-width bins covering ``[lo, hi]`` (edges from :func:`numpy.linspace`)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ProbeValueError(f"n must be a positive integer number of bins; got {n!r}")
        lo_f, hi_f = float(lo), float(hi)
        if not (np.isfinite(lo_f) and np.isfinite(hi_f)) or hi_f <= lo_f:
            raise ProbeValueError(f"uniform binning needs finite lo < hi; got lo={lo}, hi={hi}")
        return cls(tuple(_decimal_edges(lo_f, hi_f, int(n))), outside)

    @classmethod
    def edges(cls, edges: Any, *, outside: Outside = "raise") -> Binning:
        """Bins between explicit, strictly increasing ``edges``."""
        arr = np.asarray(edges, dtype=np.float64)
        if arr.ndim != 1:
            raise ProbeTypeError(f"edges must be 1-D; got shape {arr.shape}")
        return cls(tuple(arr), outside)

    @classmethod
    def quantiles(cls, values: Any, *, n: int, outside: Outside = "raise") -> Binning:
        """``n`` bins holding about equal counts of ``values`` (edges at its quantiles).

        Raises
        ------
        ProbeValueError
            If ties in ``values`` make two quantile edges equal; use fewer bins or explicit edges.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ProbeValueError(f"n must be a positive integer number of bins; got {n!r}")
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ProbeValueError("values for quantile binning must be non-empty and finite")
        q = np.quantile(arr, np.linspace(0.0, 1.0, int(n) + 1))
        if np.any(np.diff(q) <= 0):
            raise ProbeValueError(
                f"values have ties: {n} quantile bins give repeated edges; use fewer bins"
            )
        return cls(tuple(q), outside)

    # -- properties -------------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(self.bin_edges) - 1

    @property
    def lows(self) -> np.ndarray:
        """Lower edge of each bin."""
        return np.asarray(self.bin_edges[:-1])

    @property
    def highs(self) -> np.ndarray:
        """Upper edge of each bin."""
        return np.asarray(self.bin_edges[1:])

    @property
    def centres(self) -> np.ndarray:
        """Centre of each bin, ``(low + high) / 2``: the ``value`` column of binned results."""
        return 0.5 * (self.lows + self.highs)

    def assign(self, values: Any, *, name: str = "values") -> np.ndarray:
        """Bin index of each value, ``-1`` for a value outside the range when ``outside="drop"``.

        Raises
        ------
        ProbeValueError
            If a value is outside the range and ``outside="raise"`` (the first one is named).
        """
        v = np.asarray(values, dtype=np.float64)
        edges = np.asarray(self.bin_edges)
        # A value a rounding error below an edge is on it: 0.7 - 0.4 belongs with 0.3.
        tol = EDGE_TOLERANCE * float(np.min(np.diff(edges)))
        # side="right" puts a value equal to an inner edge in the bin above (half-open bins);
        # the clip then folds the top edge itself into the last bin (closed last bin).
        idx = np.searchsorted(edges - tol, v, side="right") - 1
        idx = np.clip(idx, 0, self.n_bins - 1)
        out = (v < edges[0] - tol) | (v > edges[-1] + tol) | ~np.isfinite(v)
        if np.any(out):
            if self.outside == "raise":
                i = int(np.flatnonzero(out)[0])
                raise ProbeValueError(
                    f"{name} has {int(out.sum())} value(s) outside the binning range "
                    f"[{edges[0]}, {edges[-1]}], first {v[i]} at index {i}; "
                    "widen the bins or build the Binning with outside='drop'"
                )
            idx = np.where(out, -1, idx)
        return idx.astype(np.int64)

    def __repr__(self) -> str:
        edges = np.asarray(self.bin_edges)
        widths = np.diff(edges)
        if np.allclose(widths, widths[0], rtol=1e-9, atol=0.0):
            body = f"uniform({float(edges[0])!r}, {float(edges[-1])!r}, n={self.n_bins}"
        else:
            body = f"edges({list(self.bin_edges)!r}"
        extra = f", outside={self.outside!r}" if self.outside != "raise" else ""
        return f"Binning.{body}{extra})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, for provenance."""
        return {"bin_edges": list(self.bin_edges), "outside": self.outside}
