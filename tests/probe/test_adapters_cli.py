"""The CLI end to end on the reference finder A as ONNX and on a TorchScript finder.

``probe sweep``, ``resim``, ``study`` and ``check`` run on ``A.onnx`` (shipped) and on a
TorchScript CNN saved here; every score must equal the framework's own forward pass (Keras's
``model(x, training=False)`` for A, the scripted module for the TorchScript file) run as a plain
``module:callable`` through the same command on the same images, within 1e-5. Also: the
shipped ONNX files match the shipped Keras weights (the export's recorded source digest, and the
scores on study images).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from probe import cli
from probe.cache import file_digest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning"),
]
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")
finders = pytest.importorskip("simlens.finders")

TOL = 1e-5
REFS = """
import numpy as np, torch
from simlens import finders

_A = finders.load("A")
_T = torch.jit.load({ts!r}).eval()


def keras_A(x):
    return np.asarray(_A(np.asarray(x, np.float32), training=False))


def torch_T(x):
    with torch.no_grad():
        return _T(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1), np.float32))).numpy()
"""


class TinyFinder(torch.nn.Module):
    """A small CNN on (n, 4, 100, 100) counts, as a team would script it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(4, 8, 5, stride=4)
        self.fc = torch.nn.Linear(8, 1)
        with torch.no_grad():
            self.fc.weight.mul_(30.0)  # scores spread over (0, 1)

    def forward(self, x):
        h = torch.relu(self.conv(torch.asinh(x / 10.0))).mean(dim=(2, 3))
        return torch.sigmoid(self.fc(h))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters_cli")
    ts = root / "tiny.pt"
    torch.jit.save(torch.jit.script(TinyFinder().eval()), str(ts))
    (root / "adapter_refs.py").write_text(REFS.format(ts=str(ts)))
    sys.path.insert(0, str(root))
    import simlens
    from simlens.io.dataset import concat

    sim = simlens.Simulator("des-sv")
    data = concat([sim.lenses(10, rng=1, theta_E=(1.0, 2.7)), sim.nonlenses(10, rng=2)])
    data.save(root / "set.h5")
    yield {
        "root": root,
        "onnx": str(finders.onnx_path("A")),
        "ts": str(ts),
        "data": str(root / "set.h5"),
        "images": np.asarray(data.images),
    }
    sys.path.remove(str(root))
    sys.modules.pop("adapter_refs", None)


PAIRS = [("onnx", "adapter_refs:keras_A"), ("ts", "adapter_refs:torch_T")]


def test_shipped_onnx_exports_match_the_keras_weights(env):
    for name in finders.NAMES:
        model = onnx.load(str(finders.onnx_path(name)))
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["source_keras_sha256"] == file_digest(finders.weights_path(name)), (
            f"{name}.onnx is stale: run scripts/export_onnx.py"
        )


@pytest.mark.parametrize(("model", "ref"), PAIRS)
def test_sweep(env, tmp_path, model, ref):
    out = {}
    for tag, spec in (("model", env[model]), ("ref", ref)):
        argv = ["sweep", "--model", spec, "--data", env["data"], "--perturber", "blur",
                "--values", "0,1", "--out", str(tmp_path / tag), "--quiet",
                "--plot", "none"]  # fmt: skip
        assert cli.main(argv) == 0
        out[tag] = pd.read_parquet(tmp_path / tag / "sweep_blur_scores.parquet")
    np.testing.assert_allclose(out["model"]["p_lens"], out["ref"]["p_lens"], rtol=0, atol=TOL)
    assert out["model"]["p_lens"].std() > 0.01  # real, image-dependent scores


@pytest.mark.parametrize(("model", "ref"), PAIRS)
def test_resim(env, tmp_path, model, ref):
    out = {}
    for tag, spec in (("model", env[model]), ("ref", ref)):
        argv = ["resim", "--model", spec, "--survey", "des-sv", "--param", "psf_scale",
                "--values", "1,1.5", "--n", "6", "--out", str(tmp_path / tag), "--quiet",
                "--plot", "none"]  # fmt: skip
        assert cli.main(argv) == 0
        out[tag] = pd.read_parquet(tmp_path / tag / "resim_psf_scale_scores.parquet")
    np.testing.assert_allclose(out["model"]["p_lens"], out["ref"]["p_lens"], rtol=0, atol=TOL)


def test_study_scores_from_onnx_equal_keras(env, tmp_path):
    """The study's scores from A.onnx and B.onnx equal the Keras ones (and the TorchScript
    finder's equal its module's) on the study's own images."""
    pairs = [(env["onnx"], "adapter_refs:keras_A", "A"), (env["ts"], "adapter_refs:torch_T", "T")]
    b_onnx, b_keras = str(finders.onnx_path("B")), str(finders.weights_path("B"))
    argv = ["study", "--smoke", "--experiments", "blur,theta_E", "--out", str(tmp_path),
            "--quiet", "--model", b_onnx, "--label", "B_onnx", "--model", b_keras,
            "--label", "B_ref"]  # fmt: skip
    for model, ref, label in pairs:
        argv += ["--model", model, "--label", f"{label}_onnx", "--model", ref, "--label",
                 f"{label}_ref"]  # fmt: skip
    assert cli.main(argv) == 0
    for label in ("A", "B", "T"):
        for exp in ("blur", "theta_E"):
            got = pd.read_parquet(tmp_path / "scores" / f"{label}_onnx_{exp}.parquet")
            want = pd.read_parquet(tmp_path / "scores" / f"{label}_ref_{exp}.parquet")
            assert len(got) == len(want) > 0
            np.testing.assert_allclose(got["p_lens"], want["p_lens"], rtol=0, atol=TOL)


SUITE = """
seed = 5
n_boot = 500
[data]
survey = "des-sv"
simulator = "simlens:Simulator"
[data.sets.main]
n_lenses = 24
n_nonlenses = 24
lenses = {{ theta_E = [1.0, 2.7] }}
[[expectation]]
type = "no_regression"
name = "no regression under blur"
over = "blur"
values = [0.0, 0.5]
delta = 0.02
"""


@pytest.mark.parametrize(("model", "ref"), PAIRS)
def test_check(env, tmp_path, capsys, model, ref):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format())
    argv = ["check", "--suite", str(suite), "--out", str(tmp_path / "out"), "--no-cache",
            "--model", env[model], "--baseline", ref]  # fmt: skip
    assert cli.main(argv) == 0
    import json

    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    estimates = [b["estimate"] for o in doc["outcomes"] for b in o["bins"]]
    assert estimates
    assert max(abs(e) for e in estimates) < TOL  # the same scores as the forward pass
    assert "PASSED" in capsys.readouterr().out
