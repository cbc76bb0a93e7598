#!/usr/bin/env python
"""Contact sheets of every simlens kind for the README (docs/img/kind_<kind>.png).

Shows 8 images per kind (4 x 2 panels of 80 px, Lupton composites of i, r, g) as the simulator
makes them by default: DES Y3, neighbours on, noise. Run: ``python docs/kind_sheets.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)

    import simlens
    from simlens.io.plotting import contact_sheet
    from simlens.sampling.truth import NONLENS_KINDS

    sim = simlens.Simulator("des-y3")
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {
        "lens": sim.sample_lenses(8, rng=args.seed, theta_E=(1.2, 2.5), mag_source_g=(20, 21.5)),
        "lens_clumpy": sim.sample_lenses(
            8, rng=args.seed, theta_E=(1.2, 2.5), mag_source_g=(20, 21.5), source_model="clumpy"
        ),
        **{k: sim.sample_nonlenses(8, rng=args.seed, kind=k) for k in NONLENS_KINDS},
    }
    for name, truth in sets.items():
        path = args.out / f"kind_{name}.png"
        contact_sheet(sim.render(truth), truth, path=path, ncols=4, panel_px=80)
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
