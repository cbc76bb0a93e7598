"""Model adapters: anything that maps a batch of images to scores becomes ``images -> p(lens)``.

Accepted models: anything :func:`probe.adapters.load` accepts (Keras, PyTorch, ONNX and JAX
models and files, a callable ``f(images) -> outputs``, a ``"module:callable"`` spec). Outputs
may be sigmoid probabilities ``(n,)`` or ``(n, 1)``, softmax probabilities ``(n, k >= 2)`` with
the lens class at ``positive_class``, or logits of either form (``logits=True``). Anything
else, NaN, or a probability outside [0, 1] raises.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from probe.adapters._base import Adapter
from probe.errors import ModelLoadError, ProbeTypeError, ProbeValueError
from probe.provenance import file_sha256

# Softmax rows are summed in float32 by most frameworks; 1e-3 leaves room for that rounding
# while still catching logits passed without logits=True.
_SOFTMAX_TOL = 1e-3


def is_keras_model(obj: Any) -> bool:
    """True if ``obj`` is a Keras/TensorFlow model, decided without importing TensorFlow."""
    roots = {"keras", "tf_keras", "tensorflow"}
    return any(c.__module__.split(".")[0] in roots for c in type(obj).__mro__)


def resolve_model(model: Any, *, device: str = "cpu", trust_code: bool = False) -> Any:
    """Load ``model`` if it names one (a model file or ``"module:attr"``); wrap a torch module.

    See :func:`probe.adapters.load` (the dispatcher this calls) for what is accepted.
    """
    from probe.adapters import load

    return load(model, device=device, trust_code=trust_code)


def model_hash(model: Any) -> tuple[str, str]:
    """``(sha256, description)`` of a model for provenance.

    The sha256 is :func:`model_digest` where the model has one; an opaque callable without a
    declared identity gets the hash of its ``module:qualname`` (a *name*, not its content: two
    differently-configured objects of one class share it; caches use :func:`model_digest`).
    """
    digest = model_digest(model)
    desc = describe(model)
    if digest is None:
        digest = hashlib.sha256(desc.encode()).hexdigest()
    return digest, desc


def describe(model: Any) -> str:
    """A short human-readable name: ``keras:<name>``, an adapter's, or ``module:qualname``."""
    if isinstance(model, Adapter):
        return model.description
    if is_keras_model(model):
        return f"keras:{getattr(model, 'name', type(model).__name__)}"
    module = getattr(model, "__module__", None) or type(model).__module__
    qual = getattr(model, "__qualname__", None) or type(model).__qualname__
    return f"{module}:{qual}"


def keras_digest(model: Any) -> str:
    """SHA-256 of a Keras model's architecture (JSON config) and every weight."""
    digest = hashlib.sha256()
    try:
        digest.update(model.to_json().encode())
    except Exception:  # subclassed models cannot always serialise their config
        digest.update(type(model).__qualname__.encode())
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def declared_identity(model: Any, *, code: Any = None) -> dict[str, Any] | None:
    """The identity a callable declares, or None for an opaque callable.

    A callable declares what determines its outputs through attributes (set by
    :func:`probe.adapters.callable` or by hand): ``model_id`` (a string the user promises
    changes whenever the outputs do) and/or ``weight_files`` (paths of the files it reads; their
    bytes are hashed now, so a changed file gives another identity). The source file of the
    callable's code (``code``, default ``model``) is hashed too, so editing it changes it.

    Raises
    ------
    ModelLoadError
        ``model_id`` not a non-empty string, or a declared weight file that does not exist.
    """
    model_id = getattr(model, "model_id", None)
    files = getattr(model, "weight_files", None)
    if model_id is None and files is None:
        return None
    code = model if code is None else code
    ident: dict[str, Any] = {"kind": "callable", "name": describe(code)}
    if model_id is not None:
        if not isinstance(model_id, str) or not model_id.strip():
            raise ModelLoadError(f"model_id must be a non-empty string; got {model_id!r}")
        ident["model_id"] = model_id
    if files is not None:
        paths = [files] if isinstance(files, str | os.PathLike) else list(files)
        if not paths:
            raise ModelLoadError("weight_files must name at least one file; got []")
        hashed = {}
        for f in paths:
            if not isinstance(f, str | os.PathLike) or not Path(f).is_file():
                raise ModelLoadError(f"weight_files: {f!r} is not an existing file")
            hashed[os.fspath(f)] = file_sha256(f)
        ident["weight_files"] = hashed
    source = source_sha256(code)
    if source:
        ident["source_sha256"] = source
    return ident


def source_sha256(obj: Any) -> str | None:
    """SHA-256 of the source file defining ``obj`` (or its class); None if it has none."""
    try:
        source = inspect.getsourcefile(obj) or inspect.getsourcefile(type(obj))
    except TypeError:
        try:
            source = inspect.getsourcefile(type(obj))
        except TypeError:
            source = None
    if source and Path(source).is_file():
        return file_sha256(source)
    return None


