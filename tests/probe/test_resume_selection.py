"""`probe selection --resume` and `probe yield --resume` (issue 17): a run killed (SIGKILL, or
an exception in its Nth chunk) and resumed writes the tables an uninterrupted run writes,
saying how many chunks it reused; corrupt chunk files are recomputed; checkpoints of another
seed or --n are refused, naming the key entry. Sets come from the real `simlens generate`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from probe import cli as probe_cli
from tests.probe.conftest import _simlens_generate
from tests.probe.test_resume import _count, _run

# The same source and model_id whether it sleeps or not, so a slowed subprocess and a fast
# in-process run share one model identity (and one checkpoint key).
MODEL = (
    "import os\nimport time\n\nimport numpy as np\n\n"
    "def model(x):\n"
    "    time.sleep(float(os.environ.get('RESUMESEL_SLEEP', '0')))\n"
    "    m = np.abs(np.asarray(x, dtype=np.float64).mean(axis=(1, 2, 3)))\n"
    "    return m / (m + 1.0)\n\n"
    "model.model_id = 'resumesel-v1'\n"
)
SELECTION = ("selection_theta_E.parquet", "selection_theta_E_scores.parquet",
             "selection_theta_E_x50.parquet")  # fmt: skip
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """140 lenses of 16 px in 3 shards of 64: 3 chunk tasks."""
    root = tmp_path_factory.mktemp("resume_selection")
    args = ("--n", "140", "--npix", "16", "--no-neighbours", "--kind", "lens")
    return _simlens_generate(root / "s.zarr", *args, "--theta-E", "1:2.5", "--seed", "6",
                             "--chunk", "64")  # fmt: skip


@pytest.fixture
def model(tmp_path, monkeypatch):
    (tmp_path / "resumesel.py").write_text(MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "resumesel:model"
    sys.modules.pop("resumesel", None)


def _same(a: Path, b: Path, names: tuple[str, ...]) -> None:
    for name in names:
        left = pd.read_parquet(a / name)
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, pd.read_parquet(b / name), check_exact=True)


def _reused(err: str) -> int:
    match = re.search(r"resume: (\d+) chunk\(s\) reused from the checkpoints", err)
    assert match, err
    return int(match.group(1))


def test_selection_killed_by_sigkill_resumes(tmp_path, store, model, capsys):
    """A `probe selection --data` process killed with SIGKILL once chunk files exist: the
    resumed run reuses them (and says how many) and writes the uninterrupted run's tables."""
    argv = ["selection", "--model", model, "--data", str(store), "--param", "theta_E",
            "--bins", "3", "--thresholds", "0.5,0.9", "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert not (tmp_path / "a" / "checkpoints").exists()

    ckpt = tmp_path / "b" / "checkpoints"
    env = {**os.environ, "RESUMESEL_SLEEP": "1.5",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}  # fmt: skip
    cmd = [sys.executable, "-m", "probe.cli", *argv, "--out", str(tmp_path / "b")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(ckpt.glob("data-baseline-*.npz")):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no chunk checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    saved = len(list(ckpt.glob("data-baseline-*.npz")))
    assert 1 <= saved < 3  # killed mid-run: some chunks, not all
    assert not (tmp_path / "b" / SELECTION[0]).exists()

    capsys.readouterr()
    assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert _reused(capsys.readouterr().err) == saved
    assert not ckpt.exists()  # the outputs are written: nothing left to resume
    _same(tmp_path / "a", tmp_path / "b", SELECTION)


def test_selection_data_resume_recomputes_corrupt_chunks(
    tmp_path, store, model, monkeypatch, capsys
):
    argv = ["selection", "--model", model, "--data", str(store), "--param", "theta_E",
            "--bins", "3", "--thresholds", "0.5", "--quiet", "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=3)
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    saved = sorted((tmp_path / "b" / "checkpoints").glob("data-baseline-*.npz"))
    assert len(saved) == 2
    saved[0].write_bytes(saved[0].read_bytes()[:-20])  # truncated
    with monkeypatch.context() as m:
        calls = _count(m, "baseline_task")
        assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == 2  # the corrupt chunk and the one the kill interrupted
    assert _reused(capsys.readouterr().err) == 1
    _same(tmp_path / "a", tmp_path / "b", SELECTION)
    # Thresholds do not change a score: a resume with others reuses the chunks.
    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=2)
        assert _run([*argv, "--out", str(tmp_path / "c")], capsys) == "killed"
    other = [a if a != "0.5" else "0.7" for a in argv]
    with monkeypatch.context() as m:
        calls = _count(m, "baseline_task")
        assert probe_cli.main([*other, "--resume", "--out", str(tmp_path / "c")]) == 0
    assert len(calls) == 2


@pytest.mark.slow
def test_selection_simulated_resume_and_refusals(tmp_path, model, monkeypatch, capsys):
    """`probe selection --survey` (simlens): killed in its 3rd chunk, resumed to the
    uninterrupted tables; a resume with another --seed or --n is refused, named."""
    pytest.importorskip("simlens")
    argv = ["selection", "--model", model, "--survey", "des-sv", "--param", "theta_E",
            "--n", "140", "--n-nonlenses", "10", "--npix", "16", "--chunk-size", "64",
            "--bins", "3", "--thresholds", "0.5", "--fpr", "0.1", "--quiet",
            "--plot", "none"]  # fmt: skip
    assert probe_cli.main([*argv, "--seed", "5", "--out", str(tmp_path / "a")]) == 0
    b = ["--out", str(tmp_path / "b")]
    with monkeypatch.context() as m:
        _count(m, "render_task", kill_at=3)  # lenses 64 + 64 + 12, non-lenses 10
        assert _run([*argv, "--seed", "5", *b], capsys) == "killed"
    ckpt = tmp_path / "b" / "checkpoints"
    assert len(list(ckpt.glob("lenses-*.npz"))) == 2

    assert probe_cli.main([*argv, "--seed", "6", "--resume", *b]) == 2
    assert "seed (checkpoints 5, this run 6)" in capsys.readouterr().err
    more = [a if a != "140" else "150" for a in argv]
    assert probe_cli.main([*more, "--seed", "5", "--resume", *b]) == 2
    assert "differs: n (checkpoints 140, this run 150)" in capsys.readouterr().err
    assert len(list(ckpt.glob("lenses-*.npz"))) == 2  # refusals lose nothing

    with monkeypatch.context() as m:
        calls = _count(m, "render_task")
        assert probe_cli.main([*argv, "--seed", "5", "--resume", *b]) == 0
    assert len(calls) == 2  # the lenses' last chunk and the non-lenses (rendered and scored)
    assert _reused(capsys.readouterr().err) == 2
    _same(tmp_path / "a", tmp_path / "b", SELECTION)


@pytest.mark.slow
def test_yield_resume_equals_uninterrupted(tmp_path, model, monkeypatch, capsys):
    """`probe yield --out`: killed while scoring its second stratum, resumed; yield.json's
    numbers equal the uninterrupted run's. Without --out there is nothing to resume into."""
    import json

    pytest.importorskip("simlens")
    argv = ["yield", "--model", model, "--survey", "des-y3", "--threshold", "0.5,0.9",
            "--n-other", "4", "--n-density", "1024", "--npix", "64", "--quiet"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=2)  # the detectable stratum, then the others
        assert _run([*argv, "--out", str(tmp_path / "b")], capsys) == "killed"
    assert len(list((tmp_path / "b" / "checkpoints").glob("images-*.npz"))) == 1
    with monkeypatch.context() as m:
        calls = _count(m, "baseline_task")
        assert probe_cli.main([*argv, "--resume", "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == 1
    assert _reused(capsys.readouterr().err) == 1

    def numbers(path: Path) -> dict:
        doc = json.loads(path.read_text())
        return {k: doc[k] for k in ("sky", "yields", "detectable_found")}

    assert numbers(tmp_path / "a" / "yield.json") == numbers(tmp_path / "b" / "yield.json")
    assert probe_cli.main([*argv, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err


# -- probe check --resume ---------------------------------------------------------------------
def ring_v1(images):
    """test_gate's ring finder, declaring an identity (so its units can be checkpointed)."""
    from tests.probe.test_gate import ring_model

    return ring_model(images)


def ring_v0(images):
    from tests.probe.test_gate import ring_model

    return ring_model(images)


ring_v1.model_id = "ring-v1"  # type: ignore[attr-defined]
ring_v0.model_id = "ring-v0"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_check_resume_reuses_units_and_gives_the_same_verdicts(tmp_path, monkeypatch, capsys):
    """`probe check --no-cache` killed in its 2nd candidate unit (after the baseline's 2): the
    resumed check scores only the 2 units left, says it reused 3, and reports the verdicts of
    an uninterrupted check; another --seed is refused, named."""
    import json

    from probe.gating import units
    from tests.probe.test_gate import _write_suite

    suite = _write_suite(tmp_path)
    argv = ["check", "--suite", str(suite), "--no-cache", "--model", f"{__name__}:ring_v1",
            "--baseline", f"{__name__}:ring_v0", "--seed", "3"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert not (tmp_path / "a" / "checkpoints").exists()

    real = units.predict
    calls = []

    def counted(kill_at=None):
        def wrapped(*a):
            calls.append(1)
            if kill_at is not None and len(calls) == kill_at:
                raise RuntimeError("Killed: killed in unit")
            return real(*a)

        return wrapped

    b = ["--out", str(tmp_path / "b")]
    with monkeypatch.context() as m:
        m.setattr(units, "predict", counted(kill_at=4))  # baseline 2 units, candidate 3
        capsys.readouterr()
        assert probe_cli.main([*argv, *b]) == 2
        assert "killed in unit" in capsys.readouterr().err
    ckpt = tmp_path / "b" / "checkpoints"
    assert len(list(ckpt.glob("*.npz"))) == 3
    assert not (tmp_path / "b" / "report.json").exists()

    other = [a if a != "3" else "4" for a in argv]
    assert probe_cli.main([*other, *b, "--resume"]) == 2
    assert "seed (checkpoints 3, this run 4)" in capsys.readouterr().err

    calls.clear()
    with monkeypatch.context() as m:
        m.setattr(units, "predict", counted())
        assert probe_cli.main([*argv, *b, "--resume"]) == 0
    assert len(calls) == 2
    assert "resume: 3 chunk(s) reused" in capsys.readouterr().out
    assert not ckpt.exists()
    docs = [json.loads((tmp_path / d / "report.json").read_text()) for d in ("a", "b")]
    assert docs[1]["cache"]["candidate_from_checkpoints"] == 1
    assert docs[1]["cache"]["baseline_from_checkpoints"] == 2
    for key in ("passed", "n_failed", "outcomes"):
        assert docs[0][key] == docs[1][key]


# -- probe study --resume ---------------------------------------------------------------------
def study_ring(images):
    """test_study's ring finder, declaring an identity."""
    from tests.probe.test_study import ring_model

    return ring_model(images)


study_ring.model_id = "study-ring-v1"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_study_resume_reuses_finished_experiments(tmp_path, monkeypatch, capsys):
    """`probe study --smoke` killed in its second experiment (the binned one, after the colour
    sweep): the resumed study rescores only that experiment, says how many chunks it reused,
    and writes the uninterrupted study's tables."""
    argv = ["study", "--model", f"{__name__}:study_ring", "--smoke", "--simulator",
            "tests.probe.test_study:FakeSim", "--experiments", "color,mag_source_g",
            "--quiet"]  # fmt: skip
    assert probe_cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    b = ["--out", str(tmp_path / "b")]
    with monkeypatch.context() as m:
        _count(m, "baseline_task", kill_at=2)  # the sweep set's, then mag_source_g's
        assert _run([*argv, *b], capsys) == "killed"
    assert list((tmp_path / "b" / "checkpoints").glob("m0-color-sweep-*.npz"))
    other = [*argv[:-1], "--seed", "7", "--quiet"]
    assert probe_cli.main([*other, *b, "--resume"]) == 2
    assert "seed (checkpoints 2026, this run 7)" in capsys.readouterr().err
    with monkeypatch.context() as m:
        base = _count(m, "baseline_task")
        sweep = _count(m, "sweep_task")
        assert probe_cli.main([*argv, *b, "--resume"]) == 0
    assert (len(base), len(sweep)) == (1, 0)
    assert _reused(capsys.readouterr().err) >= 2
    assert not (tmp_path / "b" / "checkpoints").exists()
    for name in ("summary.csv", "table2.csv", "results/M1_color.parquet",
                 "scores/M1_mag_source_g.parquet"):  # fmt: skip
        a, r = tmp_path / "a" / name, tmp_path / "b" / name
        read = pd.read_csv if name.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(a), read(r), check_exact=True)
