"""A judge that tests each of the paper's claims (:mod:`probe.studies.claims`) against our data.

Jacobs et al. (sections 4.1-4.6, 4.9 and the figure captions) state, per experiment and network,
numbers and directions: a score level at a stated value ("~75% at jitter 0.5"), the sign of a
change or slope ("a slight decrease for A"), where a curve crosses 0.5, where a drop is largest.
:data:`probe.studies.claims.CLAIMS` holds each as a :class:`~probe.studies.claims.Claim` (the
quoted sentence, its section, the quantity, the value(s) it is read at and the **tolerance** the
paper's wording allows, with the reason).

:func:`judge` measures the claim's quantity on a :class:`probe.Result` with a 95% interval and
compares the interval with the tolerance:

* **agree**: the whole interval lies inside the tolerance;
* **disagree**: the interval lies wholly outside it (excludes every value the paper allows);
* **inconclusive**: the interval straddles an edge of the tolerance (our data cannot decide);
* **not testable**: the measurement cannot be made with this set (the tested range does not
  reach the stated value, too few images, the group or network is absent), with the reason.

The "paper's" score is the mean correct-class score <s> (the paper's plots; section 4.3 writes
the gradient as d<s_k>/dR_E and calls it "mean accuracy"), except where a claim says otherwise
(``metric="accuracy"``: the fraction with s > 0.5, "the majority classified as non lenses").
The tolerance rule for the paper's wording: a number given with "~" or read off a figure
allows +/- 0.05 in score (its two-digit precision); "more than x" allows [x, 1]; a direction
allows the open half-line; "no sensitivity" allows +/- 0.05 (the verdict rule's
``insensitive_swing``; the paper gives no number). Adding an experiment means adding entries to
:data:`CLAIMS`; experiments without entries get a "no quantitative statement" row.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.errors import ProbeError
from probe.statistics import bootstrap_means
from probe.studies.claims import CLAIMS, INF, MIN_IMAGES, Claim

if TYPE_CHECKING:
    from probe.sweeps.result import Result


__all__ = ["Judgement", "judge", "judge_all", "judge_interval"]

# Spawn-key stream of the judge's bootstraps (below the result's root seed; probe.rng uses 0-3).
_JUDGE_STREAM = 9


@dataclass(frozen=True)
class Judgement:
    """The judge's answer for one claim: state, our measurement with interval, reason."""

    state: str
    value: float
    low: float
    high: float
    n: int
    measured: str
    reason: str

    def ours(self, digits: int = 3) -> str:
        """Our number with its interval, e.g. "0.741 [0.702, 0.779]"; "-" when not measured."""
        if not math.isfinite(self.value) and not (
            math.isfinite(self.low) or math.isfinite(self.high)
        ):
            return "-"

        def f(v: float) -> str:
            if not math.isfinite(v):
                return "-inf" if v < 0 else "inf"
            return f"{v:.{digits}f}" if abs(v) < 100 else f"{v:.4g}"

        val = f(self.value) if math.isfinite(self.value) else "none"
        return f"{val} [{f(self.low)}, {f(self.high)}]"


class _Untestable(ProbeError):
    """The claim's quantity cannot be measured on this set (message: why)."""


# -- measurement ---------------------------------------------------------------------------------


def judge_interval(low: float, high: float, tol_low: float, tol_high: float) -> str:
    """agree (interval inside the tolerance), disagree (disjoint) or inconclusive (straddles)."""
    if math.isnan(low) or math.isnan(high):
        return "not testable"
    if tol_low <= low and high <= tol_high:
        return "agree"
    if high < tol_low or low > tol_high:
        return "disagree"
    return "inconclusive"


def _x(result: Result, sel: pd.DataFrame) -> np.ndarray:
    col = "parameter" if result.kind == "by_parameter" and "parameter" in sel else "value"
    return sel[col].to_numpy(dtype=np.float64)


def _group(result: Result, group: str) -> pd.DataFrame:
    if group not in result.groups:
        raise _Untestable(f"group {group!r} is not in this result")
    s = result.scores
    if group == "all":
        return s
    return s[s["label"] == (1 if group == "lens" else 0)]


