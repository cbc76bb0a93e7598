"""The only module of probe that imports TensorFlow/Keras, and only when a Keras model is used.

``model.predict`` pays per call for building a dataset, callbacks and a progress bar; on a
small CNN a compiled ``tf.function`` (or a ``predict_on_batch`` loop) ran 2-2.5x faster on numpy
batches, so probe calls the model through :func:`fast_predictor`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from probe.errors import ProbeTypeError


def load_keras(path: str) -> Any:
    """Load a saved Keras model (``.keras``) without compiling it (inference only)."""
    import keras

    return keras.models.load_model(path, compile=False)


def fast_predictor(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``batch -> numpy outputs`` running ``model(batch, training=False)`` compiled.

    With the TensorFlow backend the call is a ``tf.function`` whose batch dimension is left
    free, so the last, shorter batch does not trigger a retrace. With another Keras backend it
    falls back to ``model.predict_on_batch``.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda batch: np.asarray(model.predict_on_batch(batch))

    import tensorflow as tf

    state: dict[str, Any] = {}

    def compiled_for(batch: np.ndarray) -> Any:
        key = (batch.shape[1:], batch.dtype.str)
        if state.get("key") != key:
            spec = tf.TensorSpec(shape=(None, *batch.shape[1:]), dtype=batch.dtype)
            state["key"] = key
            state["fn"] = tf.function(
                lambda x: model(x, training=False),
                input_signature=[spec],
                reduce_retracing=True,
                autograph=False,  # plain layer calls: nothing to convert, and no source lookups
            )
        return state["fn"]

    input_dtype = _input_dtype(model)

    def predict(batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=input_dtype or batch.dtype)
        out = compiled_for(x)(x)
        if isinstance(out, dict | list | tuple):
            raise ProbeTypeError("Keras model must have a single output tensor")
        return np.asarray(out)

    return predict


def _input_dtype(model: Any) -> np.dtype | None:
    """The dtype the model's first input expects (float32 for most), or None if unknown."""
    try:
        inputs = model.inputs
        return np.dtype(str(inputs[0].dtype)) if inputs else None
    except (AttributeError, TypeError, ValueError):
        return None
