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

from probe.adapters.simulators import SIMULATOR_PACKAGE
from probe.errors import ProbeTypeError, ProbeValueError

#: Packages whose modules a ``.keras`` file may name and probe imports without ``trust_code``:
#: this project's own (the reference finders' custom layers live in ``simlens.finders``).
TRUSTED_PACKAGES = (SIMULATOR_PACKAGE, "probe")


def load_keras(path: str, *, trust_code: bool = False) -> Any:
    """Load a saved Keras model (``.keras``) without compiling it (inference only).

    A ``.keras`` archive names the modules of its custom layers. Modules of
    :data:`TRUSTED_PACKAGES` are imported first (:func:`import_custom_layers`), so e.g.
    ``simlens/finders/weights/A.keras`` loads as is; any other module is imported only with
    ``trust_code=True`` (importing a module runs its code). ``trust_code`` is also passed to
    Keras as ``safe_mode=not trust_code`` (Lambda layers hold code too). Without it, import the
    module yourself (it then is your code) or pass ``trust_code=True`` for a file you trust.
    """
    import keras

    missing, untrusted = _custom_layer_modules(path, trust_code=trust_code)
    try:
        return keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except (TypeError, ValueError) as err:
        text = str(err)
        if untrusted and not trust_code:
            raise ProbeValueError(
                f"{os.fspath(path)!r} names custom-layer module{'s' if len(untrusted) > 1 else ''}"
                f" {', '.join(untrusted)}, not imported: a model file is not trusted to run code "
                "(pass --trust-model-code / trust_code=True if you trust it, or import the "
                "module yourself first)"
            ) from err
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


def import_custom_layers(model: Any, *, trust_code: bool = False) -> list[str]:
    """Import the modules defining a ``.keras`` file's registered custom objects; returns the
    modules that could not be imported.

    Keras deserialises a registered custom layer (e.g. simlens's ``AsinhStretch``) only if its
    module was imported first; the archive's ``config.json`` names that module. Only modules of
    :data:`TRUSTED_PACKAGES`, or already imported, are imported unless ``trust_code`` (the file
    is then trusted to run the code of the modules it names); the others are returned too.
    Anything unreadable is left for Keras to report.
    """
    missing, untrusted = _custom_layer_modules(model, trust_code=trust_code)
    return missing + untrusted


def _custom_layer_modules(model: Any, *, trust_code: bool) -> tuple[list[str], list[str]]:
    """(modules that could not be imported, untrusted modules left unimported)."""
    if not isinstance(model, str | os.PathLike) or not os.fspath(model).endswith(".keras"):
        return [], []
    import importlib.util
    import json
    import sys
    import zipfile

    try:
        with zipfile.ZipFile(model) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return [], []
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
    missing, untrusted = [], []
    for module in sorted(modules):
        trusted = module.split(".")[0] in TRUSTED_PACKAGES or module in sys.modules
        try:
            # Finding a top-level package runs none of its code; importing it would.
            if importlib.util.find_spec(module.split(".")[0]) is None:
                missing.append(module)
                continue
            if not (trust_code or trusted):
                untrusted.append(module)
                continue
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing, untrusted


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