def _span(result: Result, group: str) -> tuple[float, float]:
    x = _x(result, _group(result, group))
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if x.size else (math.nan, math.nan)


def _where(at: tuple[float, float], unit: str) -> str:
    lo, hi = at
    u = f" {unit}" if unit else ""
    if lo == hi:
        return f"{lo:g}{u}"
    if lo == -INF:
        return f"< {hi:g}{u}"
    if hi == INF:
        return f">= {lo:g}{u}"
    return f"{lo:g}-{hi:g}{u}"


def _per_image(result: Result, group: str, at: tuple[float, float]) -> pd.Series:
    """Scores per image at a value (interpolated per image between tested values) or range."""
    sel = _group(result, group)
    x = _x(result, sel)
    first, last = _span(result, group)
    lo, hi = at
    if lo != hi:
        vals = sel["score"].to_numpy(dtype=np.float64)[(x >= lo) & (x < hi)]
        if vals.size == 0:
            raise _Untestable(
                f"the tested {first:.4g}-{last:.4g} {result.unit} has no images at "
                f"{_where(at, result.unit)}"
            )
        return pd.Series(vals)
    if not (first - 1e-9 <= lo <= last + 1e-9):
        raise _Untestable(
            f"the tested {first:g}-{last:g} {result.unit} does not reach {lo:g} {result.unit}"
        )
    values = np.unique(x)
    exact = values[np.isclose(values, lo, rtol=0, atol=1e-9)]
    if exact.size:
        rows = sel[np.isclose(x, exact[0], rtol=0, atol=1e-9)]
        return pd.Series(rows["score"].to_numpy(dtype=np.float64), index=rows["sample"].to_numpy())
    if not result.paired:
        raise _Untestable(f"{lo:g} {result.unit} is not a tested value of this unpaired result")
    j = int(np.searchsorted(values, lo))
    x0, x1 = values[j - 1], values[j]
    w = (lo - x0) / (x1 - x0)
    m = _pivot(sel)
    # linear interpolation of each image's score between the two tested values around lo
    return (1 - w) * m[x0] + w * m[x1]


def _pivot(sel: pd.DataFrame) -> pd.DataFrame:
    """Images x values matrix of a paired result's scores."""
    if sel.duplicated(["sample", "value"]).any():
        raise _Untestable("sample ids repeat within a value: not a paired design")
    return sel.pivot(index="sample", columns="value", values="score")


def _boot(vec: np.ndarray, result: Result, claim: Claim, tag: int) -> np.ndarray:
    seed = zlib.crc32(claim.key.encode())
    entropy = int(result.provenance["seeds"]["entropy"])
    gen = _rng.child(entropy, _JUDGE_STREAM, seed, tag)
    return bootstrap_means(np.asarray(vec, dtype=np.float64), result.stats.n_boot, gen)


