#!/usr/bin/env python
"""Survey-scale runs: `simlens generate` into a .zarr store on Dask, and `probe bin` over it.

Whole runs, each in a child process (so start-up, imports and cluster launch count), timed by
wall clock, with the peak resident memory of the whole process tree (the driver with Dask's
scheduler and nannies, and the worker processes), sampled every 0.1 s: the sum of their PSS
(proportional set size, /proc/PID/smaps_rollup: a page shared by k processes, such as the code of
numpy or lenstronomy mapped by every worker, counts 1/k in each, so the sum is the memory the run
holds) and, for reference, the sum of their RSS (which counts shared pages once per process):

1. generation of ``--n`` lenses (100x100 griz, des-y3 defaults) into ``.zarr`` with
   ``--workers 1`` (the in-process path) and ``--workers 2`` (a LocalCluster): speed-up.
   In-process, numpy/scipy's OpenBLAS and galsim's OpenMP already run threads on every core
   (a chunk takes ~16% longer with one thread), while each Dask worker runs them on one
   (Dask's default OMP/OPENBLAS/MKL_NUM_THREADS=1): so ``--workers 1`` is also run pinned to
   one core with one such thread (``taskset -c 0``), the share of the machine one worker gets;
2. the same chunk function (:func:`simlens.scale.chunks.shard_task`, the same shards of
   the same store) run by a plain ``concurrent.futures.ProcessPoolExecutor`` of 2 processes: Dask's
   overhead = (Dask wall - pool wall) / pool wall (target <= 10%). The pool is Python's default
   (fork on Linux: its processes inherit the driver's imports and simulator), Dask's workers are
   spawned and import and build their own, so the fixed cost (~20-30 s on a loaded 2-core VM,
   cluster start, worker warm-up and close) counts against Dask: it matters at small N only;
3. generation of ``--n-large`` lenses with 2 workers: peak memory flat in N (target within
   20% of the ``--n`` run, both under 1.5 GB);
4. store size per image against the uncompressed float32 size (lossless Blosc-zstd);
5. ``probe bin`` of finder A (ONNX) by theta_E over the store with ``--workers 1`` and ``2``,
   and with ``--workers 1`` pinned to one core with one thread: in-process, onnxruntime
   already spreads each batch over every core, so the speed-up of 2 workers is measured
   against one core as well as against the in-process default.

The store of every run is compared with the first, array by array (the bench also checks
that workers and the pool change nothing). Run on an otherwise idle machine::

    python scripts/bench_scale.py                 # 20,000 and 100,000 lenses: hours on 2 cores
    python scripts/bench_scale.py --quick         # 48 and 96 lenses: a smoke test (minutes)
    python scripts/bench_scale.py --keep DIR --probe-only   # stage 5 again, over DIR/w2.zarr
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 2026


class Peak(NamedTuple):
    """Peak memory of a process tree (bytes): sum of PSS, sum of RSS."""

    pss: int
    rss: int

    def __str__(self) -> str:
        return f"peak PSS {self.pss / 1e6:6.0f} MB (RSS {self.rss / 1e6:5.0f})"


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_memory(proc: Any) -> tuple[int, int]:
    pss = rss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss += p.memory_info().rss
            pss += _pss(p.pid) or p.memory_info().rss  # no smaps_rollup: RSS
        except Exception:  # a child that just exited
            continue
    return pss, rss


def run_measured(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[float, Peak, subprocess.CompletedProcess]:
    """Wall seconds and peak tree memory of ``cmd`` run to completion (``env``: added to
    this process's environment)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    peak = Peak(0, 0)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                pss, rss = _tree_memory(root)
                peak = Peak(max(peak.pss, pss), max(peak.rss, rss))
            except psutil.NoSuchProcess:
                return
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, peak, done


#: What a Dask worker of ours runs with (the nanny's defaults): one thread for BLAS and OpenMP.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def one_core(cmd: list[str]) -> list[str]:
    """``cmd`` pinned to CPU 0."""
    return ["taskset", "-c", "0", *cmd]


def generate_cmd(out: Path, n: int, workers: int, chunk: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simlens.cli",
        "generate",
        "--n",
        str(n),
        "--seed",
        str(SEED),
        "--chunk",
        str(chunk),
        "--workers",
        str(workers),
        "--quiet",
        "--out",
        str(out),
    ]


def pool_main(out: str, n: int, workers: int, chunk: int) -> None:
    """The plain-pool reference: the same store, the same shard function, no Dask."""
    from simlens.io.store import create_store, finish_store
    from simlens.scale.chunks import (
        ChunkSpec,
        resume_fingerprint,
        sample_rows,
        shard_task,
        spec_simulator,
    )
    from simlens.simulator import jsonable_controls

    controls = {"psf_scale": 1.0}
    spec = ChunkSpec(
        path=out,
        n=n,
        kind="lens",
        survey="des-y3",
        npix=100,
        seed=SEED,
        chunk=chunk,
        noise=True,
        controls=controls,
    )
    sim = spec_simulator(spec)
    columns = list(sample_rows(spec, 0, 1).columns)
    meta = sim.provenance(
        seed=SEED, kind="lens", controls=jsonable_controls(controls), noise=True, n=n
    )
    create_store(
        out,
        n=n,
        npix=100,
        bands=sim.bands,
        shard_size=chunk,
        columns=columns,
        provenance=meta,
        fingerprint=resume_fingerprint(meta, chunk),
    )
    n_shards = -(-n // chunk)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(shard_task, [spec] * n_shards, [False] * n_shards, range(n_shards)))
    finish_store(out)


def same_store(a: Path, b: Path) -> bool:
    import simlens

    x, y = simlens.load(a), simlens.load(b)
    for start in range(0, len(x), 256):
        u = np.asarray(x.images[start : start + 256]).view(np.uint32)
        v = np.asarray(y.images[start : start + 256]).view(np.uint32)
        if not np.array_equal(u, v):
            return False
    return bool(x.truth.equals(y.truth))


def probe_has_workers() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "bin", "--help"], capture_output=True, text=True
    )
    return "--workers" in done.stdout


