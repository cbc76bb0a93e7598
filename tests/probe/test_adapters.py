"""Model adapters (probe.adapters): PyTorch, ONNX and JAX through one contract.

Every adapter must give the framework's own forward pass to 1e-5, the same scores whatever the
batch size, image dtype or caller layout, and a content digest that tells two differently
trained models apart (so the gate's cache never serves one model's scores for another).
The "ring finders" below compute the numpy ``ring_model`` of test_gate.py in each framework:
``sigmoid(30 (mean(x) . w - 0.1))`` with band weights ``w = (-0.3, w1)``; ``w1 = 0.7`` is the
degraded candidate ``dim_ring_model``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import probe
from probe import adapters, cli
from probe.errors import ModelLoadError, ProbeValueError
from probe.gating.run import run_gate
from probe.gating.suite import Suite
from tests.probe.test_gate import SUITE_TOML, RingSim, ring_model, suite_doc

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

# TorchScript is deprecated in torch 2.13 but is what many teams' finders are saved as: the
# tests write such files (the adapter only loads them).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


# -- models in each framework -------------------------------------------------------------------
class RingNet(torch.nn.Module):
    """The ring finder on NCHW input."""

    def __init__(self, w1: float = 1.0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([-0.3, w1]))

    def forward(self, x):
        return torch.sigmoid(30 * (x.mean(dim=(2, 3)) @ self.w - 0.1))


class ConvNet(torch.nn.Module):
    """A small CNN with batch norm and dropout: wrong results unless run in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(2, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.drop = torch.nn.Dropout(0.5)
        self.fc = torch.nn.Linear(4, 1)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.1, 0.1)
            self.bn.running_var.uniform_(0.5, 2.0)
            self.fc.weight.mul_(20.0)  # scores spread over (0, 1)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return torch.sigmoid(self.fc(self.drop(h)))


