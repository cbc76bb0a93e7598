"""The study's summary: a verdict per experiment, model and group, next to the paper's.

:func:`verdict` classifies a curve of mean correct-class scores (insensitive, smooth, sensitive,
non-monotonic) by the thresholds of a :class:`VerdictRule`; :func:`summarise` applies it to every
experiment, model and group of a study, with the paper's verdict (:data:`PAPER`) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe.errors import ProbeValueError
from probe.studies.claims import PRIMARY_GROUP

if TYPE_CHECKING:
    from probe.studies.experiments import StudyResult

__all__ = ["PAPER", "VerdictRule", "summarise", "verdict"]


@dataclass(frozen=True)
class VerdictRule:
    """Thresholds of :func:`verdict` (score units: the correct-class score, 0-1).

    Attributes
    ----------
    insensitive_swing : float
        A curve whose means span less than this is "insensitive".
    weak_swing : float
        Below this span, a curve whose slope interval contains 0 is also "insensitive".
    margin : float
        Minimum depth of an interior peak or dip (both ends) for "non-monotonic"; also at
        least twice the standard error of the difference.
    window : float
        Width of the "abrupt" window, as a fraction of the tested range.
    share : float
        An "abrupt" curve changes by at least this fraction of its span within one window.
    """

    insensitive_swing: float = 0.05
    weak_swing: float = 0.10
    margin: float = 0.05
    window: float = 0.2
    share: float = 0.5

    def describe(self) -> str:
        """The rule in words (written into the report)."""
        i, w, mg = self.insensitive_swing, self.weak_swing, self.margin
        return (
            "From the curve of mean correct-class score m(x) over the tested values: span "
            "S = max m - min m; the trend is the fitted slope times the tested range, with its "
            f"95% interval. <b>insensitive</b>: S < {i} or (S < {w} and the slope interval "
            "contains 0). Otherwise <b>sensitive (non-monotonic)</b>: an interior maximum or "
            f"minimum lies at least max({mg}, 2 standard errors) beyond both ends (a peak at "
            "the training value, or a dip at one radius). Otherwise <b>sensitive (abrupt)</b>: "
            f"at least {self.share:.0%} of S happens within {self.window:.0%} of the tested "
            "range. Otherwise <b>smooth degradation</b> (slope < 0) or <b>smooth "
            "improvement</b> (slope > 0). Families for the comparison with the paper: "
            "insensitive / smooth / sensitive; 'family agree' means the same family (the paper's "
            "numbers are judged separately, in the judgement column)."
        )


#: The paper's findings (family, words) per (experiment, group); sections 4.1-4.6 and 4.9.
PAPER: dict[tuple[str, str], tuple[str, str]] = {
    ("color", "lens"): ("sensitive", "highly sensitive: >0.9 until jitter ~0.2, then falls fast"),
    ("color", "nonlens"): ("sensitive", "highly sensitive, degrades like the lenses"),
    ("color", "all"): ("sensitive", "highly sensitive: accuracy ~100% to ~75% at jitter 0.5"),
    ("blur", "lens"): ("smooth", "smooth decrease of lens certainty, to below 0.5"),
    ("blur", "nonlens"): ("smooth", "smooth decrease: A below 0.5, B to ~0.5"),
    ("blur", "all"): ("smooth", "smooth decrease to ~0.5"),
    ("psf", "lens"): (
        "sensitive",
        "highly sensitive: falls for wider PSFs (more for B) and for PSFs sharper than training",
    ),
    ("psf", "all"): ("sensitive", "highly sensitive (the paper tested lenses only)"),
    ("theta_E", "lens"): ("insensitive", "insensitive: slope ~0 (B), a slight decrease (A)"),
    ("mag_lens_r", "lens"): (
        "smooth",
        "some sensitivity, smooth: A degrades for bright lenses (r < 19), B past r ~ 21",
    ),
    ("mag_source_g", "lens"): (
        "smooth",
        "smooth degradation with fainter sources, significant beyond g ~ 21.5",
    ),
    ("annulus", "lens"): (
        "sensitive",
        'sensitive: largest drop (to ~0.75) at radius ~5 px (1.3"), >10% over 0.5-1.7"',
    ),
    ("annulus", "nonlens"): ("insensitive", "insensitive at any radius"),
    ("disk", "lens"): ("sensitive", 'sensitive: A 0.85 by 0.9" (3.4 px), 0.12 by 2"; B faster'),
    ("disk", "nonlens"): ("insensitive", "insensitive: removing central flux never hurts"),
    ("noise", "lens"): ("smooth", "smooth decrease: A towards 0.5, B towards 'non-lens'"),
    ("noise", "nonlens"): ("smooth", "smooth: A towards 0.5, B more certain (score rises)"),
    ("noise", "all"): ("smooth", "smooth decrease"),
}

FAMILY = {
    "insensitive": "insensitive",
    "smooth degradation": "smooth",
    "smooth improvement": "smooth",
    "sensitive (non-monotonic)": "sensitive",
    "sensitive (abrupt)": "sensitive",
    "undetermined": "undetermined",
}


def verdict(
    x: Any,
    mean: Any,
    sem: Any,
    slope_low: float,
    slope_high: float,
    slope: float,
    rule: VerdictRule | None = None,
) -> str:
    """Classify a sensitivity curve (see :class:`VerdictRule` for the rule and thresholds).

    Parameters
    ----------
    x, mean, sem : array_like
        Values (increasing), mean correct-class score and its standard error per value.
    slope_low, slope_high, slope : float
        Trend slope and its interval (score per unit of x).
    rule : VerdictRule, optional
        Thresholds (default :class:`VerdictRule`).

    Returns
    -------
    str
        "insensitive", "sensitive (non-monotonic)", "sensitive (abrupt)",
        "smooth degradation", "smooth improvement", or "undetermined" (fewer than 2 points).
    """
    rule = rule or VerdictRule()
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean, dtype=float)
    se = np.nan_to_num(np.asarray(sem, dtype=float), nan=0.0)
    ok = np.isfinite(m) & np.isfinite(x)
    x, m, se = x[ok], m[ok], se[ok]
    if m.size < 2:
        return "undetermined"
    order = np.argsort(x)
    x, m, se = x[order], m[order], se[order]
    span = float(m.max() - m.min())
    zero_in = not (slope_low > 0 or slope_high < 0) or not np.isfinite(slope_low)
    if span < rule.insensitive_swing or (span < rule.weak_swing and zero_in):
        return "insensitive"
    if m.size >= 3:
        for k, sign in ((int(np.argmax(m)), 1.0), (int(np.argmin(m)), -1.0)):
            if 0 < k < m.size - 1:
                depth = [sign * (m[k] - m[e]) for e in (0, -1)]
                need = [max(rule.margin, 2 * np.hypot(se[k], se[e])) for e in (0, -1)]
                if all(d >= n for d, n in zip(depth, need)):
                    return "sensitive (non-monotonic)"
    width = rule.window * float(x[-1] - x[0])
    for i in range(m.size):
        j = np.flatnonzero((x > x[i]) & (x <= x[i] + width + 1e-12))
        # a jump counts only if it is also beyond twice its standard error (bin scatter)
        if j.size and np.any(
            np.abs(m[j] - m[i]) >= np.maximum(rule.share * span, 2 * np.hypot(se[j], se[i]))
        ):
            return "sensitive (abrupt)"
    return "smooth degradation" if slope < 0 else "smooth improvement"


def summarise(study: StudyResult, rule: VerdictRule | None = None) -> pd.DataFrame:
    """The long summary: one row per experiment, model and group (see the module docstring)."""
    from probe.studies.experiments import EXPERIMENTS

    titles = {e.name: (e.title, e.section, e.unit) for e in EXPERIMENTS}
    rows = []
    for e in study.experiments():
        for model in study.models:
            r = study.results.get((model, e.name))
            if r is None:
                continue
            groups = r.groups if "nonlens" in r.groups else ("lens",)  # "all" = lenses
            for group in groups:
                t = r.table[r.table["group"] == group].sort_values("value")
                x = t["value"].to_numpy(float)
                m = t["mean"].to_numpy(float)
                try:
                    tr = r.trend(group)
                    slope, lo, hi, p = tr.slope, tr.slope_low, tr.slope_high, tr.p_value
                except ProbeValueError:
                    slope = lo = hi = p = float("nan")
                span_x = float(x[-1] - x[0]) if x.size else float("nan")
                v = verdict(x, m, t["sem"].to_numpy(float), lo, hi, slope, rule)
                fam, words = PAPER.get((e.name, group), ("", ""))
                ours = FAMILY[v]
                rows.append(
                    {
                        "experiment": e.name,
                        "title": titles[e.name][0],
                        "section": titles[e.name][1],
                        "model": model,
                        "group": group,
                        "primary": PRIMARY_GROUP.get(e.name) == group,
                        "x_first": float(x[0]) if x.size else float("nan"),
                        "x_last": float(x[-1]) if x.size else float("nan"),
                        "unit": titles[e.name][2],
                        "n_values": int(x.size),
                        "n_images": int(t["n"].max()) if len(t) else 0,
                        "mean_first": float(m[0]) if m.size else float("nan"),
                        "mean_last": float(m[-1]) if m.size else float("nan"),
                        "delta": float(m[-1] - m[0]) if m.size else float("nan"),
                        "span": float(np.nanmax(m) - np.nanmin(m)) if m.size else float("nan"),
                        "x_at_min": float(x[int(np.nanargmin(m))]) if m.size else float("nan"),
                        "min_mean": float(np.nanmin(m)) if m.size else float("nan"),
                        "slope": slope,
                        "trend": slope * span_x,
                        "trend_low": lo * span_x,
                        "trend_high": hi * span_x,
                        "p_value": p,
                        "verdict": v,
                        "family": ours,
                        "paper_family": fam,
                        "paper_finding": words,
                        "family_agree": ("yes" if fam == ours else "no") if fam else "n/a",
                    }
                )
    return pd.DataFrame(rows)
