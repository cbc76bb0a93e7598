"""Untrusted files (issue #18): a model, suite or data file from elsewhere is data, not code.

- a ``.keras`` file's custom-layer modules are imported only if they are simlens's or probe's,
  or with ``trust_code=True`` / ``--trust-model-code``;
- a ``.pt2`` file (partly unpickled by ``torch.export.load``) loads only when trusted;
- no source file of probe or simlens loads a pickle from a file;
- a suite's ``[data] path`` outside its directory needs ``path_outside_suite = true``;
- the cache directory is created private to the user (0o700).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import probe
from probe.errors import ModelLoadError, ProbeValueError
from probe.gating.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]

# A layer module that announces its import: it prints and writes a marker file.
MARKER_MODULE = """
import os
import pathlib

import keras

print("MARKER MODULE IMPORTED")
pathlib.Path(os.environ["MARKER_FILE"]).write_text("imported")


@keras.saving.register_keras_serializable(package="markerlayers")
class Half(keras.layers.Layer):
    def call(self, x):
        return 0.5 * x
"""

SAVE = (
    "import sys, keras; import markerlayers_mod as m; "
    "model = keras.Sequential([keras.Input((8, 8, 4)), m.Half(), keras.layers.Flatten(), "
    "keras.layers.Dense(1, activation='sigmoid')]); model.save(sys.argv[1])"
)


def _env(tmp_path: Path, marker: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The module is importable (on PYTHONPATH): only probe's choice keeps it from running.
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "mods"), env.get("PYTHONPATH", "")])
    env["MARKER_FILE"] = str(marker)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.mark.tf
def test_keras_file_does_not_import_the_modules_it_names(tmp_path):
    import simlens

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "markerlayers_mod.py").write_text(MARKER_MODULE)
    saved_marker = tmp_path / "saved.marker"
    model = tmp_path / "team.keras"
    subprocess.run([sys.executable, "-c", SAVE, str(model)], check=True,
                   env=_env(tmp_path, saved_marker), capture_output=True)  # fmt: skip
    assert saved_marker.exists()  # saving imported it (the author's machine)

    truth = pd.DataFrame({"label": [1, 0, 1, 0], "theta_E": [1.0, 1.5, 2.0, 2.5]})
    data = simlens.Dataset(np.ones((4, 8, 8, 4), np.float32), truth, {}).save(tmp_path / "d.h5")
    argv = [sys.executable, "-m", "probe.cli", "bin", "--model", str(model), "--data", str(data),
            "--by", "theta_E", "--bins", "2", "--n-boot", "10", "--plot", "none",
            "--quiet"]  # fmt: skip

    marker = tmp_path / "load.marker"
    plain = subprocess.run([*argv, "--out", str(tmp_path / "o1")], capture_output=True,
                           text=True, env=_env(tmp_path, marker), cwd=tmp_path)  # fmt: skip
    assert plain.returncode == 2, plain.stderr
    assert not marker.exists(), "the module named by the file was imported"
    assert "MARKER MODULE IMPORTED" not in plain.stdout + plain.stderr
    err = [line for line in plain.stderr.splitlines() if line.startswith("probe")]
    assert len(err) == 1, plain.stderr
    assert "markerlayers_mod" in err[0]
    assert "--trust-model-code" in err[0]

    trusted = subprocess.run([*argv, "--out", str(tmp_path / "o2"), "--trust-model-code"],
                             capture_output=True, text=True, env=_env(tmp_path, marker),
                             cwd=tmp_path)  # fmt: skip
    assert trusted.returncode == 0, trusted.stderr
    assert marker.exists()
    assert "MARKER MODULE IMPORTED" in trusted.stdout

    # The Python API: the same default, the same opt-in.
    marker.unlink()
    code = (
        "import sys, probe; from probe.adapters import load\n"
        "try:\n    load(sys.argv[1])\nexcept probe.ProbeError as err:\n    print('refused', err)\n"
        "assert 'markerlayers_mod' not in sys.modules\n"
        "load(sys.argv[1], trust_code=True); assert 'markerlayers_mod' in sys.modules\n"
    )
    api = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True,
                         text=True, env=_env(tmp_path, marker), cwd=tmp_path)  # fmt: skip
    assert api.returncode == 0, api.stderr
    assert "refused" in api.stdout
    assert "trust_code=True" in api.stdout


@pytest.mark.tf
def test_the_reference_finders_load_without_trust():
    """simlens's finders name simlens.finders._model: the package's own, trusted by default."""
    from probe.adapters import load
    from probe.adapters.keras_adapter import TRUSTED_PACKAGES
    from simlens import finders

    assert TRUSTED_PACKAGES == ("simlens", "probe")
    model = load(str(finders.weights_path("A")))
    assert model.output_shape == (None, 1)


@pytest.mark.torch
def test_a_pt2_file_loads_only_when_trusted(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 1), torch.nn.Sigmoid())
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net.eval(), (torch.zeros(2, 2, 4, 4),)), str(path))
    with pytest.raises(ModelLoadError, match=r"unpickles .*trust"):
        probe.Probe(str(path))
    images = np.zeros((2, 4, 4, 2), np.float32)
    assert probe.Probe(str(path), trust_code=True).predict(images).shape == (2,)


# Calls that can load a pickle (run code) from a file, and the safe form where there is one.
_PICKLE_LOADS = re.compile(
    r"pickle\.loads?\(|read_pickle\(|joblib\.load\(|dill\.load|allow_pickle\s*=\s*True|"
    r"weights_only\s*=\s*False|cloudpickle"
)


def test_no_source_file_loads_a_pickle():
    found = []
    for package in ("probe", "simlens"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#")[0]
                if "``" in code:  # a docstring naming the call
                    continue
                if _PICKLE_LOADS.search(code):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
                if "np.load(" in code and "allow_pickle=False" not in code:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
                if "torch.load(" in code and "weights_only=True" not in code:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


SUITE = """
[data]
path = {path!r}
{extra}

[[expectation]]
type = "min_score"
name = "lenses found"
group = "lens"
min_mean = 0.5
"""


def test_a_suite_path_outside_its_directory_needs_an_opt_in(tmp_path):
    (tmp_path / "suites").mkdir()
    outside = tmp_path / "suites" / "out.toml"
    for path in ("../set.h5", str(tmp_path / "elsewhere" / "set.h5"), "sub/../../set.h5"):
        outside.write_text(SUITE.format(path=path, extra=""))
        with pytest.raises(ProbeValueError, match="outside the suite's directory"):
            load_suite(outside)
    outside.write_text(SUITE.format(path="../set.h5", extra="path_outside_suite = true"))
    assert load_suite(outside).data.path == os.fspath(tmp_path / "suites" / "../set.h5")
    inside = tmp_path / "suites" / "in.toml"
    inside.write_text(SUITE.format(path="sets/set.h5", extra=""))
    assert load_suite(inside).data.path == os.fspath(tmp_path / "suites" / "sets" / "set.h5")
    inside.write_text(SUITE.format(path="sets/set.h5", extra="path_outside_suite = 'yes'"))
    with pytest.raises(probe.ProbeError, match="path_outside_suite must be true or false"):
        load_suite(inside)


def test_the_cache_directory_is_private(tmp_path):
    from probe.cache import Cache

    root = tmp_path / "deep" / "cache"
    cache = Cache(root)
    cache.save_scores({"what": "test"}, np.arange(3, dtype=np.float64))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    np.testing.assert_array_equal(cache.load_scores({"what": "test"}), [0.0, 1.0, 2.0])
