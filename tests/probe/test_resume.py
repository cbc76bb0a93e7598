"""`probe bin`/`sweep --resume` (issue 17): a run killed in its Nth chunk, resumed, writes the
tables an uninterrupted run writes; corrupt checkpoints are recomputed; checkpoints of another
configuration are refused, naming what differs. Sets come from the real `simlens generate`."""

from __future__ import annotations

import pandas as pd
import pytest

from probe import cli as probe_cli
from probe.sweeps import chunks
from tests.probe.conftest import _simlens_generate

MODEL = (
    "import numpy as np\n\n"
    "def model(x):\n"
    "    m = np.abs(np.asarray(x, dtype=np.float64).mean(axis=(1, 2, 3)))\n"
    "    return m / (m + 1.0)\n\n"
    "model.model_id = 'mean-x50-v1'\n\n"
    "def opaque(x):\n"
    "    return model(x)\n"
)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """140 lenses of 16 px in 3 shards of 64 (so 3 chunk tasks per pass)."""
    root = tmp_path_factory.mktemp("resume")
    args = ("--n", "140", "--npix", "16", "--no-neighbours", "--kind", "lens")
    return _simlens_generate(root / "s.zarr", *args, "--theta-E", "1:2.5", "--seed", "6",
                             "--chunk", "64")  # fmt: skip


@pytest.fixture
def model(tmp_path, monkeypatch):
    (tmp_path / "resumemodel.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "resumemodel:model"


def _count(monkeypatch, name, kill_at=None):
    """Wrap chunks.<name>, counting calls; raise Killed on call number ``kill_at``."""
    real = getattr(chunks, name)
    calls = []

    def wrapped(*a):
        calls.append(1)
        if kill_at is not None and len(calls) == kill_at:
            raise Killed(f"killed in chunk {kill_at}")
        return real(*a)

    monkeypatch.setattr(chunks, name, wrapped)
    return calls


def _run(argv, capsys):
    """Run the CLI; "killed" if it stopped at the simulated kill (exit 2 naming it)."""
    capsys.readouterr()
    rc = probe_cli.main(argv)
    return "killed" if rc == 2 and "Killed: killed in chunk" in capsys.readouterr().err else rc


def _tables_equal(a, b, stem):
    for name in (f"{stem}.parquet", f"{stem}_scores.parquet"):
        left = pd.read_parquet(a / name)
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, pd.read_parquet(b / name), check_exact=True)


def test_bin_resume_equals_uninterrupted(tmp_path, store, model, monkeypatch, capsys):
    argv = ["bin", "--model", model, "--data", str(store), "--by", "theta_E", "--bins", "4",
            "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert not (tmp_path / "a" / "checkpoints").exists()  # removed once the outputs are written

    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=3)
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    saved = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("*.npz"))
    assert len(saved) == 2  # chunks 1 and 2 finished before the kill
    assert not (tmp_path / "b" / "bin_theta_E.parquet").exists()

    with monkeypatch.context() as m:
        calls = _count(m, "baseline_task")
        assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == 1  # only the chunk the kill interrupted is recomputed
    _tables_equal(tmp_path / "a", tmp_path / "b", "bin_theta_E")


