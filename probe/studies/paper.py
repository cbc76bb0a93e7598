"""The paper's quantitative claims as data, and a judge that tests each against our measurement.

Jacobs et al. (sections 4.1-4.6, 4.9 and the figure captions) state, per experiment and network,
numbers and directions: a score level at a stated value ("~75% at jitter 0.5"), the sign of a
change or slope ("a slight decrease for A"), where a curve crosses 0.5, where a drop is largest.
:data:`CLAIMS` holds each as a :class:`Claim` (the quoted sentence, its section, the quantity,
the value(s) it is read at and the **tolerance** the paper's wording allows, with the reason).

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

if TYPE_CHECKING:
    from probe.sweeps.result import Result

__all__ = [
    "CLAIMS",
    "DOCS_END",
    "DOCS_START",
    "JUDGE_RULE",
    "KINDS",
    "MIN_IMAGES",
    "PRIMARY_GROUP",
    "STATES",
    "TABLE2_COLUMNS",
    "Claim",
    "Judgement",
    "claims_for",
    "docs_block",
    "judge",
    "judge_all",
    "judge_interval",
    "markdown_table",
    "pretty_table2",
    "replace_docs_block",
    "run_line",
    "study_statements",
    "table2",
]

#: The group the paper's summary (its Table 2) is about, per experiment.
PRIMARY_GROUP: dict[str, str] = {
    "color": "all",
    "blur": "all",
    "psf": "lens",
    "theta_E": "lens",
    "mag_lens_r": "lens",
    "mag_source_g": "lens",
    "annulus": "lens",
    "disk": "lens",
    "noise": "all",
}

INF = math.inf
PX = 0.263  # arcsec per DES pixel (the paper's occlusion radii are in arcsec, ours in px)

#: Claim kinds: what quantity is measured.
KINDS: dict[str, str] = {
    "level": "mean score at a value (or pooled over a value range)",
    "change": "mean score at `to` minus mean score at `at` (paired per image when possible)",
    "slope": "fitted slope of the mean score per unit of the value (probe's trend)",
    "crossing": "first value where the curve falls below `level` (0.5)",
    "argmin": "value where the mean curve is lowest",
    "max_drop": "largest fall of the mean curve below its first (unperturbed) value",
    "compare": "this network's change minus the change of network `versus`",
}

#: Judgements, in the order the report lists them.
STATES: tuple[str, ...] = ("agree", "disagree", "inconclusive", "not testable")

#: The judge's rule in words (written into the report and docs/study.md).
JUDGE_RULE = (
    "Each row is one quantitative statement of the paper (probe.studies.paper.CLAIMS: the quoted "
    "sentence, the quantity, the value it is read at, and the tolerance its wording allows: "
    "'~x' or a figure reading +/- 0.05, a direction the half-line, 'no sensitivity' +/- 0.05). "
    "Our measurement of that quantity comes with its 95% bootstrap interval over images (paired "
    "per image for changes within a sweep). agree: the interval lies inside the tolerance; "
    "disagree: it lies wholly outside; inconclusive: it straddles an edge; not testable: the "
    "tested range does not reach the stated value, or fewer than 30 images support it."
)

#: Fewest images a level may rest on (probe's low-count flag, StatsParams.min_count).
MIN_IMAGES = 30

# Spawn-key stream of the judge's bootstraps (below the result's root seed; probe.rng uses 0-3).
_JUDGE_STREAM = 9


@dataclass(frozen=True)
class Claim:
    """One quantitative statement of the paper about one network, experiment and group.

    Attributes
    ----------
    experiment : str
        :data:`probe.study.EXPERIMENTS` name.
    network : str
        "A" or "B" (the study's model names of the paper's networks).
    group : str
        "lens", "nonlens" or "all" (the 50/50 test set).
    kind : str
        One of :data:`KINDS`.
    section : str
        Where the paper says it ("4.1", "Fig. 11").
    statement : str
        Short form for tables.
    quote : str
        The paper's sentence.
    low, high : float
        Tolerance: the values of the quantity the paper's wording allows (may be infinite).
    why : str
        Why this tolerance.
    paper_value : str
        The paper's number (or direction) in words.
    at : tuple of float
        Where the quantity is read, in the experiment's unit: ``(x, x)`` a value (sweeps,
        interpolated between tested values), ``(lo, hi)`` a range (images with lo <= x < hi,
        binned experiments); for "change"/"compare" the reference; for "argmin"/"max_drop" the
        values considered (default all).
    to : tuple of float
        "change"/"compare": where the changed level is read.
    metric : str
        "mean" (mean correct-class score) or "accuracy" (fraction with s > 0.5; crossing only).
    level : float
        "crossing": the level crossed.
    versus : str
        "compare": the other network.
    """

    experiment: str
    network: str
    group: str
    kind: str
    section: str
    statement: str
    quote: str
    low: float
    high: float
    why: str
    paper_value: str
    at: tuple[float, float] = (-INF, INF)
    to: tuple[float, float] = (-INF, INF)
    metric: str = "mean"
    level: float = 0.5
    versus: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.group not in ("lens", "nonlens", "all"):
            raise ValueError(f"group must be lens, nonlens or all; got {self.group!r}")
        if not self.low <= self.high:
            raise ValueError(f"tolerance low must be <= high; got [{self.low}, {self.high}]")
        if self.metric not in ("mean", "accuracy"):
            raise ValueError(f"metric must be 'mean' or 'accuracy'; got {self.metric!r}")

    @property
    def key(self) -> str:
        """A stable identifier (seeds the judge's bootstrap)."""
        return (
            f"{self.experiment}|{self.network}|{self.group}|{self.kind}|{self.at}|{self.to}|"
            f"{self.low}|{self.high}|{self.versus}"
        )

    def tolerance(self) -> str:
        """The tolerance in words, e.g. "[0.70, 0.80]" or "< 0"."""
        if self.low == -INF and self.high == INF:
            return "any"
        if self.low == -INF:
            return f"<= {self.high:g}"
        if self.high == INF:
            return f">= {self.low:g}"
        return f"[{self.low:g}, {self.high:g}]"


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


def _pt(x: float) -> tuple[float, float]:
    return (x, x)


_TILDE = "'~' or a figure reading: +/- 0.05 in score (two-digit precision)"
_DIRECTION = "a direction only: the open half-line"
_FLAT = "'no sensitivity': +/- 0.05 (probe's insensitive swing; the paper gives no number)"


def _both(**kw: Any) -> list[Claim]:
    return [Claim(network=n, **kw) for n in ("A", "B")]


def _psf(experiment: str) -> list[Claim]:
    """Section 4.2's PSF statements (Fig. 6): they hold for both of the paper's test sets."""
    return [
        *_both(
            experiment=experiment, group="lens", kind="change", section="4.2",
            statement="lens score falls for wider PSFs (ratio 1 -> 3)",
            quote="As the PSF gets wider, so the performance of the network degrades for both "
            "test sets",
            low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease",
            at=_pt(1.0), to=_pt(3.0),
        ),
        *_both(
            experiment=experiment, group="lens", kind="change", section="4.2, Fig. 6",
            statement="lens score falls for a sharper PSF (ratio 1 -> 0.6)",
            quote="in the cases of both networks, a PSF better than the training set value also "
            "leads to decreased performance",
            low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease",
            at=_pt(1.0), to=_pt(0.6),
        ),
        Claim(
            experiment=experiment, network="B", group="lens", kind="compare", section="4.2",
            statement="B loses more than A for wider PSFs (ratio 1 -> 3)",
            quote="although the effect is much larger for Network B",
            low=-INF, high=0.0, why=_DIRECTION + " (B's change minus A's)",
            paper_value="B's drop larger", at=_pt(1.0), to=_pt(3.0), versus="A",
        ),
    ]  # fmt: skip


#: Every claim, in the paper's order (sections 4.1-4.6, 4.9, figure captions).
CLAIMS: tuple[Claim, ...] = (
    # 4.1 colour jitter (sigma 0-1)
    *_both(
        experiment="color", group="lens", kind="level", section="4.1",
        statement="lens score > 0.9 up to jitter 0.2",
        quote="the networks remain more than 90% confident in the lens images until the jitter "
        "factor exceeds 20%",
        low=0.9, high=1.0, why="'more than 90%': [0.90, 1]", paper_value="> 0.90 at 0.2",
        at=_pt(0.2),
    ),
    *_both(
        experiment="color", group="nonlens", kind="change", section="4.1",
        statement="non-lens score falls with jitter (0 -> 1)",
        quote="On non-lensing galaxies, the performance degrades similarly.",
        low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease", at=_pt(0.0), to=_pt(1.0),
    ),
    *_both(
        experiment="color", group="all", kind="level", section="4.1",
        statement="50/50 accuracy ~100% without jitter",
        quote="the accuracy of the network has decreased from ~100% to ~75%",
        low=0.95, high=1.0, why=_TILDE, paper_value="~1.00 at 0", at=_pt(0.0),
    ),
    *_both(
        experiment="color", group="all", kind="level", section="4.1",
        statement="50/50 accuracy ~75% at jitter 0.5",
        quote="The performance degrades linearly until the jitter reaches a factor of "
        "approximately 0.5, at which point the accuracy of the network has decreased from ~100% "
        "to ~75%.",
        low=0.70, high=0.80, why=_TILDE, paper_value="~0.75 at 0.5", at=_pt(0.5),
    ),
    # 4.2 blur (sigma 0-3 px, the range stated in 4.2.1 and Fig. 12; the results' "~5 px" and
    # Fig. 5's marker at the mean PSF, 3.8 px, suggest the plotted range went further)
    *_both(
        experiment="blur", group="lens", kind="crossing", section="4.2",
        statement="lens score robust until blur ~5 px, then below 0.5",
        quote="both networks show robust performance until the width of the kernel reaches ~5 "
        "pixels ... this effect continues beyond the 50% threshold",
        low=4.0, high=INF,
        why="'~5 px' (+/- 20%, one grid step of the paper's figure): the lens score does not "
        "cross 0.5 before 4 px",
        paper_value="crosses 0.5 beyond ~5 px",
    ),
    Claim(
        experiment="blur", network="A", group="nonlens", kind="level", section="4.2",
        statement="A's non-lens score below 0.5 at 3 px",
        quote="network A declines below the 50% threshold",
        low=0.0, high=0.5,
        why="'below the 50% threshold' at the end of the range stated in 4.2.1 (3 px); if the "
        "paper's plot went further, this reading is early",
        paper_value="< 0.5 at 3 px", at=_pt(3.0),
    ),
    Claim(
        experiment="blur", network="B", group="nonlens", kind="level", section="4.2",
        statement="B's non-lens score ~0.5 at 3 px, slightly below",
        quote="network B degrades to approximately 50% and remains there ... for non lenses it "
        "dips only slightly below the 0.5 'random guess' threshold",
        low=0.40, high=0.55, why="'approximately 50%' (+0.05) and 'dips slightly below' (-0.10)",
        paper_value="~0.5 at 3 px", at=_pt(3.0),
    ),
    *_both(
        experiment="blur", group="all", kind="level", section="4.2",
        statement="50/50 accuracy ~0.5 at 3 px",
        quote="the performance on a balanced test set ... degrades smoothly to the expected 50% "
        "threshold",
        low=0.45, high=0.55, why=_TILDE + "; at the end of the range stated in 4.2.1 (3 px)",
        paper_value="~0.5 at 3 px", at=_pt(3.0),
    ),
    # 4.2 PSF (re-simulated; the paper tested lenses only); also the source-only experiment
    *_psf("psf"),
    *_psf("psf_source"),
    # 4.3 Einstein radius (1.0-2.7")
    Claim(
        experiment="theta_E", network="A", group="lens", kind="slope", section="4.3",
        statement="slight decrease of A's lens score with theta_E",
        quote="In the first case [network A], there appears to be a slight decrease in lens "
        "certainty as R_E increases",
        low=-INF, high=0.0,
        why=_DIRECTION + " (the text's later '+1.2% per arcsecond' for 'network S' contradicts "
        "the sign and is not used)",
        paper_value="slope < 0",
    ),
    *_both(
        experiment="theta_E", group="lens", kind="slope", section="4.3, 4.9",
        statement="insensitive to theta_E: |slope| <= 0.03 per arcsec",
        quote="The magnitude of the effect is low ... [the networks] were insensitive to the "
        "simulated Einstein radius",
        low=-0.03, high=0.03,
        why="'insensitive': at most 0.05 over 1.0-2.7\" (probe's insensitive swing; the "
        "paper's gradient, 1.2% per arcsec, lies inside)",
        paper_value="|slope| small (1.2%/arcsec)",
    ),
    # 4.4 magnitudes
    *_both(
        experiment="mag_source_g", group="lens", kind="change", section="4.4, 4.9",
        statement="lens score lower for g > 21.5 than for g 20-21.5",
        quote="Network A degrades in performance as the source gets fainter, with significant "
        "effects from a g-band magnitude of 21.5. Network B becomes less accurate at a similar "
        "range",
        low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease beyond g 21.5",
        at=(20.0, 21.5), to=(21.5, INF),
    ),
    Claim(
        experiment="mag_lens_r", network="A", group="lens", kind="change", section="4.4, 4.9",
        statement="A's lens score lower for bright lenses (r < 19) than for r 19-21",
        quote="Network A shows a significant degradation in performance where the lens is very "
        "bright, r < 19",
        low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease for r < 19",
        at=(19.0, 21.0), to=(-INF, 19.0),
    ),
    Claim(
        experiment="mag_lens_r", network="A", group="lens", kind="change", section="4.4",
        statement="A's lens score lower for faint lenses (r > 22.5) than for r 19-21",
        quote="Network A also showed a degradation in performance for very faint lenses, where "
        "r > 22.5",
        low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease for r > 22.5",
        at=(19.0, 21.0), to=(22.5, INF),
    ),
    Claim(
        experiment="mag_lens_r", network="B", group="lens", kind="change", section="4.4",
        statement="B insensitive to bright lenses (r < 19 vs r 19-21)",
        quote="Network B displays no sensitivity to bright lenses",
        low=-0.05, high=0.05, why=_FLAT, paper_value="no change for r < 19",
        at=(19.0, 21.0), to=(-INF, 19.0),
    ),
    Claim(
        experiment="mag_lens_r", network="B", group="lens", kind="change", section="4.4",
        statement="B's lens score lower for r > 21 than for r 19-21",
        quote="fainter than 21 in r performance degrades quickly",
        low=-INF, high=0.0, why=_DIRECTION, paper_value="decrease for r > 21",
        at=(19.0, 21.0), to=(21.0, INF),
    ),
    # 4.5 annulus occlusion (width 5 px, radius in px)
    *_both(
        experiment="annulus", group="lens", kind="argmin", section="4.5, Fig. 10",
        statement='largest drop of the lens score at radius ~1.3" (5 px)',
        quote="at a radius of 1.3 arcsec ... this fact is most pronounced ... Accuracy is "
        "decreased by more than 10% across the range 0.5-1.7 arcsec",
        low=round(0.5 / PX, 2), high=round(1.7 / PX, 2),
        why='the minimum must lie in the stated 0.5-1.7" (1.9-6.5 px)',
        paper_value='1.3" (4.9 px)',
    ),
    *_both(
        experiment="annulus", group="lens", kind="level", section="4.5",
        statement='lens score ~0.75 at radius 1.3" (4.9 px)',
        quote="with accuracy dropping to ~75%",
        low=0.70, high=0.80, why=_TILDE, paper_value="~0.75", at=_pt(round(1.3 / PX, 2)),
    ),
    *_both(
        experiment="annulus", group="nonlens", kind="max_drop", section="4.5, Fig. 10",
        statement="non-lens score unaffected at any radius",
        quote="for both networks the effect of occlusion (at any radius) does not affect the "
        "ability to pick a non-lens galaxy",
        low=-INF, high=0.05, why=_FLAT + ", on the largest drop", paper_value="no drop",
    ),
    # 4.5 disk occlusion (radius in px)
    Claim(
        experiment="disk", network="A", group="lens", kind="level", section="4.5",
        statement='A\'s lens score 0.85 at radius 0.9" (3.4 px)',
        quote="For network A, the mean score for lenses has dropped to .85 by a radius of .9 "
        "arcsec",
        low=0.80, high=0.90, why=_TILDE, paper_value="0.85", at=_pt(round(0.9 / PX, 2)),
    ),
    Claim(
        experiment="disk", network="A", group="lens", kind="level", section="4.5",
        statement='A\'s lens score 0.12 at radius 2" (7.6 px)',
        quote="and .12 by 2 arcsec", low=0.07, high=0.17, why=_TILDE, paper_value="0.12",
        at=_pt(round(2.0 / PX, 2)),
    ),
    Claim(
        experiment="disk", network="A", group="lens", kind="crossing", section="Fig. 11",
        statement='most of A\'s lenses called non-lenses by radius 1.5" (5.7 px)',
        quote="For Network A, by radius 1.5 arcsec the majority of lenses are classified as non "
        "lenses.",
        low=-INF, high=round(1.5 / PX, 2), metric="accuracy",
        why="accuracy (s > 0.5) falls below 0.5 at or before 1.5\"",
        paper_value='<= 1.5" (5.7 px)',
    ),
    Claim(
        experiment="disk", network="B", group="lens", kind="crossing", section="Fig. 11",
        statement='most of B\'s lenses called non-lenses just over 1" (3.8-4.8 px)',
        quote="For Network B, the decline is faster, at just over 1 arcsec.",
        low=round(1.0 / PX, 2), high=round(1.25 / PX, 2), metric="accuracy",
        why="'just over 1 arcsec': 1.0-1.25\"", paper_value='just over 1" (3.8 px)',
    ),
    *_both(
        experiment="disk", group="nonlens", kind="max_drop", section="4.5",
        statement="non-lens score never decreases with the disk",
        quote="removing central flux never results in a decreased certainty that an object is "
        "a non-lens",
        low=-INF, high=0.05, why=_FLAT + ", on the largest drop", paper_value="no drop",
    ),
    # 4.6 noise (sigma 0-30)
    *_both(
        experiment="noise", group="all", kind="level", section="4.6",
        statement="50/50 accuracy ~0.5 at noise 30 (both networks alike)",
        quote="For a balanced test set, the overall accuracy will be the same in both cases",
        low=0.45, high=0.55, why=_TILDE + "; both strategies give 0.5 on a balanced set",
        paper_value="~0.5 at 30", at=_pt(30.0),
    ),
    Claim(
        experiment="noise", network="A", group="lens", kind="level", section="4.6, Fig. 13",
        statement="A's lens score -> 0.5 (uncertain) at noise 30",
        quote="For network A, the addition of noise leads to confusion - both simulated lenses "
        "and non lens galaxies are scored as uncertain (0.5)",
        low=0.45, high=0.55, why=_TILDE, paper_value="0.5 at 30", at=_pt(30.0),
    ),
    Claim(
        experiment="noise", network="A", group="nonlens", kind="level", section="4.6, Fig. 13",
        statement="A's non-lens score -> 0.5 (uncertain) at noise 30",
        quote="Network A becomes more uncertain (mean of 0.5, high scatter)",
        low=0.45, high=0.55, why=_TILDE, paper_value="0.5 at 30", at=_pt(30.0),
    ),
    Claim(
        experiment="noise", network="B", group="lens", kind="level", section="4.6, Fig. 13",
        statement="B calls noisy lenses non-lenses (score < 0.5 at 30)",
        quote="network B scores simulated lenses as more likely to be non-lenses as the noise "
        "increases",
        low=0.0, high=0.5, why="'more likely to be non-lenses': correct-class score < 0.5",
        paper_value="< 0.5 at 30", at=_pt(30.0),
    ),
    Claim(
        experiment="noise", network="B", group="nonlens", kind="change", section="4.6",
        statement="B's non-lens score rises with noise (0 -> 30)",
        quote="the real non-lens galaxies becomes more certain as noise increases",
        low=0.0, high=INF, why=_DIRECTION, paper_value="increase", at=_pt(0.0), to=_pt(30.0),
    ),
)  # fmt: skip


def claims_for(experiment: str, network: str) -> list[Claim]:
    """The claims about ``network`` in ``experiment`` (empty: none, or not a paper network)."""
    return [c for c in CLAIMS if c.experiment == experiment and c.network == network]


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


# -- table 2 and the statements generated from it ------------------------------------------------

#: Columns of ``table2.csv`` (one row per claim; an (experiment, network) without claims gets
#: one row with judgement "n/a").
TABLE2_COLUMNS: tuple[str, ...] = (
    "experiment", "title", "section", "model", "group", "claim_section", "statement", "quote",
    "kind", "paper_value", "tolerance", "why", "tol_low", "tol_high", "measured", "ours", "value",
    "low", "high", "n", "judgement", "reason", "verdict", "family", "paper_family",
    "family_agree",
)  # fmt: skip


def table2(
    study: Any, summary: pd.DataFrame, claims: Sequence[Claim] | None = None
) -> pd.DataFrame:
    """Table 2: every claim of the paper judged on ``study`` (a :class:`probe.study.StudyResult`).

    ``summary`` is :func:`probe.studies.report.summarise`'s long table; its verdict family for the
    claim's (experiment, model, group) is kept in the columns ``verdict``, ``family``,
    ``paper_family`` and ``family_agree``, separate from the judgement.
    """
    from probe.study import EXPERIMENTS

    pool = CLAIMS if claims is None else tuple(claims)
    titles = {e.name: (e.title, e.section) for e in EXPERIMENTS}
    networks = {c.network for c in pool}
    rows: list[dict[str, Any]] = []

    def family(exp: str, model: str, group: str) -> dict[str, Any]:
        if len(summary) == 0:
            return {}
        hit = summary[
            (summary["experiment"] == exp)
            & (summary["model"] == model)
            & (summary["group"] == group)
        ]
        if hit.empty:
            return {}
        r = hit.iloc[0]
        return {k: r[k] for k in ("verdict", "family", "paper_family", "family_agree")}

    for e in study.experiments():
        title, section = titles.get(e.name, (e.name, ""))
        results = {
            m: study.results[(m, e.name)] for m in study.models if (m, e.name) in study.results
        }
        for model in results:
            base = {"experiment": e.name, "title": title, "section": section, "model": model}
            mine = [c for c in pool if c.experiment == e.name and c.network == model]
            if not mine:
                group = PRIMARY_GROUP.get(e.name, "lens")
                if group not in results[model].groups:
                    group = "lens"
                why = (
                    f"network {model} is not one of the paper's networks"
                    if model not in networks
                    else "the paper states no number or direction for this network here"
                )
                rows.append(
                    {**base, "group": group, "statement": "-", "judgement": "n/a",
                     "reason": why, "ours": "-", **family(e.name, model, group)}
                )  # fmt: skip
                continue
            for c in mine:
                j = judge(c, results)
                rows.append(
                    {
                        **base,
                        "group": c.group,
                        "claim_section": c.section,
                        "statement": c.statement,
                        "quote": c.quote,
                        "kind": c.kind,
                        "paper_value": c.paper_value,
                        "tolerance": c.tolerance(),
                        "why": c.why,
                        "tol_low": c.low,
                        "tol_high": c.high,
                        "measured": j.measured,
                        "ours": j.ours(),
                        "value": j.value,
                        "low": j.low,
                        "high": j.high,
                        "n": j.n,
                        "judgement": j.state,
                        "reason": j.reason,
                        **family(e.name, model, c.group),
                    }
                )
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


def _s(v: Any) -> str:
    """A table cell as text ("" for missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def pretty_table2(table: pd.DataFrame) -> pd.DataFrame:
    """The reader's columns of :func:`table2` (markdown and HTML)."""
    rows = []
    for _, r in table.iterrows():
        paper = _s(r["statement"])
        if _s(r["claim_section"]):
            paper += f" ({_s(r['claim_section'])})"
        number = _s(r["paper_value"])
        if _s(r["tolerance"]):
            number += f"; allowed {_s(r['tolerance'])}"
        fam = _s(r["verdict"])
        if _s(r["paper_family"]):
            fam += f" (paper: {_s(r['paper_family'])})"
        rows.append(
            {
                "property (section)": f"{_s(r['title'])} ({_s(r['section'])})",
                "network": _s(r["model"]),
                "group": _s(r["group"]),
                "paper (where)": paper,
                "paper's number": number or "-",
                "ours [95%]": _s(r["ours"]) or "-",
                "judgement": _s(r["judgement"]),
                "reason": _s(r["reason"]),
                "verdict family": fam or "-",
            }
        )
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table ("" for an empty frame)."""
    if frame.empty:
        return ""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in frame.iterrows():
        cells = (str(row[c]).replace("|", "/").replace("\n", " ") for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_GROUP_WORDS = {"lens": "lenses", "nonlens": "non-lenses", "all": "50/50 set"}
_HEADINGS = {
    "agree": "Agree with the paper",
    "disagree": "Disagree with the paper",
    "inconclusive": "Inconclusive (our interval straddles the paper's tolerance)",
    "not testable": "Not testable with this set",
}


def study_statements(table: pd.DataFrame) -> str:
    """The study's statements in markdown, generated from a measured :func:`table2` table.

    The table (``table2.csv`` as written by :func:`probe.studies.report.write_report`) followed by
    one
    bullet per judged claim, grouped by judgement. Nothing else goes in: docs/study.md's study
    statements are this text (``scripts/update_study_docs.py``), so none is written by hand.
    """
    table = table.astype(object).where(table.notna(), "")
    parts = [markdown_table(pretty_table2(table))]
    judged = table[table["judgement"].isin(STATES)]
    counts = judged["judgement"].value_counts()
    nets = ", ".join(sorted({_s(m) for m in judged["model"]}))
    parts.append(
        f"{len(judged)} claims of the paper judged on network(s) {nets or '-'}: "
        + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATES)
        + "."
    )
    for state in STATES:
        sub = judged[judged["judgement"] == state]
        if sub.empty:
            continue
        parts.append(f"\n**{_HEADINGS[state]}:**\n")
        for _, r in sub.iterrows():
            who = f"{_s(r['title'])} ({_s(r['claim_section'])}), {_s(r['model'])}, " + (
                _GROUP_WORDS.get(_s(r["group"]), _s(r["group"]))
            )
            if state == "not testable":
                parts.append(f"* {who}: {_s(r['statement'])}: {_s(r['reason'])}.")
            else:
                parts.append(
                    f"* {who}: {_s(r['statement'])}: paper {_s(r['paper_value'])} (allowed "
                    f"{_s(r['tolerance'])}); ours {_s(r['ours'])} ({_s(r['measured'])})."
                )
    judged_models = {_s(m) for m in judged["model"]}
    others = sorted({_s(m) for m in table["model"]} - judged_models - {""})
    if others:
        parts.append(f"\nNo claim of the paper applies to: {', '.join(others)} (see table).")
    return "\n".join(parts).rstrip() + "\n"


#: Markers of the generated block in docs/study.md.
DOCS_START = (
    "<!-- study-statements:start (generated by scripts/update_study_docs.py from "
    "docs/study/table2.csv; do not edit by hand) -->"
)
DOCS_END = "<!-- study-statements:end -->"


def run_line(run: Mapping[str, Any]) -> str:
    """One sentence naming the run a table comes from (``study.json`` of the report)."""
    sizes = run.get("sizes") or {}
    size = ", ".join(f"{k} {v}" for k, v in sizes.items() if k != "smoke")
    kind = " (smoke sizes)" if sizes.get("smoke") else ""
    models = ", ".join(str(m) for m in run.get("models", [])) or "-"
    return (
        f"Measured by `probe study` on {models}, seed {run.get('seed', '-')}{kind}: {size}. "
        "Judgement rule: docs/study.md, 'The paper comparison'."
    )


def docs_block(table: pd.DataFrame, run: Mapping[str, Any] | None = None) -> str:
    """The generated block (markers included) for docs/study.md."""
    head = f"{run_line(run)}\n\n" if run else ""
    return f"{DOCS_START}\n{head}{study_statements(table)}{DOCS_END}"


def replace_docs_block(text: str, block: str, *, name: str = "text") -> str:
    """``text`` with its generated block replaced by ``block`` (exactly one pair of markers)."""
    i, j = text.find(DOCS_START), text.find(DOCS_END)
    if text.count(DOCS_START) != 1 or text.count(DOCS_END) != 1 or j < i:
        raise ValueError(
            f"{name} must hold exactly one '{DOCS_START}' ... '{DOCS_END}' pair, in that order"
        )
    return text[:i] + block + text[j + len(DOCS_END) :]
