"""``simlens inject``: simulated lensed sources added to real cutouts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probe.cli_paths import output_file
from simlens.cli._common import (
    EXIT_OK,
    WRITES_SET,
    add_source_args,
    build_simulator,
    control,
    fwhm_list,
    seed,
)


def add_inject(sub: Any) -> argparse.ArgumentParser:
    inj = sub.add_parser(
        "inject",
        help="add simulated lensed sources to real cutouts (one FITS file per band)",
        description=(
            "Read cutouts from DIR (files <name>_<band>.fits, every band for every name), draw "
            "one lens system per cutout (mass and source only; the cutout supplies the lens "
            "light) and write cutout + lensed source to an HDF5 set (images, truth table with "
            "a 'cutout' column naming each file, provenance). " + WRITES_SET
        ),
    )
    inj.set_defaults(func=run_inject)
    inj.add_argument("--cutouts", type=Path, required=True, help="directory of <name>_<band>.fits")
    inj.add_argument("--out", type=output_file, required=True, help="output .h5 file")
    inj.add_argument("--survey", default="des-y3", help="preset name or survey file (des-y3)")
    inj.add_argument(
        "--psf-fwhm", type=fwhm_list, help="PSF FWHM, arcsec: one value or one per band (g,r,i,z)"
    )
    inj.add_argument("--zero-point", type=float, help="AB mag of one cutout unit (survey's: 30)")
    inj.add_argument("--pixel-scale", type=float, help="arcsec per pixel (survey's: 0.263)")
    inj.add_argument("--theta-E", dest="theta_E", type=control, help="arcsec, in (0, 10]")
    inj.add_argument("--mag-source-g", type=control, help="lensed source g mag, in [10, 40]")
    add_source_args(inj)
    inj.add_argument("--seed", type=seed, default=0, help="random seed, integer >= 0 (0)")
    return inj


def run_inject(args: argparse.Namespace) -> int:
    from simlens.io.dataset import Dataset
    from simlens.render.inject import read_cutouts

    sim = build_simulator(args.survey, 100)
    cutouts, names = read_cutouts(args.cutouts, sim.bands)
    n, npix = len(cutouts), cutouts.shape[1]
    if npix != sim.npix:
        sim = build_simulator(args.survey, npix)
    controls: dict[str, Any] = {
        k: v
        for k, v in (
            ("theta_E", args.theta_E),
            ("mag_source_g", args.mag_source_g),
            ("n_sersic_source", args.n_sersic_source),
        )
        if v is not None
    }
    truth = sim.sample_lenses(
        n,
        rng=args.seed,
        source_model=args.source_model,
        source_colour=args.source_colour,
        neighbours=False,
        **controls,
    )
    fw = args.psf_fwhm[0] if args.psf_fwhm and len(args.psf_fwhm) == 1 else args.psf_fwhm
    images, out = sim.inject(
        cutouts, truth, psf_fwhm=fw, zero_point=args.zero_point, pixel_scale=args.pixel_scale
    )
    out["cutout"] = names
    meta = sim.provenance(
        seed=args.seed,
        kind="injected",
        cutouts=str(args.cutouts),
        controls={k: (list(v) if isinstance(v, tuple) else v) for k, v in controls.items()},
        psf_fwhm=args.psf_fwhm,
        zero_point=args.zero_point,
        source_model=args.source_model,
        source_colour=args.source_colour,
    )
    Dataset(images, out, meta, bands=sim.bands).save(args.out)
    print(f"injected lensed sources into {n} cutouts ({npix}x{npix} px) -> {args.out}")
    return EXIT_OK
