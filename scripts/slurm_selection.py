#!/usr/bin/env python
"""A lens finder's selection function over 10^6 lenses on a SLURM cluster (dask-jobqueue).

Starts a ``dask_jobqueue.SLURMCluster`` (one SLURM job per ``--jobs``, each running
``--processes`` single-threaded Dask workers on ``--cores`` cores), scores every lens of a
saved set with the model (re-opened from its file on every worker), and writes the
completeness against each of three truth parameters, one Parquet table per parameter.

The lenses come from a sharded ``.zarr`` set, e.g. made on the same cluster with
``simlens generate --n 1000000 --out lenses.zarr --scheduler ADDRESS``; every worker reads its
own shards, so no image passes through the scheduler. Results equal a serial run's.

    python scripts/slurm_selection.py --data lenses.zarr --model finder.keras \\
        --account my_project --queue cpu --cores 16 --memory 64GB --walltime 02:00:00 \\
        --jobs 8 --out selection/

``--dry-run`` prints the SLURM job script and exits without submitting anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_PARAMS = "theta_E,mag_source_g,mag_lens_r"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="lens set (.zarr store, or HDF5) with the truth columns")
    p.add_argument("--model", help="model file (.keras, .onnx, .pt, ...) or module:callable")
    p.add_argument("--params", default=DEFAULT_PARAMS, help="three truth columns, a,b,c")
    p.add_argument("--bins", type=int, default=12, help="bins per parameter")
    p.add_argument("--thresholds", default="0.5,0.9,0.99", help="score thresholds, a,b,c")
    p.add_argument("--out", type=Path, default=Path("selection"), help="output directory")
    p.add_argument("--account", required=True, help="SLURM account (-A)")
    p.add_argument("--queue", default=None, help="SLURM partition (-p)")
    p.add_argument("--cores", type=int, default=16, help="cores per SLURM job")
    p.add_argument("--processes", type=int, default=None, help="workers per job (= cores)")
    p.add_argument("--memory", default="64GB", help="memory per SLURM job")
    p.add_argument("--walltime", default="02:00:00", help="walltime per SLURM job")
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs to start")
    p.add_argument("--batch-size", type=int, default=256, help="images per model call")
    p.add_argument("--chunk-size", type=int, default=4096, help="images per Dask task")
    p.add_argument("--dry-run", action="store_true", help="print the job script; submit nothing")
    return p


def make_cluster(args: argparse.Namespace) -> Any:
    """The SLURMCluster of ``args`` (built only: nothing is submitted until ``scale``)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        cores=args.cores,
        processes=args.processes or args.cores,  # one single-threaded worker per core
        memory=args.memory,
        walltime=args.walltime,
        account=args.account,
        queue=args.queue,
        scheduler_options={"dashboard_address": ":8787"},
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cluster = make_cluster(args)
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        if not args.data or not args.model:
            raise SystemExit("--data and --model are required (unless --dry-run)")
        return run(args, cluster)
    finally:
        cluster.close()


def run(args: argparse.Namespace, cluster: Any) -> int:
    import numpy as np
    from distributed import Client

    from probe import Probe
    from probe.adapters.datasets import load_set
    from probe.selection import selection_function

    params = [s.strip() for s in args.params.split(",")]
    thresholds = [float(t) for t in args.thresholds.split(",")]
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client:
        print(f"dashboard: {client.dashboard_link}", flush=True)
        with load_set(args.data) as ds:
            missing = [c for c in params if c not in ds.truth.columns]
            if missing:
                raise SystemExit(f"--params: {missing} are not truth columns of {args.data}")
            probe = Probe(
                args.model,  # a path: re-opened on every worker
                batch_size=args.batch_size,
                chunk_size=args.chunk_size,
                client=client,
                progress=True,
            )
            p_lens = probe.predict(ds.images)
            labels = np.asarray(ds.labels)
            args.out.mkdir(parents=True, exist_ok=True)
            for name in params:
                sf = selection_function(
                    p_lens, labels, ds.truth[name].to_numpy(dtype=float), bins=args.bins,
                    thresholds=thresholds, name=name,
                    provenance={"model": str(args.model), "data": str(args.data)},
                )  # fmt: skip
                path = sf.save(args.out / f"selection_{name}.parquet")
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
