"""``probe check``: the regression gate (does a candidate meet a suite of expectations?
:func:`probe.gate.run_gate`, docs/gate.md); writes report.html, report.json and junit.xml."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from probe.cli._common import MODEL_HELP, TRUST_HELP
from probe.cli_paths import output_dir
from probe.cli_policy import EXIT_FAILED, EXIT_OK, positive_int


def add_check(sub: Any) -> argparse.ArgumentParser:
    from probe.cluster import add_cluster_args

    c = sub.add_parser(
        "check",
        help="regression gate: does a candidate meet a suite of expectations? (docs/gate.md)",
        description="Test a candidate lens finder against the expectations of a suite (and a "
        "baseline model); write report.html, report.json and junit.xml. Exit status: 0 all "
        "expectations hold, 1 one or more fail, 2 bad input.",
    )
    c.set_defaults(func=run_check, before_cluster=refuse_existing_report)
    c.add_argument("--model", required=True, help=f"candidate: {MODEL_HELP}")
    c.add_argument("--baseline", help="baseline model (needed by no_regression expectations)")
    c.add_argument(
        "--allow-same-model",
        action="store_true",
        help="allow a candidate whose content digest equals the baseline's",
    )
    c.add_argument("--suite", required=True, help="suite TOML file, or 'default'")
    c.add_argument("--out", required=True, type=output_dir, help="report directory")
    c.add_argument("--seed", type=int, help="root seed (default: the suite's)")
    c.add_argument(
        "--data",
        help="saved HDF5 set or .zarr store used by every expectation instead of simulating",
    )
    cache = c.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        type=Path,
        help="cache directory (default $PROBE_CACHE_DIR or ~/.cache/probe)",
    )
    cache.add_argument("--no-cache", action="store_true", help="simulate and run the baseline")
    c.add_argument(
        "--resume", action="store_true",
        help="finish a killed check: reuse the per-unit scores it kept under OUT/checkpoints "
        "(same models, suite, seed and data required; another is refused, naming what "
        "differs); sets and baseline scores come from the cache as on any rerun "
        "(docs/scale.md)",
    )  # fmt: skip
    c.add_argument(
        "--batch-size", type=positive_int, default=256, help="images per model call (256)"
    )
    c.add_argument("--trust-model-code", action="store_true", help=TRUST_HELP)
    add_cluster_args(c)
    return c


def run_check(args: argparse.Namespace) -> int:
    """``probe check``: 0 when every expectation holds, 1 when one fails; errors raise."""
    from probe.cache import default_cache_dir
    from probe.gating.run import run_gate

    refuse_existing_report(args)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    log = None if args.quiet else (lambda line: print(line, flush=True))
    # Errors (a suite error, a missing or unreadable file or model, a simulator rejecting the
    # suite's controls) propagate: the policy turns them into exit 2 with one line.
    result = run_gate(
        args.model,
        args.suite,
        baseline=args.baseline,
        cache_dir=cache_dir,
        seed=args.seed,
        data=args.data,
        batch_size=args.batch_size,
        log=log,
        allow_same_model=args.allow_same_model,
        trust_code=args.trust_model_code,
        client=args.client,
        chunk_size=args.chunk_size,
        checkpoint_dir=args.out / "checkpoints",
        resume=args.resume,
    )
    written = result.write(args.out)
    print(result.summary())
    for path in written.values():
        print(f"wrote {path}")
    from probe.checkpoints import discard_dir

    discard_dir(args.out / "checkpoints")  # the reports are written: nothing left to resume
    return EXIT_OK if result.passed else EXIT_FAILED


def refuse_existing_report(args: argparse.Namespace) -> None:
    """Without --overwrite, refuse an OUT that already has reports (before running the gate,
    and before a cluster opens)."""
    if not args.overwrite:  # refuse before running the gate, not after
        from probe.gating.report import REPORT_FILES
        from probe.safe_io import OutputExistsError

        existing = [name for name in REPORT_FILES if (args.out / name).exists()]
        if existing:
            raise OutputExistsError(
                f"--out: {args.out} already has {', '.join(existing)}; pass --overwrite to "
                "replace them"
            )
