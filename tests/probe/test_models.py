"""Model adapters: output forms, logits, positive class, range and NaN checks, model specs."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from probe import Probe, ProbeTypeError, ProbeValueError
from probe.adapters.models import ModelAdapter, is_keras_model, model_hash, to_p_lens

X = np.zeros((3, 2, 2, 1), np.float32)


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected"),
    [
        (np.array([0.1, 0.5, 0.9]), {}, [0.1, 0.5, 0.9]),
        (np.array([[0.1], [0.5], [0.9]], np.float32), {}, [0.1, 0.5, 0.9]),
        (np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]), {}, [0.3, 0.8, 0.5]),
        (np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]]), {"positive_class": 0}, [0.7, 0.2, 0.5]),
        (np.array([0.0, np.log(3.0), -50.0]), {"logits": True}, [0.5, 0.75, 1 / (1 + np.e**50)]),
        (np.array([[0.0, np.log(3.0)], [2.0, 2.0], [1.0, 0.0]]), {"logits": True},
         [0.75, 0.5, 1 / (1 + np.e)]),
    ],
)  # fmt: skip
def test_output_forms(raw, kwargs, expected):
    out = to_p_lens(
        raw, 3, positive_class=kwargs.get("positive_class", 1), logits=kwargs.get("logits", False)
    )
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (np.array([0.1, np.nan, 0.3]), "NaN or inf at index 1"),
        (np.array([0.1, 1.2, 0.3]), r"out of \[0, 1\] at index 1.*logits=True"),
        (np.array([[0.6, 0.6], [0.5, 0.5], [0.5, 0.5]]), "row 0 sums to 1.2"),
        (np.array([0.1, 0.2]), "shape"),
        (np.zeros((3, 2, 2)), "must be"),
    ],
)
def test_bad_outputs_raise(raw, match):
    with pytest.raises(ProbeValueError, match=match):
        to_p_lens(raw, 3, positive_class=1, logits=False)


def test_positive_class_outside_output():
    with pytest.raises(ProbeValueError, match="positive_class 2"):
        to_p_lens(np.full((3, 2), 0.5), 3, positive_class=2, logits=False)


def test_scores_kept_in_float64_not_float16():
    p = Probe(lambda x: np.full(len(x), 0.1234567890123, np.float64))
    assert p.predict(X)[0] == 0.1234567890123


def test_module_callable_spec(tmp_path, monkeypatch):
    (tmp_path / "specmodel.py").write_text(
        "import numpy as np\n\ndef score(x):\n    return np.full(len(x), 0.25)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    adapter = ModelAdapter("specmodel:score")
    np.testing.assert_array_equal(adapter(X), [0.25] * 3)
    assert adapter.description == "specmodel:score"
    with pytest.raises(ProbeValueError, match="has no 'nothing'"):
        ModelAdapter("specmodel:nothing")
    with pytest.raises(ProbeValueError, match="cannot import"):
        ModelAdapter("no_such_module_xyz:f")
    with pytest.raises(ProbeValueError, match=r"neither an existing model file"):
        ModelAdapter("not-a-model")
    sys.modules.pop("specmodel", None)


def test_non_callable_model():
    with pytest.raises(ProbeTypeError, match="callable"):
        Probe(42)


def test_model_hash_and_keras_detection_without_tensorflow():
    def f(x):
        return x

    h, desc = model_hash(f)
    assert len(h) == 64
    assert desc.endswith("test_model_hash_and_keras_detection_without_tensorflow.<locals>.f")
    assert not is_keras_model(f)