def model_digest(model: Any) -> str | None:
    """SHA-256 of what determines a (loaded) model's outputs, or None if probe cannot see it.

    Keras: architecture and every weight. An object with a ``content_digest`` method (the
    adapters of :mod:`probe.adapters`): its content digest. A callable with a declared identity
    (:func:`declared_identity`): the hash of that. Any other callable: None (opaque; nothing
    computed from it is cached or reused).
    """
    if is_keras_model(model):
        return keras_digest(model)
    own = getattr(model, "content_digest", None)
    if callable(own):
        value = own()
        return value if isinstance(value, str) else None
    declared = declared_identity(model)
    if declared is None:
        return None
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def to_p_lens(raw: Any, n: int, *, positive_class: int, logits: bool) -> np.ndarray:
    """Convert one batch of model outputs to p(lens) as float64 of shape (n,).

    Raises
    ------
    ProbeValueError
        Wrong length or shape, NaN/inf, a probability outside [0, 1], or softmax rows not
        summing to 1 (each message names the first bad index).
    """
    out = np.asarray(raw)
    if out.dtype.kind not in "biuf":
        raise ProbeTypeError(f"model output must be numeric; got dtype {out.dtype}")
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 0 or out.shape[0] != n:
        raise ProbeValueError(f"model returned output of shape {out.shape} for {n} images")
    out = out.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(out).reshape(n, -1).all(axis=1))
    if bad.size:
        raise ProbeValueError(
            f"model output contains NaN or inf at index {bad[0]} of a batch of {n} images"
        )
    if out.ndim == 1:
        if logits:
            from scipy.special import expit

            return np.asarray(expit(out), dtype=np.float64)
        _check_range(out)
        return out
    if out.ndim != 2:
        raise ProbeValueError(
            f"model output must be (n,), (n, 1) or (n, k) with k >= 2; got shape {out.shape}"
        )
    if not 0 <= positive_class < out.shape[1]:
        raise ProbeValueError(
            f"positive_class {positive_class} is not a column of the model's "
            f"{out.shape[1]}-class output"
        )
    if logits:
        shifted = out - out.max(axis=1, keepdims=True)  # stable softmax
        e = np.exp(shifted)
        return np.asarray(e[:, positive_class] / e.sum(axis=1))
    _check_range(out)
    sums = out.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _SOFTMAX_TOL)
    if off.size:
        raise ProbeValueError(
            f"model output rows must sum to 1 (softmax); row {off[0]} sums to {sums[off[0]]:.6g}; "
            "pass logits=True if the model returns logits"
        )
    return np.asarray(out[:, positive_class])


def _check_range(out: np.ndarray) -> None:
    bad = np.flatnonzero(((out < 0.0) | (out > 1.0)).reshape(out.shape[0], -1).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ProbeValueError(
            f"model output out of [0, 1] at index {i} ({out[i]}); "
            "pass logits=True if the model returns logits"
        )


class ModelAdapter:
    """A model as a function from a channels-last batch to p(lens) (float64, shape (n,)).

    Parameters
    ----------
    model : callable, keras.Model, str or pathlib.Path
        See the module docstring.
    positive_class : int
        Column of the lens class in a multi-column output.
    logits : bool
        Whether outputs are logits (sigmoid/softmax applied here).
    channels_first : bool
        Whether the model expects ``(n, C, H, W)``; batches are transposed before the call.
    trust_code : bool
        Let a model file run code (:func:`probe.adapters.load`); off by default.
    """

    def __init__(
        self,
        model: Any,
        *,
        positive_class: int = 1,
        logits: bool = False,
        channels_first: bool = False,
        trust_code: bool = False,
    ) -> None:
        model = resolve_model(model, trust_code=trust_code)
        if not callable(model):
            raise ProbeTypeError(f"model must be callable or a Keras model; got {model!r}")
        self.model = model
        self.positive_class = int(positive_class)
        self.logits = bool(logits)
        self.channels_first = bool(channels_first)
        # Adapters take probe's channels-last batches and do their framework's layout.
        self._transpose = self.channels_first and not isinstance(model, Adapter)
        self.digest = model_digest(model)
        self.description = describe(model)
        # ``hash`` (provenance, kept for compatibility) falls back to the name's hash;
        # ``digest`` is None for an opaque callable and is what caches and the gate compare.
        self.hash = self.digest or hashlib.sha256(self.description.encode()).hexdigest()
        self.raw_predict: Callable[[np.ndarray], Any]
        if is_keras_model(model):
            from probe.adapters.keras_adapter import fast_predictor

            self.raw_predict = fast_predictor(model)
        else:
            self.raw_predict = model

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """p(lens) of a channels-last batch."""
        x = np.moveaxis(batch, -1, 1) if self._transpose else batch
        raw = self.raw_predict(x)
        try:
            return to_p_lens(
                raw, batch.shape[0], positive_class=self.positive_class, logits=self.logits
            )
        except ProbeValueError as err:  # name the model: the gate runs two
            raise ProbeValueError(f"{self.description}: {err}") from None

    def __repr__(self) -> str:
        return (
            f"ModelAdapter({self.description}, positive_class={self.positive_class}, "
            f"logits={self.logits}, channels_first={self.channels_first})"
        )