def _ci(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    a = 1.0 - confidence
    lo, hi = np.quantile(boot, [a / 2, 1 - a / 2])
    return float(lo), float(hi)


def _enough(vec: pd.Series, where: str, min_images: int) -> None:
    n = int(np.isfinite(vec.to_numpy(dtype=np.float64)).sum())
    if n < min_images:
        raise _Untestable(f"only {n} images at {where} (need {min_images})")


def _change(
    result: Result, claim: Claim, min_images: int, tag: int = 0
) -> tuple[float, np.ndarray, int, str]:
    """Change of the mean from ``at`` to ``to``: value, bootstrap sample, n, words."""
    a = _per_image(result, claim.group, claim.at).dropna()
    b = _per_image(result, claim.group, claim.to).dropna()
    wa, wb = _where(claim.at, result.unit), _where(claim.to, result.unit)
    _enough(a, wa, min_images)
    _enough(b, wb, min_images)
    paired = claim.at[0] == claim.at[1] and claim.to[0] == claim.to[1] and result.paired
    if paired:
        common = a.index.intersection(b.index)
        d = (b[common] - a[common]).to_numpy(dtype=np.float64)
        boot = _boot(np.sort(d), result, claim, tag)
        return float(d.mean()), boot, int(d.size), f"paired change {wa} -> {wb}"
    ba = _boot(np.sort(a.to_numpy()), result, claim, tag + 1)
    bb = _boot(np.sort(b.to_numpy()), result, claim, tag + 2)
    value = float(b.mean() - a.mean())
    return value, bb - ba, int(min(a.size, b.size)), f"change {wa} -> {wb}"


def _curve(result: Result, claim: Claim) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values, metric, lower and upper bound of the group's curve (table rows)."""
    t = result.table[result.table["group"] == claim.group].sort_values("value")
    x = t["value"].to_numpy(dtype=np.float64)
    if claim.metric == "mean":
        return (
            x,
            t["mean"].to_numpy(dtype=np.float64),
            t["ci_low"].to_numpy(dtype=np.float64),
            t["ci_high"].to_numpy(dtype=np.float64),
        )
    from scipy.stats import binomtest

    acc = t["accuracy"].to_numpy(dtype=np.float64)
    n = t["n"].to_numpy()
    lo, hi = np.empty_like(acc), np.empty_like(acc)
    for i, (p, k) in enumerate(zip(acc, n)):
        ci = binomtest(round(p * k), int(k)).proportion_ci(result.stats.confidence, "wilson")
        lo[i], hi[i] = ci.low, ci.high
    return x, acc, lo, hi


def _first_below(x: np.ndarray, y: np.ndarray, level: float) -> float:
    """First x where y falls below level (linear interpolation); inf if it never does."""
    below = np.flatnonzero(y < level)
    if below.size == 0:
        return INF
    j = int(below[0])
    if j == 0:
        return float(x[0])
    # y[j-1] >= level > y[j]
    return float(x[j - 1] + (y[j - 1] - level) / (y[j - 1] - y[j]) * (x[j] - x[j - 1]))


def _matrix(result: Result, claim: Claim) -> tuple[np.ndarray, np.ndarray]:
    if not result.paired:
        raise _Untestable("needs a paired sweep (the same images at every value)")
    m = _pivot(_group(result, claim.group))
    cols = m.columns.to_numpy(dtype=np.float64)
    m = m.loc[:, (cols >= claim.at[0]) & (cols <= claim.at[1])].dropna()
    return m.columns.to_numpy(dtype=np.float64), m.to_numpy(dtype=np.float64)


def _boot_rows(
    matrix: np.ndarray, result: Result, claim: Claim, stat: Any
) -> tuple[float, np.ndarray]:
    """A statistic of the column means and its bootstrap over images (rows)."""
    entropy = int(result.provenance["seeds"]["entropy"])
    gen = _rng.child(entropy, _JUDGE_STREAM, zlib.crc32(claim.key.encode()), 7)
    n = matrix.shape[0]
    out = np.empty(result.stats.n_boot)
    for b in range(out.size):
        out[b] = stat(matrix[gen.integers(0, n, n)].mean(axis=0))
    return float(stat(matrix.mean(axis=0))), out


def _measure(
    claim: Claim, results: Mapping[str, Result], min_images: int
) -> tuple[float, float, float, int, str]:
    r = results.get(claim.network)
    if r is None:
        raise _Untestable(f"network {claim.network} was not run in {claim.experiment}")
    conf = r.stats.confidence
    if claim.kind == "level":
        v = _per_image(r, claim.group, claim.at).dropna()
        where = _where(claim.at, r.unit)
        _enough(v, where, min_images)
        lo, hi = _ci(_boot(np.sort(v.to_numpy()), r, claim, 0), conf)
        return float(v.mean()), lo, hi, int(v.size), f"mean score at {where}"
    if claim.kind == "change":
        value, boot, n, words = _change(r, claim, min_images)
        return (value, *_ci(boot, conf), n, words)
    if claim.kind == "compare":
        other = results.get(claim.versus)
        if other is None:
            raise _Untestable(f"network {claim.versus} was not run in {claim.experiment}")
        v1, b1, n1, words = _change(r, claim, min_images, 0)
        v2, b2, n2, _ = _change(other, claim, min_images, 10)
        return (v1 - v2, *_ci(b1 - b2, conf), min(n1, n2), f"{words}, minus {claim.versus}'s")
    if claim.kind == "slope":
        t = r.trend(claim.group)
        if not (math.isfinite(t.slope_low) and math.isfinite(t.slope_high)):
            raise _Untestable("the slope has no interval (too few values or images)")
        first, last = _span(r, claim.group)
        return (
            t.slope, t.slope_low, t.slope_high, int(t.n),
            f"slope per {r.unit} over {first:.3g}-{last:.3g}",
        )  # fmt: skip
    if claim.kind == "crossing":
        x, y, ylo, yhi = _curve(r, claim)
        if x.size < 2:
            raise _Untestable("fewer than 2 tested values")
        n_min = int(r.table[r.table["group"] == claim.group]["n"].min())
        if n_min < min_images:
            raise _Untestable(f"only {n_min} images per value (need {min_images})")
        point = _first_below(x, y, claim.level)
        # the band of the curve crosses the level between these two values
        lo, hi = _first_below(x, ylo, claim.level), _first_below(x, yhi, claim.level)
        what = f"first {claim.metric} < {claim.level:g} (tested {x[0]:g}-{x[-1]:g} {r.unit})"
        return (point if math.isfinite(point) else math.nan), lo, hi, n_min, what
    if claim.kind in ("argmin", "max_drop"):
        x, m = _matrix(r, claim)
        if m.shape[0] < min_images or x.size < 3:
            raise _Untestable(
                f"{m.shape[0]} images at {x.size} values (need {min_images} and 3 values)"
            )
        if claim.kind == "argmin":
            value, boot = _boot_rows(m, r, claim, lambda c: x[int(np.argmin(c))])
            what = f"{r.unit} of the lowest mean (tested {x[0]:g}-{x[-1]:g})"
        else:
            value, boot = _boot_rows(m, r, claim, lambda c: c[0] - c.min())
            what = f"largest drop below the value at {x[0]:g} (tested {x[0]:g}-{x[-1]:g})"
        return (value, *_ci(boot, conf), m.shape[0], what)
    raise ValueError(f"unknown claim kind {claim.kind!r}")  # pragma: no cover (post_init)


def judge(
    claim: Claim, results: Mapping[str, Result], *, min_images: int = MIN_IMAGES
) -> Judgement:
    """Measure ``claim`` on ``results`` (network name -> Result of its experiment) and judge it.

    Returns a :class:`Judgement`: its state is one of :data:`STATES` (rule in the module
    docstring); the interval is the result's confidence level (95% by default).
    """
    try:
        value, low, high, n, what = _measure(claim, results, min_images)
    except _Untestable as e:
        return Judgement("not testable", math.nan, math.nan, math.nan, 0, "", str(e))
    except ProbeError as e:  # e.g. a trend that cannot be fitted
        return Judgement("not testable", math.nan, math.nan, math.nan, 0, "", str(e))
    tol = claim.tolerance()
    if claim.kind == "crossing" and high == INF:
        # the upper band never falls below the level: the crossing lies beyond `earliest`
        r = results[claim.network]
        last = float(r.table["value"].max())
        earliest = low if math.isfinite(low) else last
        low = earliest
        shown = Judgement("", value, low, high, n, what, "").ours()
        if earliest >= claim.high:
            state = "disagree"
            reason = f"crossing at or beyond {earliest:g} {r.unit} ({shown}); the paper's {tol}"
        elif claim.low > last:
            state = "not testable"
            reason = f"the tested range ends at {last:g} {r.unit}, before the paper's {tol}"
        else:
            state = "inconclusive"
            reason = f"crossing not certain up to {last:g} {r.unit} ({shown}); the paper's {tol}"
        return Judgement(state, value, low, high, n, what, reason)
    state = judge_interval(low, high, claim.low, claim.high)
    reason = {
        "agree": f"our interval lies within the paper's {tol}",
        "disagree": f"our interval lies outside the paper's {tol}",
        "inconclusive": f"our interval straddles an edge of the paper's {tol}",
        "not testable": "no interval",
    }[state]
    return Judgement(state, value, low, high, n, what, reason)


def judge_all(
    results: Mapping[str, Result], experiment: str, claims: Sequence[Claim] | None = None
) -> list[tuple[Claim, Judgement]]:
    """Every claim of ``experiment`` about a network present in ``results``, judged."""
    pool = CLAIMS if claims is None else claims
    return [
        (c, judge(c, results)) for c in pool if c.experiment == experiment and c.network in results
    ]
