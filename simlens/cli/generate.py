"""``simlens generate``: N images of one kind, streamed to an HDF5 set or a sharded Zarr store."""

from __future__ import annotations

import argparse
from typing import Any

from probe.cli_policy import BadInput, positive_int
from simlens.cli._common import (
    EXIT_OK,
    KINDS,
    LENS_ONLY,
    add_compression_arg,
    add_source_args,
    build_simulator,
    control,
    output_set,
    seed,
)


def add_generate(sub: Any) -> argparse.ArgumentParser:
    gen = sub.add_parser(
        "generate",
        help="simulate a set and write it to an HDF5 file or a Zarr store",
        description=(
            "Simulate N images of one kind and stream them to an HDF5 set (.h5) or a sharded "
            "Zarr store (.zarr, one shard per chunk, written by the workers; --resume "
            "finishes a killed run). Controls take a number (fixed) or lo:hi (uniform). The "
            "same --seed gives the same set whatever --chunk, --workers or --scheduler: each "
            "chunk is rows k*chunk.. of the seed's sequence, sampled and rendered on its own. "
            "Writes OUT: images (float32, counts at zero point 30), the truth table (one row "
            "per image) and provenance; prints one line naming it. Exit codes: 0 written, 2 "
            "bad input (nothing written), 130 interrupted (a .h5 file is removed, a .zarr "
            "store keeps its finished shards for --resume)."
        ),
    )
    gen.set_defaults(func=run_generate)
    gen.add_argument("--survey", default="des-y3", help="preset name or survey file (des-y3)")
    gen.add_argument("--n", type=positive_int, required=True, help="number of images (>= 1)")
    gen.add_argument("--kind", default="lens", help=f"one of {', '.join(KINDS)} (lens)")
    gen.add_argument("--npix", type=positive_int, default=100, help="image side, pixels (100)")
    gen.add_argument("--theta-E", dest="theta_E", type=control, help="arcsec, in (0, 10]; lens")
    gen.add_argument("--psf-scale", type=control, default=1.0, help="PSF FWHM / preset (1.0)")
    gen.add_argument("--mag-lens-r", type=control, help="lens galaxy r mag, AB, in [10, 40]")
    gen.add_argument(
        "--mag-source-g", type=control, help="lensed source g mag (observed), in [10, 40]; lens"
    )
    gen.add_argument(
        "--detectable",
        action="store_true",
        help="lenses: keep LensPop-detectable systems only (S/N > 20, mu > 3, resolved)",
    )
    add_source_args(gen)
    gen.add_argument(
        "--no-neighbours", action="store_true", help="no interloping field galaxies and stars"
    )
    gen.add_argument(
        "--gamma-ext", type=control, help="external shear, in [0, 0.5] (default 0); lens"
    )
    gen.add_argument(
        "--psi-ext",
        type=control,
        help="shear angle, rad, in [-pi, pi] (default uniform in [0, pi) with --gamma-ext); lens",
    )
    gen.add_argument(
        "--gamma-slope",
        type=control,
        help="EPL power-law mass slope, in [1.2, 2.8] (default 2, the SIE); lens",
    )
    gen.add_argument("--seed", type=seed, default=0, help="random seed, integer >= 0 (0)")
    gen.add_argument(
        "--chunk",
        type=positive_int,
        default=256,
        help="images per task, and per shard of a .zarr store (256); same output",
    )
    gen.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="Dask worker processes on this machine (1: no cluster, in-process); same output",
    )
    gen.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (tcp://host:8786, e.g. dask-jobqueue's)",
    )
    gen.add_argument(
        "--resume",
        action="store_true",
        help=".zarr: finish a killed run (keeps verified shards; same configuration required)",
    )
    add_compression_arg(gen)
    gen.add_argument("--no-noise", action="store_true", help="render without noise")
    gen.add_argument("--out", type=output_set, required=True, help="output .h5 file or .zarr store")
    return gen


def run_generate(args: argparse.Namespace) -> int:
    """``simlens generate``: N images of one kind to an HDF5 set or a Zarr store."""
    controls = generation_controls(args)
    from simlens.io.store_layout import is_store_path
    from simlens.scale.cluster import dask_client
    from simlens.scale.generation import generate

    store = is_store_path(args.out)
    if args.resume and not store:
        raise BadInput("--resume: applies to a .zarr store only, not an .h5 file")
    if args.resume and args.overwrite:
        raise BadInput("--resume and --overwrite: choose one (resume keeps finished shards)")
    if store and args.compression != "none":
        raise BadInput("--compression: applies to .h5 outputs (a .zarr store is compressed)")
    compression = None if args.compression == "none" else args.compression
    with dask_client(args.workers, args.scheduler, quiet=args.quiet) as client:
        generate(
            args.out,
            args.n,
            kind=args.kind,
            survey=args.survey,
            npix=args.npix,
            seed=args.seed,
            chunk=args.chunk,
            noise=not args.no_noise,
            compression=compression,
            client=client,
            resume=args.resume,
            progress=not args.quiet,
            _factory=build_simulator,
            **controls,
        )
    print(generated_line(args, store))
    return EXIT_OK


def generation_controls(args: argparse.Namespace) -> dict[str, Any]:
    """The simulator controls of ``simlens generate``; bad input for a flag of another kind."""
    if args.kind not in KINDS:
        raise BadInput(f"--kind: expected one of {', '.join(KINDS)}, got {args.kind!r}")
    if args.kind != "lens":
        for name in LENS_ONLY:
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise BadInput(f"{flag}: applies to --kind lens only, not {args.kind!r}")
        if args.source_model != "sersic" or args.source_colour != "mixture":
            raise BadInput(f"--source-*: apply to --kind lens only, not {args.kind!r}")
    controls: dict[str, Any] = {"psf_scale": args.psf_scale}
    if args.mag_lens_r is not None:
        controls["mag_lens_r"] = args.mag_lens_r
    if args.no_neighbours:
        controls["neighbours"] = False
    if args.kind == "lens":
        controls.update(theta_E=args.theta_E, mag_source_g=args.mag_source_g)
        for name in ("n_sersic_source", "gamma_ext", "psi_ext", "gamma_slope"):
            if getattr(args, name) is not None:
                controls[name] = getattr(args, name)
        if args.source_model != "sersic":
            controls["source_model"] = args.source_model
        if args.source_colour != "mixture":
            controls["source_colour"] = args.source_colour

    if args.detectable:
        if args.kind != "lens":
            raise BadInput(f"--detectable: applies to --kind lens only, not {args.kind!r}")
        controls["detectable"] = True
    return controls


def generated_line(args: argparse.Namespace, store: bool) -> str:
    """The line ``simlens generate`` prints: what it wrote, where (and a store's shards)."""
    from simlens.io.dataset import read_info
    from simlens.io.store_reader import store_bytes

    info = read_info(args.out)
    bands = "".join(info["bands"])
    what = f"{args.n} {args.kind} images ({info['npix']}x{info['npix']} px, {bands})"
    if not store:
        return f"wrote {what} to {args.out}"
    raw = args.n * info["npix"] ** 2 * len(info["bands"]) * 4
    ratio = store_bytes(args.out)["images"] / raw
    return (
        f"wrote {what} to {args.out}: {info['n_shards']} shards of {args.chunk}, images "
        f"{ratio:.3f} of their float32 size (Blosc-zstd, lossless)"
    )