def probe_stage(folder: Path, n: int, report: Callable[[str, str], None]) -> None:
    """`probe bin` over ``folder/w2.zarr`` with 1 worker, 1 worker on one core, and 2 workers."""
    if not probe_has_workers():
        print("  probe bin --workers: not in this probe yet; probe stage skipped")
        return
    model = ROOT / "simlens" / "finders" / "weights" / "A.onnx"
    bins: dict[tuple[int, bool], float] = {}
    for label, workers, pin in (("", 1, False), (", one core", 1, True), ("", 2, False)):
        out = folder / f"bin{workers}{'p' if pin else ''}"
        # A result folder of an earlier run holds checkpoints that would be reused.
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            sys.executable, "-m", "probe.cli", "bin", "--model", str(model),
            "--data", str(folder / "w2.zarr"), "--by", "theta_E", "--bins", "5",
            "--plot", "none", "--quiet", "--workers", str(workers), "--out", str(out),
        ]  # fmt: skip
        wall, peak, _ = run_measured(one_core(cmd) if pin else cmd, env=ONE_THREAD if pin else None)
        bins[(workers, pin)] = wall
        report(
            f"probe bin over {n}, --workers {workers}{label}",
            f"{wall:8.1f} s  {n / wall:7.1f} img/s  {peak}",
        )
    speedup = bins[(1, True)] / bins[(2, False)]
    report("probe bin speed-up, 2 workers vs one core", f"{speedup:.2f}x")
    speedup = bins[(1, False)] / bins[(2, False)]
    report("probe bin speed-up, 2 workers vs in-process", f"{speedup:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="lenses of the main runs (20000)")
    ap.add_argument("--n-large", type=int, default=100_000, help="lenses of the memory run")
    ap.add_argument("--chunk", type=int, default=256, help="lenses per shard (256)")
    ap.add_argument("--quick", action="store_true", help="48 / 96 lenses, chunk 8: a smoke test")
    ap.add_argument("--keep", type=Path, help="write the stores here (default: a temp dir)")
    ap.add_argument(
        "--probe-only",
        action="store_true",
        help="only the probe stage, over KEEP/w2.zarr of an earlier --keep run",
    )
    ap.add_argument(
        "--pool-run", nargs=4, metavar=("OUT", "N", "W", "CHUNK"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    if args.pool_run:
        out, n, w, c = args.pool_run
        pool_main(out, int(n), int(w), int(c))
        return 0
    if args.quick:
        args.n, args.n_large, args.chunk = 48, 96, 8
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []

    def report(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"  {name:<52} {value}", flush=True)

    print(
        f"bench_scale: n={args.n}, n_large={args.n_large}, chunk={args.chunk}, "
        f"cores={os.cpu_count()}, stores in {folder}"
    )
    if args.probe_only:
        store = folder / "w2.zarr"
        if args.keep is None or not (store / "manifest.json").is_file():
            ap.error("--probe-only needs --keep FOLDER holding w2.zarr from an earlier --keep run")
        n = int(json.loads((store / "manifest.json").read_text())["n"])
        probe_stage(folder, n, report)
        return 0
    runs: dict[str, tuple[float, Peak]] = {}
    for name, workers, pin in (("w1", 1, False), ("w1c", 1, True), ("w2", 2, False)):
        cmd = generate_cmd(folder / f"{name}.zarr", args.n, workers, args.chunk)
        wall, peak, _ = run_measured(one_core(cmd) if pin else cmd, env=ONE_THREAD if pin else None)
        runs[name] = (wall, peak)
        report(
            f"generate {args.n} -> .zarr, --workers {workers}{', one core' if pin else ''}",
            f"{wall:8.1f} s  {args.n / wall:7.1f} img/s  {peak}",
        )
    pool_cmd = [
        sys.executable,
        __file__,
        "--pool-run",
        str(folder / "pool.zarr"),
        str(args.n),
        "2",
        str(args.chunk),
    ]
    wall, peak, _ = run_measured(pool_cmd)
    runs["pool"] = (wall, peak)
    report(
        f"generate {args.n} -> .zarr, ProcessPoolExecutor(2)",
        f"{wall:8.1f} s  {args.n / wall:7.1f} img/s  {peak}",
    )
    wall, peak, _ = run_measured(generate_cmd(folder / "large.zarr", args.n_large, 2, args.chunk))
    runs["large"] = (wall, peak)
    report(
        f"generate {args.n_large} -> .zarr, --workers 2",
        f"{wall:8.1f} s  {args.n_large / wall:7.1f} img/s  {peak}",
    )

    speedup = runs["w1"][0] / runs["w2"][0]
    speedup_core = runs["w1c"][0] / runs["w2"][0]
    overhead = (runs["w2"][0] - runs["pool"][0]) / runs["pool"][0]
    mem_ratio = runs["large"][1].pss / runs["w2"][1].pss
    report("speed-up, 2 workers vs 1 (target >= 1.8)", f"{speedup:.2f}x")
    report("speed-up, 2 workers vs 1 on one core, one thread", f"{speedup_core:.2f}x")
    report("Dask overhead vs ProcessPoolExecutor (target <= 10%)", f"{100 * overhead:+.1f}%")
    report(f"peak PSS {args.n_large} / {args.n} lenses (target within 20%)", f"{mem_ratio:.2f}")
    from simlens.io.store_reader import store_bytes

    sizes = store_bytes(folder / "w2.zarr")
    raw = args.n * 100 * 100 * 4 * 4
    report("store images / uncompressed float32", f"{sizes['images'] / raw:.3f}")
    report(
        "store bytes per image (images + truth)",
        f"{sizes['total'] / args.n / 1e3:.1f} kB (float32: {raw / args.n / 1e3:.1f} kB)",
    )
    others = ("w1c", "w2", "pool")
    identical = all(same_store(folder / "w1.zarr", folder / f"{k}.zarr") for k in others)
    report("stores identical (workers 1, 1 on one core, 2, pool)", str(identical))

    probe_stage(folder, args.n, report)
    if args.quick:
        print("(--quick: a smoke test; the figures mean nothing at this size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
