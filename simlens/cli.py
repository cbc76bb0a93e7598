"""The ``simlens`` command: generate, inspect and view simulated sets.

Thin by design: it parses arguments and calls :class:`simlens.simulator.Simulator`,
:mod:`simlens.io.dataset`, :mod:`simlens.io.plotting` and :mod:`simlens.io.fits`; nothing in the
library
imports it. Exit codes: 0 success, 2 bad input (message on stderr naming the parameter; nothing
written), 130 interrupted.

Each sub-command is one parser builder (``_add_<command>``) and one function
(``set_defaults(func=...)``). ``--version`` prints the version; ``-v``/``-q`` set what the
library's log messages show on stderr (:func:`probe.cli_policy.log_to_stderr`).

Examples
--------
::

    simlens generate --survey des-y3 --n 10000 --kind lens --theta-E 1.0:2.7 --psf-scale 0.6 \\
        --seed 1 --out set.h5
    simlens info set.h5
    simlens show set.h5 --out sheet.png --n 16
    simlens fits set.h5 --index 0 --out system0.fits
    simlens generate --kind field --n 1000 --seed 2 --out field.h5
    simlens generate --n 100000 --seed 3 --workers 2 --out big.zarr    # sharded, on Dask
    simlens generate --n 100000 --seed 3 --workers 2 --out big.zarr --resume   # after a kill
    simlens inject --cutouts cutouts/ --out injected.h5 --psf-fwhm 1.1,0.95,0.9,0.85 --seed 3
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The exit-code policy shared with the probe command line: one module, not two copies.
from probe.cli_paths import output_file
from probe.cli_policy import (
    EPILOG,
    add_debug,
    add_overwrite,
    add_verbosity,
    add_version,
    positive_int,
    run,
)
from probe.cli_policy import BadInput as _BadInput
from probe.cli_policy import Parser as _Parser

__all__ = ["main"]

EXIT_OK = 0  # the same codes as probe.cli_policy (the policy both command lines follow)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

KINDS = ("lens", "elliptical", "star", "spiral", "merger", "ring", "blue_companion", "field")
_LENS_ONLY = ("theta_E", "mag_source_g", "n_sersic_source", "gamma_ext", "psi_ext", "gamma_slope")


# --------------------------------------------------------------------------- argument types
def _control(text: str) -> float | tuple[float, float]:
    """``"x"`` -> x (a fixed value); ``"lo:hi"`` -> (lo, hi) (uniform between them)."""
    parts = text.split(":")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or lo:hi, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    if len(values) == 2:
        if values[0] > values[1]:
            raise argparse.ArgumentTypeError(f"range lo:hi needs lo <= hi, got {text!r}")
        return (values[0], values[1])
    return values[0]


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


_WRITES_SET = (
    "Writes OUT atomically (a temporary file renamed at the end; nothing on an error) and "
    "prints one line naming it. Exit codes: 0 written, 2 bad input (nothing written), 130 "
    "interrupted."
)


def _parser() -> argparse.ArgumentParser:
    from simlens import __version__

    parser = _Parser(
        prog="simlens",
        description="DES-like, LensPop-style strong-lens simulator.",
        epilog=EPILOG + " Nothing is written on an error.",
    )
    add_version(parser, __version__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    generate, inject = _add_generate(sub), _add_inject(sub)
    _add_info(sub)  # the one command that writes no file
    writers = [generate, inject, _add_show(sub), _add_concat(sub), _add_truth(sub), _add_fits(sub)]
    for writer in writers:
        add_overwrite(writer)
    add_debug(parser, sub)
    add_verbosity(parser, sub)
    return parser


def _add_generate(sub: Any) -> argparse.ArgumentParser:
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
    gen.set_defaults(func=_generate)
    gen.add_argument("--survey", default="des-y3", help="preset name or survey file (des-y3)")
    gen.add_argument("--n", type=positive_int, required=True, help="number of images (>= 1)")
    gen.add_argument("--kind", default="lens", help=f"one of {', '.join(KINDS)} (lens)")
    gen.add_argument("--npix", type=positive_int, default=100, help="image side, pixels (100)")
    gen.add_argument("--theta-E", dest="theta_E", type=_control, help="arcsec, in (0, 10]; lens")
    gen.add_argument("--psf-scale", type=_control, default=1.0, help="PSF FWHM / preset (1.0)")
    gen.add_argument("--mag-lens-r", type=_control, help="lens galaxy r mag, AB, in [10, 40]")
    gen.add_argument(
        "--mag-source-g", type=_control, help="lensed source g mag (observed), in [10, 40]; lens"
    )
    gen.add_argument(
        "--detectable",
        action="store_true",
        help="lenses: keep LensPop-detectable systems only (S/N > 20, mu > 3, resolved)",
    )
    _source_args(gen)
    gen.add_argument(
        "--no-neighbours", action="store_true", help="no interloping field galaxies and stars"
    )
    gen.add_argument(
        "--gamma-ext", type=_control, help="external shear, in [0, 0.5] (default 0); lens"
    )
    gen.add_argument(
        "--psi-ext",
        type=_control,
        help="shear angle, rad, in [-pi, pi] (default uniform in [0, pi) with --gamma-ext); lens",
    )
    gen.add_argument(
        "--gamma-slope",
        type=_control,
        help="EPL power-law mass slope, in [1.2, 2.8] (default 2, the SIE); lens",
    )
    gen.add_argument("--seed", type=_seed, default=0, help="random seed, integer >= 0 (0)")
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
    _compression_arg(gen)
    gen.add_argument("--no-noise", action="store_true", help="render without noise")
    gen.add_argument(
        "--out", type=_output_set, required=True, help="output .h5 file or .zarr store"
    )
    return gen


def _add_inject(sub: Any) -> argparse.ArgumentParser:
    inj = sub.add_parser(
        "inject",
        help="add simulated lensed sources to real cutouts (one FITS file per band)",
        description=(
            "Read cutouts from DIR (files <name>_<band>.fits, every band for every name), draw "
            "one lens system per cutout (mass and source only; the cutout supplies the lens "
            "light) and write cutout + lensed source to an HDF5 set (images, truth table with "
            "a 'cutout' column naming each file, provenance). " + _WRITES_SET
        ),
    )
    inj.set_defaults(func=_inject)
    inj.add_argument("--cutouts", type=Path, required=True, help="directory of <name>_<band>.fits")
    inj.add_argument("--out", type=output_file, required=True, help="output .h5 file")
    inj.add_argument("--survey", default="des-y3", help="preset name or survey file (des-y3)")
    inj.add_argument(
        "--psf-fwhm", type=_fwhm_list, help="PSF FWHM, arcsec: one value or one per band (g,r,i,z)"
    )
    inj.add_argument("--zero-point", type=float, help="AB mag of one cutout unit (survey's: 30)")
    inj.add_argument("--pixel-scale", type=float, help="arcsec per pixel (survey's: 0.263)")
    inj.add_argument("--theta-E", dest="theta_E", type=_control, help="arcsec, in (0, 10]")
    inj.add_argument("--mag-source-g", type=_control, help="lensed source g mag, in [10, 40]")
    _source_args(inj)
    inj.add_argument("--seed", type=_seed, default=0, help="random seed, integer >= 0 (0)")
    return inj


def _add_info(sub: Any) -> argparse.ArgumentParser:
    info = sub.add_parser(
        "info",
        help="summarise a saved set",
        description="Print a saved set's summary on stdout: size, bands, survey, writer, counts "
        "per kind and label, each numeric truth column's range and the provenance. Writes no "
        "file. Exit codes: 0 printed, 2 a missing or unreadable set.",
    )
    info.set_defaults(func=_info)
    info.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    return info


def _add_show(sub: Any) -> argparse.ArgumentParser:
    show = sub.add_parser(
        "show",
        help="contact sheet of colour composites (PNG)",
        description="Draw the first N images of a saved set as gri colour composites in a grid "
        "and write the sheet to a PNG file. " + _WRITES_SET,
    )
    show.set_defaults(func=_show)
    show.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    show.add_argument("--out", type=output_file, required=True, help="output PNG")
    show.add_argument("--n", type=positive_int, default=16, help="images shown, first N (16)")
    show.add_argument("--ncols", type=positive_int, default=4, help="panels per row (4)")
    return show


def _add_concat(sub: Any) -> argparse.ArgumentParser:
    cat = sub.add_parser(
        "concat",
        help="join saved sets into one (e.g. lenses + non-lenses)",
        description="Write the images and truth of several saved sets, in order, to one HDF5 set "
        "(same image size and bands; truth columns missing from a set are left missing; the "
        "provenance lists each input's). Streams block by block: the sets need not fit in "
        "memory. " + _WRITES_SET,
    )
    cat.set_defaults(func=_concat)
    cat.add_argument("paths", type=Path, nargs="+", help="input .h5 sets, in order")
    cat.add_argument("--out", type=output_file, required=True, help="output .h5 set")
    _compression_arg(cat)
    return cat


def _add_truth(sub: Any) -> argparse.ArgumentParser:
    tr = sub.add_parser(
        "truth",
        help="export a set's truth table (parquet, fits, ecsv)",
        description="Write the truth table of a saved set to a file that pandas, astropy and "
        "TOPCAT read: Parquet, a FITS binary table or ECSV, with the set's provenance in the "
        "table metadata (key 'simlens'). " + _WRITES_SET,
    )
    tr.set_defaults(func=_truth)
    tr.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    tr.add_argument(
        "--format",
        choices=("parquet", "fits", "ecsv"),
        default="parquet",
        help="table format (parquet)",
    )
    tr.add_argument("--out", type=output_file, help="output file (default: SET.truth.<format>)")
    return tr


def _add_fits(sub: Any) -> argparse.ArgumentParser:
    fits = sub.add_parser(
        "fits",
        help="export one system to multi-extension FITS",
        description="Write one image of a saved set to a multi-extension FITS file: one image "
        "HDU per band (counts; WCS, zero point and PSF FWHM in its header) and the system's "
        "truth row. " + _WRITES_SET,
    )
    fits.set_defaults(func=_fits)
    fits.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    fits.add_argument("--index", type=int, default=0, help="row of the system (0)")
    fits.add_argument("--out", type=output_file, required=True, help="output .fits file")
    return fits


def _compression_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "lzf"),
        default="none",
        help="HDF5 compression of the images (none); lossless",
    )


def _output_set(text: str) -> Path:
    """An output set: a ``.zarr`` store (a directory, possibly there already) or a file."""
    from probe.cli_paths import output_dir

    if text.rstrip("/").endswith(".zarr"):
        path = Path(text).expanduser()
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text!r} is a file; a .zarr set is a directory (a Zarr store)"
            )
        return output_dir(text)
    return output_file(text)


def _fwhm_list(text: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if len(values) not in (1, 4) or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected 1 or 4 positive FWHM values, got {text!r}")
    return values


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source-model",
        choices=("sersic", "clumpy"),
        default="sersic",
        help="lensed source light: one Sersic profile or a clumpy star-forming one (sersic)",
    )
    p.add_argument(
        "--source-colour",
        default="mixture",
        help="source SED: 'mixture' (drawn per source, default) or a template name",
    )
    p.add_argument(
        "--n-sersic-source", type=_control, help="source Sersic index, in [0.5, 8] (default 1)"
    )


# --------------------------------------------------------------------------- commands
def _simulator(survey: str, npix: int) -> Any:
    """Build the simulator (a seam for tests; imports the heavy physics only when needed)."""
    from simlens.simulator import Simulator

    return Simulator(survey=survey, npix=npix)


def _generate(args: argparse.Namespace) -> int:
    """``simlens generate``: N images of one kind to an HDF5 set or a Zarr store."""
    controls = _generate_controls(args)
    from simlens.io.store import is_store_path
    from simlens.scale.cluster import dask_client
    from simlens.scale.generation import generate

    store = is_store_path(args.out)
    if args.resume and not store:
        raise _BadInput("--resume: applies to a .zarr store only, not an .h5 file")
    if args.resume and args.overwrite:
        raise _BadInput("--resume and --overwrite: choose one (resume keeps finished shards)")
    if store and args.compression != "none":
        raise _BadInput("--compression: applies to .h5 outputs (a .zarr store is compressed)")
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
            _factory=_simulator,
            **controls,
        )
    print(_generated(args, store))
    return EXIT_OK


def _generate_controls(args: argparse.Namespace) -> dict[str, Any]:
    """The simulator controls of ``simlens generate``; bad input for a flag of another kind."""
    if args.kind not in KINDS:
        raise _BadInput(f"--kind: expected one of {', '.join(KINDS)}, got {args.kind!r}")
    if args.kind != "lens":
        for name in _LENS_ONLY:
            if getattr(args, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise _BadInput(f"{flag}: applies to --kind lens only, not {args.kind!r}")
        if args.source_model != "sersic" or args.source_colour != "mixture":
            raise _BadInput(f"--source-*: apply to --kind lens only, not {args.kind!r}")
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
            raise _BadInput(f"--detectable: applies to --kind lens only, not {args.kind!r}")
        controls["detectable"] = True
    return controls


def _generated(args: argparse.Namespace, store: bool) -> str:
    """The line ``simlens generate`` prints: what it wrote, where (and a store's shards)."""
    from simlens.io.dataset import read_info
    from simlens.io.store import store_bytes

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


def _summary(path: Path) -> dict[str, Any]:
    import numpy as np

    from simlens.io.dataset import load, read_info

    info = read_info(path)
    ds = load(path, lazy=True)
    try:
        truth = ds.truth
    finally:
        ds.close()
    summary: dict[str, Any] = {"path": str(path), **info}
    if "kind" in truth.columns:
        summary["kinds"] = {str(k): int(v) for k, v in truth["kind"].value_counts().items()}
    if "label" in truth.columns:
        summary["labels"] = {str(k): int(v) for k, v in truth["label"].value_counts().items()}
    ranges = {}
    for name in truth.columns:
        col = truth[name]
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf" and col.notna().any():
            ranges[name] = [float(col.min()), float(col.max())]
    summary["ranges"] = ranges
    summary["bands"] = list(info["bands"])
    return summary


def _info(args: argparse.Namespace) -> int:
    s = _summary(args.path)
    if args.json:
        print(json.dumps(s, indent=2))
        return EXIT_OK
    meta = s["meta"]
    survey = meta.get("survey", {})
    survey_name = survey.get("name", "?") if isinstance(survey, dict) else survey
    lines = [
        f"{s['path']}: simlens set, format {s['format_version']}, {s['n']} images, "
        f"{s['npix']}x{s['npix']} px, bands {' '.join(s['bands'])}, survey {survey_name}",
        f"written {s['created_utc']} by {s['writer'].get('package')} {s['writer'].get('version')}"
        f", compression {s['compression']}",
    ]
    if "kinds" in s:
        lines.append("kinds: " + ", ".join(f"{k} {v}" for k, v in s["kinds"].items()))
    if "labels" in s:
        lines.append("labels: " + ", ".join(f"{k}: {v}" for k, v in s["labels"].items()))
    if s["ranges"]:
        lines.append("columns (min .. max):")
        width = max(len(name) for name in s["ranges"])
        lines += [f"  {k:<{width}}  {lo:.6g} .. {hi:.6g}" for k, (lo, hi) in s["ranges"].items()]
    lines.append("provenance:")
    lines += ["  " + line for line in json.dumps(meta, indent=2).splitlines()]
    print("\n".join(lines))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from simlens.io.dataset import load
    from simlens.io.plotting import contact_sheet

    ds = load(args.path, lazy=True)
    try:
        subset = ds[: min(args.n, len(ds))]
    finally:
        ds.close()
    if len(subset) == 0:
        raise _BadInput(f"path: {str(args.path)!r} holds no images")
    contact_sheet(subset, path=args.out, ncols=args.ncols)
    print(f"wrote a contact sheet of {len(subset)} images to {args.out}")
    return EXIT_OK


def _concat(args: argparse.Namespace) -> int:
    """``simlens concat``: several saved sets joined into one, streamed block by block."""
    import pandas as pd

    from simlens.io.dataset import DatasetWriter, load

    if args.out.resolve() in {p.resolve() for p in args.paths}:
        raise _BadInput("--out: must not be one of the input sets")
    sets = [load(p, lazy=True) for p in args.paths]
    try:
        first = sets[0]
        for path, ds in zip(args.paths, sets):
            if ds.bands != first.bands or ds.npix != first.npix:
                raise _BadInput(
                    f"{path}: bands {ds.bands} and {ds.npix} px differ from {args.paths[0]} "
                    f"({first.bands}, {first.npix} px)"
                )
        truth = pd.concat([ds.truth for ds in sets], ignore_index=True)
        meta = {"concat": [{"path": str(p), "meta": ds.meta} for p, ds in zip(args.paths, sets)]}
        compression = None if args.compression == "none" else args.compression
        offset = 0
        with DatasetWriter(
            args.out, first.npix, first.bands, meta, compression=compression
        ) as writer:
            for ds in sets:
                for start in range(0, len(ds), 256):
                    stop = min(start + 256, len(ds))
                    rows = truth.iloc[offset + start : offset + stop].reset_index(drop=True)
                    writer.append(ds.images[start:stop], rows)
                offset += len(ds)
    finally:
        for ds in sets:
            ds.close()
    print(f"wrote {len(truth)} images from {len(sets)} sets to {args.out}")
    return EXIT_OK


_TRUTH_SUFFIX = {"parquet": ".parquet", "fits": ".fits", "ecsv": ".ecsv"}


def _truth(args: argparse.Namespace) -> int:
    """``simlens truth``: the truth table as Parquet (pandas), FITS or ECSV (astropy)."""
    from simlens.io.dataset import atomic_path, load, read_info, truth_records

    info = read_info(args.path)
    ds = load(args.path, lazy=True)
    try:
        truth = ds.truth
    finally:
        ds.close()
    out = args.out or args.path.with_name(args.path.stem + ".truth" + _TRUTH_SUFFIX[args.format])
    provenance = {"set": str(args.path), "meta": info["meta"], "writer": info["writer"]}
    with atomic_path(out) as tmp:
        if args.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(truth, preserve_index=False)
            merged = {**(table.schema.metadata or {}), b"simlens": json.dumps(provenance).encode()}
            pq.write_table(table.replace_schema_metadata(merged), tmp)
        else:
            from astropy.table import Table

            # Record arrays keep every column's type (bytes strings, bools) for FITS readers.
            t = Table(truth_records(truth))
            if args.format == "ecsv":
                t = Table.from_pandas(truth)
            t.meta["simlens"] = json.dumps(provenance)
            t.write(tmp, format="fits" if args.format == "fits" else "ascii.ecsv", overwrite=True)
    print(f"wrote the truth of {info['n']} images ({len(truth.columns)} columns) to {out}")
    return EXIT_OK


def _fits(args: argparse.Namespace) -> int:
    from simlens.io.dataset import load
    from simlens.io.fits import to_fits

    ds = load(args.path, lazy=True)
    try:
        n = len(ds)
        if not -n <= args.index < n:
            raise _BadInput(f"--index: expected an integer in [{-n}, {n - 1}], got {args.index}")
        to_fits(ds[args.index], 0, args.out)
    finally:
        ds.close()
    print(f"wrote system {args.index} to {args.out}")
    return EXIT_OK


def _inject(args: argparse.Namespace) -> int:
    from simlens.io.dataset import Dataset
    from simlens.render.inject import read_cutouts

    sim = _simulator(args.survey, 100)
    cutouts, names = read_cutouts(args.cutouts, sim.bands)
    n, npix = len(cutouts), cutouts.shape[1]
    if npix != sim.npix:
        sim = _simulator(args.survey, npix)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``simlens`` command line; returns the exit code (:mod:`probe.cli_policy`)."""
    return run("simlens", _parser(), lambda args: int(args.func(args)), argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
