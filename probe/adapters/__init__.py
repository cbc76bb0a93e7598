"""Adapters: bring a PyTorch, ONNX, JAX or Keras model (or a plain callable) to probe.

:func:`load` picks the adapter from what the model is, so ``probe.Probe(model)`` and the CLI's
``--model``/``--baseline`` need no flags for the common cases:

========================================  ==========================================
model                                     adapter
========================================  ==========================================
``.keras`` / ``.h5`` file, Keras model    Keras 3 (any backend; :mod:`probe.adapters.keras_adapter`)
``.onnx`` file                            :class:`OnnxAdapter` (onnxruntime)
``.pt``/``.pth``/``.pt2``, ``nn.Module``  :class:`TorchAdapter` (TorchScript, ``torch.export``)
``apply_fn, params``                      :func:`jax` (call it explicitly)
``"module:callable"`` or a callable       as is (opaque unless it declares an identity)
========================================  ==========================================

Every adapter has ``content_digest()``: the SHA-256 of what determines its outputs
(architecture and every weight, or a model file's bytes, or the JAX parameter pytree). The
gate's cache and its same-model check use it. A plain callable has none unless wrapped with
:func:`callable` and a ``model_id`` or ``weight_files``; then nothing of it is cached.

torch, onnxruntime and jax are imported only when such a model is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.adapters._base import Adapter
from probe.adapters.specs import load_callable
from probe.errors import ModelLoadError

if TYPE_CHECKING:
    from probe.adapters._callable import CallableAdapter
    from probe.adapters._jax import JaxAdapter
    from probe.adapters._onnx import OnnxAdapter
    from probe.adapters._torch import TorchAdapter

__all__ = ["SUPPORTED_SUFFIXES", "Adapter", "callable", "jax", "keras", "load", "onnx", "torch"]

#: Model file types probe loads, by suffix.
SUPPORTED_SUFFIXES = (".keras", ".h5", ".onnx", ".pt", ".pth", ".pt2")
_SUPPORTED_TEXT = ", ".join(SUPPORTED_SUFFIXES) + " files and 'module:callable' specs"


def torch(
    model: Any,
    *,
    device: str = "cpu",
    state_dict: str | os.PathLike[str] | None = None,
    channels_first: bool = True,
    trust_code: bool = False,
) -> TorchAdapter:
    """A PyTorch module, TorchScript file or ``.pt2`` program (:class:`TorchAdapter`; a
    ``.pt2`` file needs ``trust_code=True``: torch.export.load unpickles parts of it)."""
    from probe.adapters._torch import TorchAdapter

    return TorchAdapter(
        model,
        device=device,
        state_dict=state_dict,
        channels_first=channels_first,
        trust_code=trust_code,
    )


def onnx(path: str | os.PathLike[str], *, providers: Sequence[str] | None = None) -> OnnxAdapter:
    """An ONNX file run with onnxruntime (:class:`OnnxAdapter`)."""
    from probe.adapters._onnx import OnnxAdapter

    return OnnxAdapter(path, providers=providers)


def jax(apply_fn: Callable[..., Any], params: Any, *, channels_first: bool = False) -> JaxAdapter:
    """``apply_fn(params, images)`` jitted once per batch shape (:class:`JaxAdapter`)."""
    from probe.adapters._jax import JaxAdapter

    return JaxAdapter(apply_fn, params, channels_first=channels_first)


def keras(model: Any, *, trust_code: bool = False) -> Any:
    """A Keras model, or a ``.keras``/``.h5`` file loaded without compiling (``trust_code``:
    see :func:`probe.adapters.keras_adapter.load_keras`)."""
    if isinstance(model, str | os.PathLike):
        from probe.adapters.keras_adapter import load_keras

        return load_keras(os.fspath(model), trust_code=trust_code)
    return model


def callable(
    fn: Callable[[Any], Any],
    *,
    model_id: str | None = None,
    weight_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> CallableAdapter:
    """A plain callable with a declared identity, so its scores can be cached."""
    from probe.adapters._callable import CallableAdapter

    return CallableAdapter(fn, model_id=model_id, weight_files=weight_files)


def is_torch_module(obj: Any) -> bool:
    """True if ``obj`` is a ``torch.nn.Module``, decided without importing torch."""
    return any(
        c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in type(obj).__mro__
    )


def load(model: Any, *, device: str = "cpu", trust_code: bool = False) -> Any:
    """What ``model`` names or is, ready to call: an adapter, a Keras model or a callable.

    Parameters
    ----------
    model : path, str, model object or callable
        A model file (:data:`SUPPORTED_SUFFIXES`), a ``"module:callable"`` spec (the attribute
        is loaded in turn, so a spec may name a ``torch.nn.Module``), a Keras model, a
        ``torch.nn.Module``, an :class:`Adapter` or any callable.
    device : str
        Device of PyTorch models given as files or modules.
    trust_code : bool
        Let a model file run code: import the custom-layer modules a ``.keras`` file names
        (other than simlens's and probe's own) and load its Lambda layers (Keras
        ``safe_mode=False``). Off by default: a file from elsewhere is data, not code. Files
        are never unpickled whatever this is (``torch.load(weights_only=True)``).

    Raises
    ------
    ModelLoadError
        A missing file, an unsupported suffix, or a file that is not a model of its type.
    """
    if isinstance(model, str | os.PathLike):
        return _load_named(os.fspath(model), device, trust_code)
    if is_torch_module(model):
        return torch(model, device=device)
    return model


def _load_named(text: str, device: str, trust_code: bool) -> Any:
    suffix = Path(text).suffix.lower()
    if Path(text).is_dir():
        raise ModelLoadError(f"model {text!r} is a directory, not a model file")
    if suffix in SUPPORTED_SUFFIXES:
        if not Path(text).is_file():
            raise ModelLoadError(f"model file {text!r} not found")
        if suffix == ".onnx":
            return onnx(text)
        if suffix in (".pt", ".pth", ".pt2"):
            return torch(text, device=device, trust_code=trust_code)
        from probe.adapters.keras_adapter import load_keras

        try:
            return load_keras(text, trust_code=trust_code)
        except (OSError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"{text!r} is not a readable Keras model: {first}") from err
    if Path(text).exists():
        raise ModelLoadError(
            f"model {text!r}: unsupported file type {suffix or '(none)'!r}; probe loads "
            f"{_SUPPORTED_TEXT}"
        )
    if ":" in text:
        return load(_import_spec(text), device=device)
    raise ModelLoadError(
        f"model {text!r} is neither an existing model file nor a 'module:callable' spec "
        f"(probe loads {_SUPPORTED_TEXT})"
    )


def _import_spec(text: str) -> Any:
    module_name, _, attr = text.partition(":")
    try:
        return load_callable(text)
    except ImportError as err:
        raise ModelLoadError(f"model {text!r}: cannot import {module_name!r}") from err
    except AttributeError:
        raise ModelLoadError(f"model {text!r}: {module_name!r} has no {attr!r}") from None