def test_sweep_resume_recomputes_corrupt_checkpoints(tmp_path, store, model, monkeypatch, capsys):
    argv = ["sweep", "--model", model, "--data", str(store), "--perturber", "noise",
            "--values", "0,0.002,0.01", "--seed", "3", "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    # 3 baseline chunks, then 2 noise values x 3 chunks: killed in the 5th sweep chunk.
    with monkeypatch.context() as m:
        _count(m, "sweep_task", kill_at=5)
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    ckpt = tmp_path / "b" / "checkpoints"
    sweeps = sorted(ckpt.glob("sweep-*.npz"))
    assert len(sweeps) == 4
    sweeps[0].write_bytes(sweeps[0].read_bytes()[:-20])  # truncated
    with monkeypatch.context() as m:
        base_calls = _count(m, "baseline_task")
        sweep_calls = _count(m, "sweep_task")
        assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert len(base_calls) == 0
    assert len(sweep_calls) == 3  # the corrupt one and the two never finished
    _tables_equal(tmp_path / "a", tmp_path / "b", "sweep_noise")


def test_resume_refuses_checkpoints_of_another_run(tmp_path, store, model, monkeypatch, capsys):
    argv = ["sweep", "--model", model, "--data", str(store), "--perturber", "noise",
            "--values", "0,0.01", "--quiet", "--plot", "none"]  # fmt: skip
    argv += ["--out", str(tmp_path / "b")]
    with monkeypatch.context() as m:
        _count(m, "sweep_task", kill_at=2)
        assert _run([*argv, "--seed", "3"], capsys) == "killed"
    capsys.readouterr()
    assert probe_cli.main([*argv, "--seed", "4", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "are of another run" in err
    assert "seed (checkpoints 3, this run 4)" in err
    assert (tmp_path / "b" / "checkpoints" / "key.json").exists()  # nothing lost
    # A model without a content identity cannot be resumed: refused, named.
    opaque = [a if a != model else "resumemodel:opaque" for a in argv]
    assert probe_cli.main([*opaque, "--seed", "3", "--resume"]) == 2
    assert "declares no identity" in capsys.readouterr().err
    # Without --resume, a new run says it discards the old checkpoints.
    assert probe_cli.main([*argv, "--seed", "4"]) == 0
    # 3 baseline chunks and 1 sweep chunk
    assert "discarding 4 chunk checkpoints of an earlier run" in capsys.readouterr().err


def test_data_identity_follows_the_contents(tmp_path, cli_zarr_sets):
    """The data part of the checkpoint key changes when a set's bytes do (HDF5: its sha256;
    .zarr: a shard's recorded sha256), so checkpoints of other data are never reused."""
    import json
    import shutil

    from probe.checkpoints import data_identity
    from tests.probe.conftest import copy_store

    h5 = shutil.copy(cli_zarr_sets["h5"], tmp_path / "s.h5")
    before = data_identity(h5)
    assert data_identity(cli_zarr_sets["h5"]) == before
    with open(h5, "r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    assert data_identity(h5) != before

    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "s.zarr")
    before = data_identity(store)
    record_file = store / "done" / "shard-00001.json"
    record = json.loads(record_file.read_text())
    record["files"]["images/c/1/0/0/0"]["sha256"] = "0" * 64
    record_file.write_text(json.dumps(record))
    assert data_identity(store) != before


def test_killed_serial_run_resumes_on_workers(tmp_path, store, model, monkeypatch, capsys):
    """Checkpoints are the same whoever computes them: a serial run killed in its 2nd sweep
    chunk finishes with --resume --workers 2 (the rest scored and saved on the workers)."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker processes import the model
    argv = ["sweep", "--model", model, "--data", str(store), "--perturber", "noise",
            "--values", "0.001,0.01", "--seed", "2", "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    with monkeypatch.context() as m:
        _count(m, "sweep_task", kill_at=2)
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    assert len(list((tmp_path / "b" / "checkpoints").glob("sweep-*.npz"))) == 1
    resumed = [*argv, "--resume", "--workers", "2", "--out", str(tmp_path / "b")]
    with monkeypatch.context() as m:
        from probe.checkpoints import Checkpoints

        m.setattr(Checkpoints, "discard", lambda self: None)  # keep them to count them
        assert probe_cli.main(resumed) == 0
    saved = list((tmp_path / "b" / "checkpoints").glob("*.npz"))
    assert len(saved) == 3 + 2 * 3  # every baseline and sweep chunk, the rest from workers
    _tables_equal(tmp_path / "a", tmp_path / "b", "sweep_noise")


def test_resim_resume_equals_uninterrupted(tmp_path, model, monkeypatch, capsys):
    """`probe resim` with the real simlens simulator: killed in its 3rd render chunk, resumed."""
    pytest.importorskip("simlens")
    argv = ["resim", "--model", model, "--survey", "des-sv", "--param", "psf_scale",
            "--values", "0.9,1.2", "--n", "70", "--n-nonlenses", "10", "--npix", "16",
            "--chunk-size", "64", "--seed", "5", "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    with monkeypatch.context() as m:
        _count(m, "render_task", kill_at=3)  # per value: lenses 64 + 6, non-lenses 10
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    assert len(list((tmp_path / "b" / "checkpoints").glob("resim-*.npz"))) == 2
    with monkeypatch.context() as m:
        calls = _count(m, "render_task")
        assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == 4
    _tables_equal(tmp_path / "a", tmp_path / "b", "resim_psf_scale")
    # Another simulator configuration (here --npix) is refused, named.
    with monkeypatch.context() as m:
        _count(m, "render_task", kill_at=2)
        assert _run([*argv, "--out", str(tmp_path / "c")], capsys) == "killed"
    other = [a if a != "16" else "20" for a in argv]
    assert probe_cli.main([*other, "--resume", "--out", str(tmp_path / "c")]) == 2
    assert "resim (checkpoints" in capsys.readouterr().err


def test_a_run_failing_before_its_first_chunk_leaves_no_checkpoints(
    tmp_path, store, model, monkeypatch, capsys
):
    argv = ["bin", "--model", model, "--data", str(store), "--by", "theta_E", "--quiet",
            "--plot", "none", "--out", str(tmp_path / "o")]  # fmt: skip
    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=1)
        assert _run(argv, capsys) == "killed"
    assert not (tmp_path / "o" / "checkpoints").exists()
