"""Score units of a gate run: one set at one perturbation value, and the models' p(lens) on each.

A unit is ``(set name, perturber or "", value or None)``. Perturber ``over`` on set ``name``
uses the root ``(6, 2, crc32(name), crc32(over))`` below the run's seed for *every* value, one
:meth:`probe.Probe.sweep` call per value, so a value's perturbed images do not depend on which
other values a suite asks for (and successive values share their random draws: common random
numbers, which make paired changes less noisy). Candidate and baseline see identical images.
The baseline's scores come from the content-addressed cache (:mod:`probe.cache`) where it can;
both models' scores from the run's checkpoints (:mod:`probe.checkpoints`) on ``--resume``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from probe import rng as _rng
from probe.cache import Cache, digest, source_digest
from probe.errors import ProbeTypeError, ProbeValueError
from probe.gating.sets import DATA_STREAM, GateSet, name_crc
from probe.gating.suite import Suite
from probe.sweeps.sensitivity import Probe

__all__ = [
    "Unit",
    "baseline_predictions",
    "candidate_predictions",
    "checkpointed",
    "expectation_units",
    "gate_checkpoints",
    "needed_units",
    "perturb_seed",
    "predict",
]

Unit = tuple[str, str, float | None]
"""(set name, perturber or "", value or None)."""


def expectation_units(e: Any, set_name: str) -> list[Unit]:
    """The units expectation ``e`` tests on set ``set_name``: one per value of a sweep, else
    the unperturbed set."""
    return (
        [(set_name, e.over, v) for v in e.values] if e.mode == "sweep" else [(set_name, "", None)]
    )


def needed_units(suite: Suite, set_of: Callable[[Any], str]) -> tuple[list[Unit], set[Unit]]:
    """Every (set, perturber, value) the suite needs, and those the baseline needs."""
    units: dict[Unit, None] = {}
    base: set[Unit] = set()
    for e in suite.expectations:
        mine = expectation_units(e, set_of(e))
        units.update(dict.fromkeys(mine))
        if e.type == "no_regression":
            base.update(mine)
    return list(units), base


def perturb_seed(seed: int, set_name: str, over: str) -> int:
    """The seed of every value of perturber ``over`` on set ``set_name`` (module docstring)."""
    gen = _rng.child(seed, DATA_STREAM, 2, name_crc(set_name), name_crc(over))
    return int(gen.integers(0, 2**63 - 1))


def predict(probe: Probe, st: GateSet, unit: Unit, pseed: int) -> np.ndarray:
    """``probe``'s p(lens) of ``st``'s images, perturbed as ``unit`` says (seed ``pseed``)."""
    _, over, value = unit
    try:
        if not over:
            return probe.predict(st.images)
        result = probe.sweep(st.images, st.labels, over, [value], rng=pseed)
    except (ProbeValueError, ProbeTypeError) as err:
        # The gate runs two models: say which one failed (its label: candidate or baseline).
        raise type(err)(f"{probe.label} model: {err}") from err
    return result.scores["p_lens"].to_numpy(dtype=np.float64)


def baseline_predictions(
    base: Probe | None,
    ident: dict[str, str] | None,
    units: list[Unit],
    sets: dict[str, GateSet],
    pseeds: dict[Unit, int],
    cache: Cache | None,
    counts: dict[str, int],
    checkpoints: Any = None,
) -> dict[Unit, np.ndarray]:
    """The baseline's p(lens) for ``units``, from the cache where possible (counted), else
    from the run's ``checkpoints`` (``probe check --resume``).

    A baseline without a content identity (``ident`` None: an opaque callable) is neither
    looked up nor stored: its scores may depend on files or state probe cannot see.
    """
    counts.update(baseline_from_cache=0, baseline_computed=0)
    if ident is None:
        cache = None
    out: dict[Unit, np.ndarray] = {}
    probe_src = source_digest("probe") if units else ""
    for u in units:
        assert base is not None
        inputs = {
            "what": "baseline p_lens",
            "model": ident,
            "set": sets[u[0]].key,
            "over": u[1],
            "value": u[2],
            "perturb_seed": pseeds[u] if u[1] else None,
            "block": _rng.BLOCK,
            "probe_source": probe_src,
        }
        got = cache.load_scores(inputs) if cache is not None else None
        if got is not None and got.shape == (len(sets[u[0]].labels),):
            out[u] = got
            counts["baseline_from_cache"] += 1
            continue
        out[u] = checkpointed(
            checkpoints, "baseline", sets[u[0]], u, pseeds[u],
            functools.partial(predict, base, sets[u[0]], u, pseeds[u]),
        )  # fmt: skip
        counts["baseline_computed"] += 1
        if cache is not None:
            cache.save_scores(inputs, out[u])
    return out


def candidate_predictions(
    cand: Probe,
    units: list[Unit],
    sets: dict[str, GateSet],
    pseeds: dict[Unit, int],
    checkpoints: Any = None,
) -> dict[Unit, np.ndarray]:
    """The candidate's p(lens) for ``units``: always computed, unless this run's
    ``checkpoints`` hold it (``probe check --resume``)."""
    return {
        u: checkpointed(checkpoints, "candidate", sets[u[0]], u, pseeds[u],
                        functools.partial(predict, cand, sets[u[0]], u, pseeds[u]))
        for u in units
    }  # fmt: skip


def checkpointed(
    checkpoints: Any,
    who: str,
    st: GateSet,
    unit: Unit,
    pseed: int,
    compute: Callable[[], np.ndarray],
) -> np.ndarray:
    """One unit's p(lens): a verified checkpoint of this run's if there is one (``probe check
    --resume``), else computed (and saved to ``checkpoints``, if any)."""
    if checkpoints is None:
        return compute()
    # Named by the set's content key, the perturber, the value and its seed: the file holds
    # exactly this unit's scores.
    name = f"{who}-{digest([st.key, unit[1], unit[2], pseed if unit[1] else None])[:24]}"
    got = checkpoints.get(name)
    if got is not None and got.get("p", np.empty(0)).shape == (len(st.labels),):
        return got["p"]
    p = np.asarray(compute(), dtype=np.float64)
    checkpoints.put(name, {"p": p})
    return p


def gate_checkpoints(
    root: str | os.PathLike[str],
    resume: bool,
    ident: dict[str, Any] | None,
    candidate: Any,
    key: dict[str, Any],
    say: Callable[[str], None],
) -> Any:
    """The run's unit checkpoints under ``root`` (:class:`probe.checkpoints.Checkpoints`),
    keyed by ``key`` and the candidate's identity; None for a candidate without one (which
    ``resume`` refuses: its checkpoints could not be verified)."""
    from probe.checkpoints import Checkpoints

    if ident is None:
        if resume:
            raise ProbeValueError(
                f"--resume: the candidate {candidate!r} declares no identity (a callable needs "
                "model_id or weight_files), so its checkpoints cannot be verified"
            )
        return None
    return Checkpoints(root, {**key, "candidate": ident}, resume=resume, log=say)
