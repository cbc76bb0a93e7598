"""The docs' walkthrough for a team's own model and own set, run as written.

The files (``team_model.py``, ``suite.toml``) and the shell commands are taken from docs/probe.md
(the blocks after ``<!-- walkthrough:... -->`` markers) and run in a fresh directory through
the real command lines (``simlens generate`` -> ``probe bin/selection/check``), so the page
cannot drift from what works. It is also the end-to-end test of ``probe check`` on a set that
``simlens generate`` wrote, through a suite's ``path`` and through ``--data``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # ~1 min: two sets simulated, eight commands


def walkthrough_blocks() -> dict[str, str]:
    """The fenced block after each ``<!-- walkthrough:NAME -->`` marker of docs/probe.md."""
    text = (ROOT / "docs" / "probe.md").read_text(encoding="utf-8")
    found = re.findall(r"<!-- walkthrough:(\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)
    return dict(found)


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A walkthrough command line, with ``simlens``/``probe`` run from this checkout."""
    tool = {"simlens": "simlens.cli", "probe": "probe.cli"}[argv[0]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run(
        [sys.executable, "-m", tool, *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_readme_walkthrough_runs(tmp_path):
    blocks = walkthrough_blocks()
    assert set(blocks) == {"team_model.py", "suite.toml", "commands"}
    (tmp_path / "team_model.py").write_text(blocks["team_model.py"])
    (tmp_path / "suite.toml").write_text(blocks["suite.toml"])
    for line in blocks["commands"].splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        done = run(argv, tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"

    truth = pd.read_parquet(tmp_path / "lenses.truth.parquet")
    assert len(truth) == 60
    assert truth["theta_E"].between(1.0, 2.5).all()
    theta = pd.read_parquet(tmp_path / "out/theta/bin_theta_E.parquet")
    assert set(theta["group"]) == {"lens", "all"}
    assert theta[theta["group"] == "lens"]["n"].sum() == 60
    kinds = pd.read_parquet(tmp_path / "out/kind/bin_kind.parquet")
    assert kinds[kinds["group"] == "nonlens"]["n"].sum() == 60
    assert kinds[kinds["group"] == "lens"]["category"].tolist() == ["lens"]
    assert kinds[kinds["group"] == "lens"]["n"].sum() == 60
    assert kinds["flagged"].between(0, 1).all()
    sel = pd.read_parquet(tmp_path / "out/sel/selection_theta_E.parquet")
    assert "fpr=0.1" in set(sel["threshold_label"])
    for out, n_nonlenses in (("gate", 0), ("gate2", 60)):
        report = json.loads((tmp_path / "out" / out / "report.json").read_text())
        assert report["passed"] is True
        assert report["provenance"]["data"]["saved set"]["n_lenses"] == 60
        assert report["provenance"]["data"]["saved set"]["n_nonlenses"] == n_nonlenses

    # The same suite with a bar the toy finder cannot meet: exit 1, naming the expectation.
    strict = blocks["suite.toml"].replace("min_mean = 0.2", "min_mean = 0.999")
    (tmp_path / "strict.toml").write_text(strict)
    failed = run(["probe", "check", "--model", "team_model:finder", "--suite", "strict.toml",
                  "--out", "out/strict", "--no-cache"], tmp_path)  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert "FAIL min_score lenses score above 0.2 over theta_E" in failed.stdout
    # Bad input: exit 2 with one line and no traceback.
    bad = run(["probe", "check", "--model", "team_model:finder", "--suite", "suite.toml",
               "--data", "missing.h5", "--out", "out/bad"], tmp_path)  # fmt: skip
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("probe check: error:")
