"""The only module of probe that imports TensorFlow/Keras, and only when a Keras model is used.

``model.predict`` pays per call for building a dataset, callbacks and a progress bar; on a
small CNN a compiled ``tf.function`` (or a ``predict_on_batch`` loop) ran 2-2.5x faster on numpy
batches, so probe calls the model through :func:`fast_predictor`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from probe.errors import ProbeTypeError, ProbeValueError


def load_keras(path: str) -> Any:
    """Load a saved Keras model (``.keras``) without compiling it (inference only).

    Modules that define the file's registered custom layers are imported first
    (:func:`import_custom_layers`), so e.g. ``simlens/finders/weights/A.keras`` loads as is.
    """
    import keras

    missing = import_custom_layers(path)
    try:
        return keras.models.load_model(path, compile=False)
    except (TypeError, ValueError) as err:
        text = str(err)
        if not (missing or "Could not locate" in text or "Unknown layer" in text):
            raise
        # Keras's own message runs to the whole layer config: name what is missing instead.
        where = (
            f" (module{'s' if len(missing) > 1 else ''} {', '.join(missing)})" if missing else ""
        )
        raise ProbeValueError(
            f"{os.fspath(path)!r} uses a custom layer that cannot be imported{where}: put its "
            "module on PYTHONPATH (it must register the layer with "
            "@keras.saving.register_keras_serializable) and try again"
        ) from err


def import_custom_layers(model: Any) -> list[str]:
    """Import the modules defining a ``.keras`` file's registered custom objects; returns the
    modules that could not be imported.

    Keras deserialises a registered custom layer (e.g. simlens's ``AsinhStretch``) only if its
    module was imported first; the archive's ``config.json`` names that module. Only modules of
    packages already installed are imported; anything unreadable is left for Keras to report.
    """
    if not isinstance(model, str | os.PathLike) or not os.fspath(model).endswith(".keras"):
        return []
    import importlib.util
    import json
    import zipfile

    try:
        with zipfile.ZipFile(model) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    modules: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            registered, module = node.get("registered_name"), node.get("module")
            if isinstance(registered, str) and ">" in registered and isinstance(module, str):
                modules.add(module)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    missing = []
    for module in sorted(modules):
        try:
            if importlib.util.find_spec(module.split(".")[0]) is None:
                missing.append(module)
                continue
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


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
