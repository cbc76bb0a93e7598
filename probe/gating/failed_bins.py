"""The images behind a failed expectation: its first failed bin's lowest-scoring images.

:mod:`probe.gating.report` shows them under the failed expectation (``report.html``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probe import rng as _rng
from probe.gating.sets import GateSet
from probe.gating.verdicts import Outcome

__all__ = ["failed_bin_gallery"]


def failed_bin_gallery(e: Any, o: Outcome, st: GateSet, p: np.ndarray, pseeds: list[int]) -> Any:
    """The candidate's lowest-scoring images (correct-class score) of ``o``'s first failed bin.

    Binned expectations: the images of the bin's group with the parameter in the bin; sweeps:
    the group's images at the bin's value, perturbed exactly as they were scored.
    """
    from probe.adapters.images import ImageSet
    from probe.perturbers import factory
    from probe.studies.galleries import GALLERY_SIZE, Gallery
    from probe.sweeps.sensitivity import correct_class_score

    row = o.table[~o.table["holds"].to_numpy(dtype=bool)].iloc[0]
    lab = st.labels
    group = str(row["group"])
    mask = np.ones(lab.size, bool) if group == "all" else lab == (1 if group == "lens" else 0)
    j = 0
    if e.mode == "sweep":
        j = int(np.flatnonzero(np.isclose(np.asarray(e.values, float), float(row["low"])))[0])
    elif np.isfinite(row["low"]):
        par = st.truth[e.over].to_numpy(dtype=np.float64)
        last = bool(row["high"] >= float(o.table["high"].max()))
        mask &= (par >= row["low"]) & ((par <= row["high"]) if last else (par < row["high"]))
    score = correct_class_score(p[j], lab)
    idx = np.flatnonzero(mask)
    idx = idx[np.lexsort((idx, score[idx]))][:GALLERY_SIZE]
    captions = (
        [f"{e.over} {v:.2f}" for v in st.truth[e.over].to_numpy(dtype=np.float64)[idx]]
        if e.mode == "binned"
        else []
    )
    images = np.stack([np.asarray(st.images[int(i)]) for i in idx]) if idx.size else np.empty(0)
    if e.mode == "sweep" and idx.size:
        # probe.sweep over [value] perturbs block k of probe.rng.BLOCK images with stream
        # (PERTURB, 0, k) of the unit's seed
        build = factory(e.over)[0]
        pert = build(float(e.values[j]))
        entropy = _rng.root_entropy(pseeds[j])
        n = lab.size
        out = []
        for i in idx:
            k = int(i) // _rng.BLOCK
            first, last_i = k * _rng.BLOCK, min((k + 1) * _rng.BLOCK, n)
            block = ImageSet(st.images).batch(first, last_i)
            out.append(pert(block, _rng.child(entropy, _rng.PERTURB, 0, k))[int(i) - first])
        images = np.stack(out)
    return Gallery(
        experiment=o.name,
        model="candidate",
        how=(
            f"the candidate's {idx.size} lowest-scoring {group} images of the failed bin "
            f"{row['label']}"
        ),
        samples=idx.astype(np.int64),
        labels=lab[idx].astype(np.int64),
        before=images,
        p_before=np.asarray(p[j][idx], dtype=float),
        value=float(row["low"]),
        captions=captions,
    )
