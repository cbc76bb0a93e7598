"""Regenerate the study's statements in README.md and docs/study.md from a study's output.

    python scripts/update_study_docs.py out/demo            # after ./scripts/demo
    python scripts/update_study_docs.py out/demo --check    # exit 1 if the docs are out of date

Copies ``OUT_DIR/table2.csv`` (and ``study.json``, the run's configuration) to
``docs/study/`` (the recorded table) and rewrites the block between the
``<!-- study-statements:start ... -->`` and ``<!-- study-statements:end -->`` markers of both
files with :func:`probe.paper.docs_block` of that table: the judged table and one bullet per
claim. Nothing in that block is written by hand; ``tests/probe/test_study_docs.py`` checks that
README and docs/study.md hold exactly what the recorded table generates. New experiments and
models (e.g. a finder C the paper never tested) appear as rows without claims.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from probe import paper

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path("docs/study")
DOCS = (Path("README.md"), Path("docs/study.md"))


def _write(path: Path, text: str) -> None:
    """Write via a temporary file and rename (nothing half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(directory: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """``table2.csv`` (checked for the columns the statements need) and ``study.json``."""
    csv = directory / "table2.csv"
    if not csv.is_file():
        raise SystemExit(f"error: {csv} not found (run ./scripts/demo or probe study first)")
    table = pd.read_csv(csv)
    missing = [c for c in paper.TABLE2_COLUMNS if c not in table.columns]
    if missing:
        raise SystemExit(
            f"error: {csv} lacks columns {', '.join(missing)}: written by an older probe? "
            "rerun the study"
        )
    meta = directory / "study.json"
    run = json.loads(meta.read_text()) if meta.is_file() else {}
    return table, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path, help="a study's output directory (holds table2.csv)")
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    args = ap.parse_args(argv)
    table, run = load(args.out_dir)
    block = paper.docs_block(table, run)
    stale = []
    for rel in DOCS:
        path = args.root / rel
        old = path.read_text(encoding="utf-8")
        try:
            new = paper.replace_docs_block(old, block, name=str(rel))
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        if new != old:
            stale.append(str(rel))
            if not args.check:
                _write(path, new)
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)}", file=sys.stderr)
            return 1
        print("README.md and docs/study.md match the table")
        return 0
    record = args.root / RECORD
    _write(record / "table2.csv", table.to_csv(index=False))
    if run:
        _write(record / "study.json", json.dumps(run, indent=2) + "\n")
    print(f"wrote {record / 'table2.csv'}; updated {', '.join(stale) or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
