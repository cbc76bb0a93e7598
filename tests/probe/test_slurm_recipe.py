"""The SLURM recipe (scripts/slurm_selection.py): its job script asks for what was requested."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("dask_jobqueue")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm_selection.py"


def _script():
    spec = importlib.util.spec_from_file_location("slurm_selection", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_script_has_requested_resources_and_worker_command():
    script = _script()
    args = script.parser().parse_args(
        ["--account", "lens_search", "--queue", "cpu", "--cores", "8", "--memory", "32GB",
         "--walltime", "03:30:00"]
    )  # fmt: skip
    cluster = script.make_cluster(args)  # built, not submitted: no sbatch is run
    try:
        text = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -A lens_search" in text
    assert "#SBATCH -p cpu" in text
    assert "#SBATCH --cpus-per-task=8" in text
    assert "#SBATCH -t 03:30:00" in text
    assert "#SBATCH --mem=30G" in text  # dask-jobqueue writes 32 GB as 30 GiB
    assert "distributed.cli.dask_worker" in text
    # One single-threaded worker per core: scores do not depend on threads.
    assert "--nthreads 1" in text
    assert "--nworkers 8" in text


def test_dry_run_prints_job_script(capsys):
    assert _script().main(["--account", "a", "--dry-run"]) == 0
    assert "#SBATCH -A a" in capsys.readouterr().out


def test_run_writes_three_selection_functions(tmp_path, monkeypatch):
    """run() end to end on a one-worker LocalCluster in place of SLURM (same code path)."""
    import numpy as np
    import pandas as pd
    from distributed import LocalCluster

    from probe import read_metadata
    from tests.probe.test_dask import make_set, write_zarr

    (tmp_path / "recipemodel.py").write_text(
        "import numpy as np\n\ndef model(x):\n    return np.clip(x.mean(axis=(1, 2, 3)), 0, 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    images, truth = make_set(n=130)
    truth["mag_lens_r"] = np.linspace(17, 21, 130)
    write_zarr(tmp_path / "l.zarr", images, truth, shard_size=64)
    script = _script()
    args = script.parser().parse_args(
        ["--account", "a", "--data", str(tmp_path / "l.zarr"), "--model", "recipemodel:model",
         "--out", str(tmp_path / "sel"), "--bins", "3", "--chunk-size", "64"]
    )  # fmt: skip

    class OneMachine(LocalCluster):  # run() scales by SLURM jobs: ignored here
        def scale(self, n=0, jobs=None, **kwargs):
            return None if jobs is not None else super().scale(n, **kwargs)

    with OneMachine(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        assert script.run(args, cluster) == 0
    for name in ("theta_E", "mag_source_g", "mag_lens_r"):
        path = tmp_path / "sel" / f"selection_{name}.parquet"
        table = pd.read_parquet(path)
        assert len(table) > 0
        assert read_metadata(path)["provenance"]["data"] == str(tmp_path / "l.zarr")
