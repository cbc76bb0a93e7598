"""``simlens info`` and ``simlens show``: a saved set's summary and a contact sheet of it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from probe.cli_paths import output_file
from probe.cli_policy import BadInput, positive_int
from simlens.cli._common import EXIT_OK, WRITES_SET


def add_info(sub: Any) -> argparse.ArgumentParser:
    info = sub.add_parser(
        "info",
        help="summarise a saved set",
        description="Print a saved set's summary on stdout: size, bands, survey, writer, counts "
        "per kind and label, each numeric truth column's range and the provenance. Writes no "
        "file. Exit codes: 0 printed, 2 a missing or unreadable set.",
    )
    info.set_defaults(func=run_info)
    info.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    return info


def add_show(sub: Any) -> argparse.ArgumentParser:
    show = sub.add_parser(
        "show",
        help="contact sheet of colour composites (PNG)",
        description="Draw the first N images of a saved set as gri colour composites in a grid "
        "and write the sheet to a PNG file. " + WRITES_SET,
    )
    show.set_defaults(func=run_show)
    show.add_argument("path", type=Path, help="saved set (.h5 file or .zarr store)")
    show.add_argument("--out", type=output_file, required=True, help="output PNG")
    show.add_argument("--n", type=positive_int, default=16, help="images shown, first N (16)")
    show.add_argument("--ncols", type=positive_int, default=4, help="panels per row (4)")
    return show


def summary(path: Path) -> dict[str, Any]:
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


def run_info(args: argparse.Namespace) -> int:
    s = summary(args.path)
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


def run_show(args: argparse.Namespace) -> int:
    from simlens.io.dataset import load
    from simlens.io.plotting import contact_sheet

    ds = load(args.path, lazy=True)
    try:
        subset = ds[: min(args.n, len(ds))]
    finally:
        ds.close()
    if len(subset) == 0:
        raise BadInput(f"path: {str(args.path)!r} holds no images")
    contact_sheet(subset, path=args.out, ncols=args.ncols)
    print(f"wrote a contact sheet of {len(subset)} images to {args.out}")
    return EXIT_OK
