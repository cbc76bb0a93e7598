"""``probe yield``: the expected number of lenses a model finds over a survey
(:func:`probe.yields.survey_yields`, docs/selection.md)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from probe.adapters.simulators import SIMULATOR_NAME
from probe.cli import inputs
from probe.cli._common import EXITS, SURVEY_HELP, predictor
from probe.cli.inputs import parse_thresholds
from probe.cli_policy import EXIT_OK


def add_yield(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    y = sub.add_parser(
        "yield",
        parents=[common],
        help="expected number of lenses found",
        description="Expected number of lenses the model finds over a survey at each "
        f"threshold: the survey's lens population drawn from {SIMULATOR_NAME}, its "
        "LensPop-detectable part scored. Prints the numbers; with --out also writes "
        "OUT/yield.json (with provenance). " + EXITS,
    )
    y.set_defaults(func=run_yield)
    y.add_argument("--survey", default="des-y3", help=SURVEY_HELP)
    y.add_argument("--threshold", required=True, help="score threshold(s), a or a,b")
    y.add_argument("--area", type=float, help="search area, deg^2 (default: the preset's)")
    y.add_argument(
        "--n", type=int, default=0, help="score at most this many detectable lenses (0: all found)"
    )
    y.add_argument("--n-other", type=int, default=500, help="non-detectable lenses to score")
    y.add_argument(
        "--n-density", type=int, default=40000, help="lenses drawn (detectable fraction ~0.4%%)"
    )
    y.add_argument("--npix", type=int, help="stamp size in pixels (simulator default if unset)")
    return y


def run_yield(args: argparse.Namespace) -> int:
    """``probe yield``: expected lenses found over the survey at each threshold."""
    from probe.resume import finish, images_scope, predict, yield_checkpoints
    from probe.yields import survey_yields

    thresholds = parse_thresholds(args.threshold, "--threshold")
    p = predictor(args)
    # With --out, each stratum's scores go through OUT/checkpoints (scoped by its images).
    ckpt = yield_checkpoints(args, p, inputs.make_simulator(args.survey, args.npix))

    def scored(images: Any) -> np.ndarray:
        return predict(p, images, ckpt, images_scope(images))

    res = survey_yields(
        {p.label or "model": scored},
        thresholds,
        survey=args.survey,
        area=args.area,
        n_density=args.n_density,
        n_other=args.n_other,
        n=args.n,
        rng=args.seed,
        npix=args.npix,
    )
    results = next(iter(res.yields.values()))
    found = next(iter(res.detectable_found.values()))
    _print_yields(res.sky, results, found)
    if args.out is not None:
        _write_yields(args, p, res.sky, results, found)
        finish(ckpt, args)
    return EXIT_OK


def _print_yields(sky: Any, results: list[Any], found: list[Any]) -> None:
    """The sky's lens densities, the questions answered, then one line per threshold."""
    from probe.yields import QUESTIONS

    print(
        f"{sky.survey}: {sky.strong_per_deg2:.1f} strong lenses per deg^2; LensPop-detectable "
        f"{sky.detectable_per_deg2:.3f} [{sky.detectable_low:.3f}, {sky.detectable_high:.3f}] "
        f"per deg^2 = {sky.n_detectable:.0f} [{sky.n_detectable_low:.0f}, "
        f"{sky.n_detectable_high:.0f}] over {sky.area_deg2:g} deg^2 "
        f"(LensPop's own DES prediction: {sky.lenspop_prediction:.0f})"
    )
    for text in QUESTIONS.values():
        print(f"  {text}")
    for y, f in zip(results, found):
        print(
            f"p >= {y.threshold:g}: detectable lenses found {f.expected:.0f} "
            f"[{f.low:.0f}, {f.high:.0f}]; all strong lenses flagged {y}"
        )


def _write_yields(
    args: argparse.Namespace, p: Any, sky: Any, results: list[Any], found: list[Any]
) -> None:
    """Write OUT/yield.json (the numbers printed, with the model and seed), atomically."""
    import json

    from probe.provenance import atomic_write, dumps
    from probe.yields import QUESTIONS

    doc = {
        "model": p.adapter.description,
        "seed": args.seed,
        "sky": sky.as_dict(),
        "questions": dict(QUESTIONS),
        "yields": [y.as_dict() for y in results],
        "detectable_found": [f.as_dict() for f in found],
    }
    path = args.out / "yield.json"
    text = json.dumps(json.loads(dumps(doc)), indent=1)

    def write(tmp: Any) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)
    print(f"wrote {path}")
