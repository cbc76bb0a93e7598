"""``simlens concat``, ``truth`` and ``fits``: saved sets joined, their truth tables and single
systems written for other tools."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from probe.cli_paths import output_file
from probe.cli_policy import BadInput
from simlens.cli._common import EXIT_OK, WRITES_SET, add_compression_arg


def add_concat(sub: Any) -> argparse.ArgumentParser:
    cat = sub.add_parser(
        "concat",
        help="join saved sets into one (e.g. lenses + non-lenses)",
        description="Write the images and truth of several saved sets, in order, to one HDF5 set "
        "(same image size and bands; truth columns missing from a set are left missing; the "
        "provenance lists each input's). Streams block by block: the sets need not fit in "
        "memory. " + WRITES_SET,
    )
    cat.set_defaults(func=run_concat)
    cat.add_argument("paths", type=Path, nargs="+", help="input .h5 sets, in order")
    cat.add_argument("--out", type=output_file, required=True, help="output .h5 set")
    add_compression_arg(cat)
    return cat


def add_truth(sub: Any) -> argparse.ArgumentParser:
    tr = sub.add_parser(
        "truth",
        help="export a set's truth table (parquet, fits, ecsv)",
        description="Write the truth table of a saved set to a file that pandas, astropy and "
        "TOPCAT read: Parquet, a FITS binary table or ECSV, with the set's provenance in the "
        "table metadata (key 'simlens'). " + WRITES_SET,
    )
    tr.set_defaults(func=run_truth)
    tr.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    tr.add_argument(
        "--format",
        choices=("parquet", "fits", "ecsv"),
        default="parquet",
        help="table format (parquet)",
    )
    tr.add_argument("--out", type=output_file, help="output file (default: SET.truth.<format>)")
    return tr


def add_fits(sub: Any) -> argparse.ArgumentParser:
    fits = sub.add_parser(
        "fits",
        help="export one system to multi-extension FITS",
        description="Write one image of a saved set to a multi-extension FITS file: one image "
        "HDU per band (counts; WCS, zero point and PSF FWHM in its header) and the system's "
        "truth row. " + WRITES_SET,
    )
    fits.set_defaults(func=run_fits)
    fits.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    fits.add_argument("--index", type=int, default=0, help="row of the system (0)")
    fits.add_argument("--out", type=output_file, required=True, help="output .fits file")
    return fits


def run_concat(args: argparse.Namespace) -> int:
    """``simlens concat``: several saved sets joined into one, streamed block by block."""
    import pandas as pd

    from simlens.io.dataset import load
    from simlens.io.writer import DatasetWriter

    if args.out.resolve() in {p.resolve() for p in args.paths}:
        raise BadInput("--out: must not be one of the input sets")
    sets = [load(p, lazy=True) for p in args.paths]
    try:
        first = sets[0]
        for path, ds in zip(args.paths, sets):
            if ds.bands != first.bands or ds.npix != first.npix:
                raise BadInput(
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


TRUTH_SUFFIX = {"parquet": ".parquet", "fits": ".fits", "ecsv": ".ecsv"}


def run_truth(args: argparse.Namespace) -> int:
    """``simlens truth``: the truth table as Parquet (pandas), FITS or ECSV (astropy)."""
    from simlens.io.atomic import atomic_path
    from simlens.io.dataset import load, read_info
    from simlens.io.h5format import truth_records

    info = read_info(args.path)
    ds = load(args.path, lazy=True)
    try:
        truth = ds.truth
    finally:
        ds.close()
    out = args.out or args.path.with_name(args.path.stem + ".truth" + TRUTH_SUFFIX[args.format])
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


def run_fits(args: argparse.Namespace) -> int:
    from simlens.io.dataset import load
    from simlens.io.fits import to_fits

    ds = load(args.path, lazy=True)
    try:
        n = len(ds)
        if not -n <= args.index < n:
            raise BadInput(f"--index: expected an integer in [{-n}, {n - 1}], got {args.index}")
        to_fits(ds[args.index], 0, args.out)
    finally:
        ds.close()
    print(f"wrote system {args.index} to {args.out}")
    return EXIT_OK
