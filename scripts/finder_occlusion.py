#!/usr/bin/env python
"""Finders' scores under the study's disk occlusion: mean p(lens) per radius, lenses and non-lenses.

Draws fresh test sets at the finders' training preset (des-sv, Gaussian PSF): lenses over
``simlens.finders.TRAINING_LENSES``, the same lenses without their source ("unlensed", finder
A's negatives) and field non-lenses; blanks a central disk of each radius of the study's grid
(``probe.perturbers.DiskOcclusion``, 0-35 px by 2.5) and prints, per model and radius, the
mean p(lens) and the fraction above 0.5 of each set. A non-lens's correct-class score is
``1 - p(lens)``. Writes ``<out>/finder_occlusion.json`` and ``.md``.

Examples::

    python scripts/finder_occlusion.py                          # shipped A, B, C; n = 200
    python scripts/finder_occlusion.py --model A --model old/A.keras:A-before --n 300
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

RADII = tuple(float(r) for r in np.arange(0.0, 35.01, 2.5))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        action="append",
        help="shipped finder name or PATH.keras[:LABEL] (repeat; default every shipped finder)",
    )
    ap.add_argument("--n", type=int, default=200, help="images per set (default 200)")
    ap.add_argument("--seed", type=int, default=31415, help="seed of the test sets")
    ap.add_argument("--out", type=Path, default=Path("out/finder_occlusion"))
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import simlens
    from probe.perturbers import DiskOcclusion
    from simlens import finders
    from simlens.finders._model import load_keras

    sim = simlens.Simulator(finders.SURVEY, psf_profile=finders.TRAINING_PSF)
    lenses = sim.sample_lenses(args.n, rng=args.seed, **finders.TRAINING_LENSES)
    sets = {
        "lenses": sim.render(lenses),
        "unlensed": sim.render(sim.unlensed(lenses)),
        "field": sim.render(sim.sample_nonlenses(args.n, rng=args.seed + 1, kind="field")),
    }
    models = {}
    for spec in args.model or list(finders.NAMES):
        if spec in finders.NAMES:
            models[spec] = finders.load(spec)
        else:
            path, _, label = spec.partition(":")
            models[label or Path(path).stem] = load_keras(path)
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for label, model in models.items():
        table[label] = {}
        for kind, x in sets.items():
            mean, above = [], []
            for r in RADII:
                xr = DiskOcclusion(r)(x) if r > 0 else x
                p = np.asarray(model.predict(xr, batch_size=256, verbose=0)).ravel()
                mean.append(float(p.mean()))
                above.append(float((p > 0.5).mean()))
            table[label][kind] = {"mean_p_lens": mean, "fraction_above_0.5": above}
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"radii_px": list(RADII), "n_per_set": args.n, "seed": args.seed, "scores": table}
    (args.out / "finder_occlusion.json").write_text(json.dumps(doc, indent=2) + "\n")
    head = "| radius (px) | " + " | ".join(f"{m} {k}" for m in table for k in sets) + " |"
    lines = [head, "|" + " --- |" * (1 + len(table) * len(sets))]
    for i, r in enumerate(RADII):
        cells = [
            f"{table[m][k]['mean_p_lens'][i]:.2f} ({table[m][k]['fraction_above_0.5'][i]:.0%})"
            for m in table
            for k in sets
        ]
        lines.append(f"| {r:g} | " + " | ".join(cells) + " |")
    text = (
        f"Mean p(lens) (fraction > 0.5) under DiskOcclusion, {args.n} images per set, "
        f"seed {args.seed}\n\n" + "\n".join(lines) + "\n"
    )
    (args.out / "finder_occlusion.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
