"""Keras adapter (needs TensorFlow): compiled inference matches the model, .keras files load."""

from __future__ import annotations

import numpy as np
import pytest

import probe
from probe import perturbers as P

pytestmark = pytest.mark.tf
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return model


@pytest.fixture
def data():
    gen = np.random.default_rng(0)
    return gen.normal(size=(37, 12, 12, 3)).astype(np.float32), np.arange(37) % 2


def test_fast_path_matches_model_call(cnn, data):
    images, _ = data
    p = probe.Probe(cnn, batch_size=16)  # 37 = 16 + 16 + 5: the short batch must work too
    expected = np.asarray(cnn(images, training=False)).ravel()
    np.testing.assert_allclose(p.predict(images), expected, rtol=1e-5, atol=1e-6)
    assert p.adapter.description.startswith("keras:")


def test_saved_keras_file_and_model_hash(cnn, data, tmp_path):
    images, labels = data
    path = tmp_path / "m.keras"
    cnn.save(path)
    from_file = probe.Probe(str(path), batch_size=16)
    in_memory = probe.Probe(cnn, batch_size=16)
    np.testing.assert_allclose(from_file.predict(images), in_memory.predict(images), rtol=1e-6)
    assert from_file.adapter.hash == in_memory.adapter.hash
    r = from_file.sweep(images, labels, P.GaussianBlur, [0.0, 1.0], rng=0)
    assert r.table["n"].max() == 37


def test_softmax_keras_with_positive_class(data):
    images, _ = data
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Flatten(), keras.layers.Dense(2, "softmax")]
    )
    out = np.asarray(model(images, training=False))
    p0 = probe.Probe(model, positive_class=0).predict(images)
    np.testing.assert_allclose(p0, out[:, 0], rtol=1e-5)


@pytest.mark.tf
def test_load_keras_imports_the_modules_of_custom_layers():
    """A .keras file with registered custom layers (simlens's finders) loads in a fresh process
    that imported nothing but probe: the layers' modules are imported from the file's config."""
    import subprocess
    import sys

    from simlens import finders

    code = (
        "import sys; from probe.adapters.keras_adapter import load_keras; "
        f"m = load_keras({str(finders.weights_path('A'))!r}); "
        "assert 'simlens.finders._model' in sys.modules; print(m.output_shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(None, 1)"


LAYER_MODULE = """
import keras


@keras.saving.register_keras_serializable(package="teamlayers")
class Double(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
"""


@pytest.mark.tf
def test_unimportable_custom_layer_is_one_line_exit_2(tmp_path):
    """A team's .keras file whose custom layer's module is not importable: `probe bin` exits 2
    with one line naming the module, not Keras's page of traceback."""
    import subprocess
    import sys

    import h5py

    (tmp_path / "teamlayers_mod.py").write_text(LAYER_MODULE)
    save = (
        "import sys, keras; sys.path.insert(0, sys.argv[1]); import teamlayers_mod as m; "
        "model = keras.Sequential([keras.Input((4, 4, 1)), m.Double(), keras.layers.Flatten(), "
        "keras.layers.Dense(1, activation='sigmoid')]); model.save(sys.argv[2])"
    )
    path = tmp_path / "team.keras"
    subprocess.run([sys.executable, "-c", save, str(tmp_path), str(path)], check=True)
    data = tmp_path / "d.h5"
    with h5py.File(data, "w") as f:
        f["images"] = np.zeros((4, 4, 4, 1), np.float32)
        f["labels"] = [0, 1, 0, 1]
    done = subprocess.run(
        [sys.executable, "-m", "probe.cli", "bin", "--model", str(path), "--data", str(data),
         "--by", "x", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False, cwd=tmp_path / "..",
    )  # fmt: skip
    assert done.returncode == 2
    # TensorFlow's own start-up lines (absl, oneDNN) aside, probe says one line.
    err = [line for line in done.stderr.splitlines() if line.startswith("probe")]
    assert len(err) == 1, done.stderr
    assert err[0].startswith("probe bin: error:")
    assert "custom layer that cannot be imported (module teamlayers_mod)" in err[0]
    assert "Traceback" not in done.stderr
