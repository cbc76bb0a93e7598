"""What a gate run returns: :class:`GateResult` (verdict, outcomes, timings, provenance, cache use).

:func:`probe.gating.run.run_gate` builds it; :mod:`probe.gating.report` writes it as
``report.html``, ``report.json`` and ``junit.xml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from probe.gating.verdicts import Outcome

__all__ = ["GateResult"]


@dataclass
class GateResult:
    """What :func:`probe.run_gate` returns.

    Attributes
    ----------
    passed : bool
        Whether every expectation holds.
    outcomes : list of Outcome
        One per expectation, in suite order.
    timings : dict of str to float
        Wall seconds: ``simulate``, ``load_sets``, ``baseline``, ``candidate``, ``statistics``,
        ``total``.
    provenance : dict
        probe version, the suite (as its TOML tables), seed, model and data hashes, simulator
        identity, package versions.
    cache : dict of str to int
        ``sets_from_cache``, ``sets_simulated``, ``baseline_from_cache``, ``baseline_computed``
        (units: one set at one perturbation value), ``candidate_computed``, ``invalid`` (corrupt
        or mismatched entries ignored); ``baseline_uncacheable`` 1 when the baseline is an
        opaque callable whose scores were neither looked up nor stored.
    """

    passed: bool
    outcomes: list[Outcome]
    timings: dict[str, float]
    provenance: dict[str, Any]
    cache: dict[str, int] = field(default_factory=dict)
    #: outcome index -> the images behind its first failed bin
    #: (:func:`probe.gating.failed_bins.failed_bin_gallery`)
    galleries: dict[int, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        """The outcomes that do not hold."""
        return [o for o in self.outcomes if not o.holds]

    def summary(self) -> str:
        """One line per expectation, then timings and cache use (what ``probe check`` prints)."""
        width = max(len(o.expectation.type) for o in self.outcomes)
        lines = []
        for o in self.outcomes:
            far = o.false_alarm_rate
            far_text = f"false-alarm rate {far:.3f}" if np.isfinite(far) else "false-alarm rate n/a"
            if o.holds:
                detail = f"holds in {len(o.table)} bin(s) ({far_text})"
            else:
                detail = o.message.split(" FAILS: ", 1)[-1]
            lines.append(
                f"{'PASS' if o.holds else 'FAIL'} {o.expectation.type:<{width}} {o.name}: {detail}"
            )
        t, c = self.timings, self.cache
        n_sets = c.get("sets_from_cache", 0) + c.get("sets_simulated", 0)
        n_base = c.get("baseline_from_cache", 0) + c.get("baseline_computed", 0)
        uncached = (
            "; not cacheable: opaque callable without model_id or weight_files"
            if c.get("baseline_uncacheable")
            else ""
        )
        lines.append(
            f"timings: sets {t.get('simulate', 0) + t.get('load_sets', 0):.1f} s "
            f"({c.get('sets_from_cache', 0)} of {n_sets} from cache), baseline "
            f"{t.get('baseline', 0):.1f} s ({c.get('baseline_from_cache', 0)} of {n_base} units "
            f"from cache{uncached}), candidate {t.get('candidate', 0):.1f} s "
            f"({c.get('candidate_computed', 0)} units), statistics {t.get('statistics', 0):.1f} s, "
            f"total {t.get('total', 0):.1f} s"
        )
        held = sum(o.holds for o in self.outcomes)
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict}: {held} of {len(self.outcomes)} expectations hold")
        return "\n".join(lines)

    def write(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``report.html``, ``report.json`` and ``junit.xml`` into ``out``."""
        from probe.gating.report import write_reports

        return write_reports(self, out)