class NHWCNet(torch.nn.Module):
    """Expects (n, H, W, C): given NCHW, its linear layer sees the wrong width."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc(x.mean(dim=(1, 2))))


def ring_onnx(path, w1: float = 1.0, *, n_inputs: int = 1):
    """The ring finder as a hand-built NHWC ONNX graph (or a broken graph with two inputs)."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 16, 16, 2])
    y = helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n"])
    w = numpy_helper.from_array(np.array([-0.3, w1], np.float32), "w")
    c = numpy_helper.from_array(np.array([0.1], np.float32), "c")
    k = numpy_helper.from_array(np.array([30.0], np.float32), "k")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["s"]),
        helper.make_node("Sub", ["s", "c"], ["t"]),
        helper.make_node("Mul", ["t", "k"], ["u"]),
        helper.make_node("Sigmoid", ["u"], ["p"]),
    ]
    inputs = [x]
    if n_inputs == 2:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 16, 16, 2]))
    graph = helper.make_graph(nodes, "ring", inputs, [y], initializer=[w, c, k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def export_onnx(module, path, shape=(2, 2, 16, 16)):
    """A torch module exported to an NCHW ONNX file (the TorchScript-based exporter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(), (torch.zeros(shape),), str(path), input_names=["x"],
            dynamic_axes={"x": {0: "n"}}, dynamo=False,
        )  # fmt: skip
    return str(path)


def ring_jax(w1: float = 1.0):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def apply(params, x):
        return jax.nn.sigmoid(30 * (jnp.mean(x, axis=(1, 2)) @ params["w"] - 0.1))

    return adapters.jax(apply, {"w": jnp.array([-0.3, w1], dtype=jnp.float32)})


def torch_reference(module):
    def forward(x):
        module.eval()
        with torch.no_grad():
            out = module(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
        return out.numpy().astype(np.float64).ravel()

    return forward


def onnx_reference(path):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    nchw = session.get_inputs()[0].shape[1] == 2

    def forward(x):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2) if nchw else x)
        return np.asarray(session.run(None, {name: x})[0], np.float64).ravel()

    return forward


@pytest.fixture
def images():
    sim = RingSim()
    truth = sim.sample_lenses(20, rng=1)
    return np.concatenate([sim.render(truth), sim.render(sim.sample_nonlenses(17, rng=2))])


def _builders(tmp_path):
    """(name, model given to probe, reference forward pass on NHWC float32 images)."""
    conv = ConvNet()
    scripted = tmp_path / "conv.pt"
    torch.jit.save(torch.jit.script(ConvNet().eval()), str(scripted))
    program = tmp_path / "conv.pt2"
    n = torch.export.Dim("n")
    exported = torch.export.export(ConvNet().eval(), (torch.zeros(2, 2, 16, 16),),
                                   dynamic_shapes=({0: n},))  # fmt: skip
    torch.export.save(exported, str(program))
    nchw = export_onnx(ConvNet(), tmp_path / "conv.onnx")
    nhwc = ring_onnx(tmp_path / "ring.onnx")
    jax_model = ring_jax()
    return [
        ("torch module", conv.train(), torch_reference(ConvNet())),
        ("torchscript", str(scripted), torch_reference(ConvNet())),
        ("torch.export", str(program), torch_reference(ConvNet())),
        ("onnx nchw", nchw, onnx_reference(nchw)),
        ("onnx nhwc", nhwc, onnx_reference(nhwc)),
        ("jax", jax_model, lambda x: np.asarray(jax_model.apply_fn(jax_model.params, x)).ravel()),
    ]


# -- the contract -------------------------------------------------------------------------------
def test_every_adapter_meets_the_contract(tmp_path, images):
    for name, model, reference in _builders(tmp_path):
        # trust_code: a .pt2 file is unpickled in part by torch.export.load (our own file here).
        p = probe.Probe(model, batch_size=16, trust_code=True)  # 37 = 16 + 16 + 5: short last
        want = reference(images)
        got = p.predict(images)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=name)
        assert np.ptp(got) > 0.01, name  # a real, image-dependent score
        np.testing.assert_allclose(  # batch-size invariance
            probe.Probe(model, batch_size=5, trust_code=True).predict(images), got, rtol=0,
            atol=1e-6,
            err_msg=name,
        )  # fmt: skip
        np.testing.assert_allclose(  # dtype: float64 images are converted
            p.predict(images.astype(np.float64)), got, rtol=0, atol=1e-6, err_msg=name
        )
        cf = probe.Probe(model, batch_size=16, channels_first=True, trust_code=True)
        np.testing.assert_allclose(
            cf.predict(images.transpose(0, 3, 1, 2)), got, rtol=0, atol=1e-6, err_msg=name
        )
        assert len(p.adapter.digest) == 64, name


def test_dispatch_picks_the_adapter(tmp_path):
    assert isinstance(adapters.load(RingNet()), adapters.Adapter)
    assert adapters.load(RingNet()).description == "torch:RingNet"
    path = ring_onnx(tmp_path / "r.onnx")
    assert adapters.load(path).description == "onnx:r.onnx"
    assert adapters.load(ring_model) is ring_model  # plain callables as today
    import sys

    assert probe.Probe(RingNet()).adapter.description == "torch:RingNet"
    assert "torch" in sys.modules  # (imported by this test module, not by probe: see imports test)


def test_torch_runs_in_eval_and_inference_mode(images):
    net = ConvNet().train()
    a = adapters.torch(net)
    assert not net.training  # dropout off, batch norm on its running statistics
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append(torch.is_inference_mode_enabled()))
    a(images[:3])
    assert seen == [True]


def test_torch_state_dict_loads_with_weights_only(tmp_path, images):
    weights = tmp_path / "w.pth"
    torch.save(RingNet(0.7).state_dict(), weights)
    a = adapters.torch(RingNet(1.0), state_dict=weights)
    assert a.content_digest() == adapters.torch(RingNet(0.7)).content_digest()
    np.testing.assert_allclose(a(images).ravel(), torch_reference(RingNet(0.7))(images), atol=1e-6)


# -- identity by content ------------------------------------------------------------------------
def _digest(model):
    return probe.Probe(model).adapter.digest


def test_digests_follow_weights_not_classes(tmp_path):
    assert _digest(RingNet(1.0)) == _digest(RingNet(1.0))
    assert _digest(RingNet(1.0)) != _digest(RingNet(0.7))
    a, b = ring_onnx(tmp_path / "a.onnx", 1.0), ring_onnx(tmp_path / "b.onnx", 0.7)
    assert _digest(a) != _digest(b)
    assert _digest(a) == _digest(ring_onnx(tmp_path / "c.onnx", 1.0))
    assert _digest(ring_jax(1.0)) != _digest(ring_jax(0.7))
    assert _digest(ring_jax(1.0)) == _digest(ring_jax(1.0))
    s1, s2 = tmp_path / "s1.pt", tmp_path / "s2.pt"
    torch.jit.save(torch.jit.script(RingNet(1.0)), str(s1))
    torch.jit.save(torch.jit.script(RingNet(0.7)), str(s2))
    assert _digest(str(s1)) != _digest(str(s2))
    assert _digest(ring_model) is None  # an opaque callable has no digest
    declared = adapters.callable(ring_model, model_id="ring v1")
    assert _digest(declared) == _digest(adapters.callable(ring_model, model_id="ring v1"))
    assert _digest(declared) != _digest(adapters.callable(ring_model, model_id="ring v2"))


FRAMEWORKS = ("torch", "onnx", "jax")


@pytest.fixture
def make(request, tmp_path):
    """``make(w1)``: a new ring finder of the framework (a new file for ONNX)."""
    if request.param == "torch":
        return RingNet
    if request.param == "jax":
        return ring_jax
    made = []

    def onnx_file(w1):
        made.append(w1)
        return ring_onnx(tmp_path / f"m{len(made)}.onnx", w1)

    return onnx_file


@pytest.mark.parametrize("make", FRAMEWORKS, indirect=True)
def test_gate_tells_models_of_one_framework_apart(make, tmp_path):
    suite = Suite.from_dict(suite_doc())
    base, same, worse = make(1.0), make(1.0), make(0.7)
    with pytest.raises(ProbeValueError, match="same model"):
        run_gate(same, suite, baseline=base, simulator=RingSim())
    ok = run_gate(same, suite, baseline=base, simulator=RingSim(), allow_same_model=True)
    assert ok.passed, ok.summary()
    bad = run_gate(worse, suite, baseline=base, simulator=RingSim())
    assert not bad.passed
    assert "no regression over theta_E" in {o.name for o in bad.failures}

    # No shared cache entries: another set of weights never reuses the baseline's scores.
    cache = tmp_path / "cache"
    first = run_gate(ring_model, suite, baseline=base, simulator=RingSim(), cache_dir=cache)
    other = run_gate(ring_model, suite, baseline=worse, simulator=RingSim(), cache_dir=cache)
    again = run_gate(ring_model, suite, baseline=make(1.0), simulator=RingSim(), cache_dir=cache)
    assert first.cache["baseline_computed"] == 3, first.cache
    assert other.cache["baseline_from_cache"] == 0
    assert other.cache["baseline_computed"] == 3
    assert again.cache["baseline_from_cache"] == 3  # the same content is reused
    assert (first.outcomes[-1].table["estimate"].abs() < 1e-6).all()
    assert (other.outcomes[-1].table["estimate"] > 0.01).all()


def test_probe_check_on_torchscript_files(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE_TOML.format(module=RingSim.__module__))
    files = {}
    for name, w1 in (("base", 1.0), ("same", 1.0), ("worse", 0.7)):
        files[name] = str(tmp_path / f"{name}.pt")
        torch.jit.save(torch.jit.script(RingNet(w1)), files[name])
    args = ["check", "--suite", str(suite), "--out", str(tmp_path / "out"), "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--baseline", files["base"],
            "--overwrite"]  # fmt: skip
    assert cli.main([*args, "--model", files["worse"]]) == 1
    assert "FAIL no_regression no regression under blur" in capsys.readouterr().out
    # The identical model (another file, same bytes) is refused, then passes when allowed.
    assert cli.main([*args, "--model", files["base"]]) == 2
    err = capsys.readouterr().err
    assert "same model" in err
    assert len(err.strip().splitlines()) == 1
    assert cli.main([*args, "--model", files["base"], "--allow-same-model"]) == 0


# -- bad input ----------------------------------------------------------------------------------
def test_bad_outputs_name_the_model_and_index(images):
    class NaNNet(RingNet):
        def forward(self, x):
            out = super().forward(x).clone()
            out[3] = float("nan")
            return out

    class WideNet(RingNet):
        def forward(self, x):
            return super().forward(x)[:, None, None].expand(-1, 3, 1)

    with pytest.raises(
        ProbeValueError, match=r"torch:.*NaNNet: .*NaN or inf at index 3 of a batch"
    ):
        probe.Probe(NaNNet()).predict(images)
    with pytest.raises(ProbeValueError, match=r"torch:.*WideNet: .*shape \(37, 3, 1\)"):
        probe.Probe(WideNet()).predict(images)


def test_layout_error_names_channels_first(images):
    with pytest.raises(ProbeValueError, match="channels_first=False"):
        probe.Probe(NHWCNet()).predict(images)
    p = probe.Probe(adapters.torch(NHWCNet(), channels_first=False))
    assert p.predict(images).shape == (37,)


@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".pth", ".pt2", ".keras"])
def test_a_file_that_is_not_a_model_of_its_type(tmp_path, suffix):
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(b"not a model at all\n" * 10)
    with pytest.raises(ModelLoadError, match="junk") as info:
        probe.Probe(str(path))
    assert "\n" not in str(info.value)


def test_a_state_dict_file_is_never_unpickled_as_a_model(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(RingNet().state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"not a TorchScript file .*state_dict="):
        probe.Probe(str(path))


def test_devices_and_providers_that_do_not_exist():
    with pytest.raises(ModelLoadError, match="device 'cuda:7' does not exist here; available: cpu"):
        adapters.torch(RingNet(), device="cuda:7")
    with pytest.raises(ModelLoadError, match="device 'gpu0' is not a torch device"):
        adapters.torch(RingNet(), device="gpu0")


def test_onnx_graph_errors(tmp_path, images):
    two = ring_onnx(tmp_path / "two.onnx", n_inputs=2)
    with pytest.raises(ModelLoadError, match=r"2 inputs \(images .*mask .*exactly one input"):
        probe.Probe(two)
    one = ring_onnx(tmp_path / "one.onnx")
    with pytest.raises(ModelLoadError, match="providers .'NoSuchExecutionProvider'. not available"):
        adapters.onnx(one, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ProbeValueError, match="fit neither NHWC nor NCHW"):
        probe.Probe(one).predict(images[..., :1])


def test_unsupported_extension_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "finder.pkl"
    path.write_bytes(b"x")
    argv = ["sweep", "--model", str(path), "--data", str(path), "--perturber", "blur",
            "--values", "0,1", "--out", str(tmp_path / "o")]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unsupported file type '.pkl'" in err
    assert ".keras, .h5, .onnx, .pt, .pth, .pt2" in err
    assert "module:callable" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_on_cuda_matches_cpu(images):
    cpu = probe.Probe(ConvNet(), batch_size=16).predict(images)
    gpu = probe.Probe(adapters.torch(ConvNet(), device="cuda"), batch_size=16)
    np.testing.assert_allclose(gpu.predict(images), cpu, rtol=0, atol=1e-5)
    assert gpu.adapter.digest == probe.Probe(ConvNet()).adapter.digest  # device is not content
    n = torch.cuda.device_count()
    available = ", ".join(["cpu"] + [f"cuda:{i}" for i in range(n)])
    with pytest.raises(ModelLoadError, match=f"available: {available}$"):
        adapters.torch(ConvNet(), device=f"cuda:{n}")
