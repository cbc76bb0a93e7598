"""The paper's quantitative claims as data: one :class:`Claim` per statement of Jacobs et al.

:data:`CLAIMS` holds each claim (the quoted sentence, its section, the quantity, the tolerance and
why); :func:`claims_for` selects those about one network in one experiment. They are judged by
:func:`probe.studies.paper.judge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


__all__ = [
    "CLAIMS",
    "JUDGE_RULE",
    "KINDS",
    "MIN_IMAGES",
    "PRIMARY_GROUP",
    "STATES",
    "Claim",
    "claims_for",
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
