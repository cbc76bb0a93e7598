"""Reference finders A and B: shipped weights load as Keras models of the right shape."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from simlens import finders


def test_import_simlens_does_not_import_tensorflow():
    code = (
        "import sys, simlens, simlens.finders; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", finders.NAMES)
def test_weights_and_record_ship(name):
    path = finders.weights_path(name)
    assert path.is_file()
    assert path.stat().st_size < 5e6  # "a few MB at most"
    record = finders.training_record(name)
    assert record["network"] == name
    assert record["survey"] == "des-sv"
    for key in ("positives", "negatives", "seeds", "epochs", "val_auc", "test", "time_s"):
        assert key in record
    json.dumps(record)


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="finder name"):
        finders.weights_path("C")


@pytest.mark.tf
@pytest.mark.parametrize("name", finders.NAMES)
def test_load_shape_range_and_determinism(name):
    pytest.importorskip("tensorflow")
    model = finders.load(name)
    assert tuple(model.input_shape) == (None, 100, 100, 4)
    assert tuple(model.output_shape) == (None, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 10, (6, 100, 100, 4)).astype(np.float32)
    x[:3, 45:55, 45:55] += 300.0  # a bright "galaxy" in three of them
    p1 = np.asarray(model(x, training=False))
    p2 = np.asarray(finders.load(name)(x, training=False))
    assert p1.shape == (6, 1)
    assert np.all((p1 >= 0) & (p1 <= 1))
    np.testing.assert_allclose(p1, p2, rtol=0, atol=1e-6)


@pytest.mark.tf
def test_build_save_load_roundtrip(tmp_path):
    pytest.importorskip("tensorflow")
    model = finders.build_model(seed=1)
    x = np.random.default_rng(1).normal(0, 10, (2, 100, 100, 4)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    from simlens.finders._model import load_keras

    again = load_keras(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), np.asarray(again(x, training=False)), atol=1e-6
    )
    assert model.get_layer("stretch").get_config()["scale"] == again.get_layer("stretch").scale
