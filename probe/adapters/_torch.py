"""PyTorch models: ``nn.Module``, TorchScript files (``.pt``/``.pth``) and exported programs
(``.pt2``). torch is imported only here, when such a model is used.

Files are never unpickled by default: TorchScript loads with ``torch.jit.load`` and a state dict
with ``torch.load(weights_only=True)``. ``torch.export.load`` unpickles parts of a ``.pt2``
archive (``torch.load(weights_only=False)`` and ``pickle.loads`` of its weights and constants,
torch 2.x), so a ``.pt2`` file loads only with ``trust_code=True``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from probe.adapters._base import Adapter, check_batch, file_sha256
from probe.errors import ModelLoadError, ProbeTypeError, ProbeValueError

TORCHSCRIPT_SUFFIXES = (".pt", ".pth")
EXPORT_SUFFIX = ".pt2"


def _device(torch: Any, device: str) -> Any:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ModelLoadError(
            f"device {device!r} is not a torch device (e.g. 'cpu', 'cuda')"
        ) from err
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0 or (dev.index is not None and dev.index >= n):
            have = ", ".join(["cpu", *(f"cuda:{i}" for i in range(n))])
            raise ModelLoadError(f"device {device!r} does not exist here; available: {have}")
    elif dev.type != "cpu":
        raise ModelLoadError(f"device {device!r} is not supported; use 'cpu' or 'cuda[:i]'")
    return dev


class TorchAdapter(Adapter):
    """A PyTorch model run in eval mode under ``torch.inference_mode()``.

    Parameters
    ----------
    model : torch.nn.Module, str or path
        A module, a TorchScript file (``.pt``/``.pth``, ``torch.jit.save``) or an exported
        program (``.pt2``, ``torch.export.save``).
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"cuda:i"``.
    state_dict : str or path, optional
        Weights for ``model`` (a module), read with ``torch.load(weights_only=True)``.
    channels_first : bool
        Whether the model takes ``(n, C, H, W)`` (PyTorch's convention, default) or
        ``(n, H, W, C)``; probe's channels-last batches are transposed accordingly.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: str = "cpu",
        state_dict: str | os.PathLike[str] | None = None,
        channels_first: bool = True,
        trust_code: bool = False,
    ) -> None:
        import torch

        self.device = _device(torch, device)
        self._trust_code = bool(trust_code)
        self.channels_first = bool(channels_first)
        self._file: str | None = None
        if isinstance(model, str | os.PathLike):
            model = self._load_file(torch, os.fspath(model))
        if not isinstance(model, torch.nn.Module):
            raise ProbeTypeError(f"a PyTorch model must be a torch.nn.Module; got {model!r}")
        if state_dict is not None:
            weights = torch.load(os.fspath(state_dict), map_location="cpu", weights_only=True)
            if not isinstance(weights, dict):
                raise ModelLoadError(f"state_dict {os.fspath(state_dict)!r} is not a state dict")
            model.load_state_dict(weights)
        self.module = model.to(self.device)
        if not (self._file or "").endswith(EXPORT_SUFFIX):
            # An exported program keeps the mode it was exported in (and refuses eval()).
            self.module.eval()
        first = next(iter(self.module.parameters()), None) if hasattr(model, "parameters") else None
        self._dtype = first.dtype if first is not None and first.is_floating_point() else None
        name = Path(self._file).name if self._file else type(model).__qualname__
        self.description = f"torch:{name}"

    def _load_file(self, torch: Any, path: str) -> Any:
        if not Path(path).is_file():
            raise ModelLoadError(f"model file {path!r} not found")
        self._file = path
        if path.endswith(EXPORT_SUFFIX):
            if not self._trust_code:
                raise ModelLoadError(
                    f"{path!r}: torch.export.load unpickles parts of a .pt2 file, which can run "
                    "code; pass --trust-model-code / trust_code=True if you trust the file, or "
                    "use TorchScript (.pt) or ONNX"
                )
            try:
                return torch.export.load(path).module()
            except Exception as err:
                raise ModelLoadError(
                    f"{path!r} is not a torch.export program (.pt2): {_first_line(err)}"
                ) from err
        try:
            return torch.jit.load(path, map_location="cpu")
        except Exception as err:
            raise ModelLoadError(
                f"{path!r} is not a TorchScript file (torch.jit.save); probe never unpickles "
                "arbitrary .pt files: for a state dict pass the module, "
                f"probe.adapters.torch(module, state_dict=...) ({_first_line(err)})"
            ) from err

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = check_batch(batch)
        if self.channels_first:
            x = np.moveaxis(x, -1, 1)
        t = torch.from_numpy(np.ascontiguousarray(x))
        t = t.to(device=self.device, dtype=self._dtype or torch.float32)
        try:
            with torch.inference_mode():
                out = self.module(t)
        except RuntimeError as err:
            layout = "(n, C, H, W)" if self.channels_first else "(n, H, W, C)"
            raise ProbeValueError(
                f"{self.description} failed on a batch of shape {tuple(t.shape)} {layout}, "
                f"channels_first={self.channels_first}; if the model expects the other layout "
                f"pass channels_first={not self.channels_first}: {_first_line(err)}"
            ) from err
        if not isinstance(out, torch.Tensor):
            raise ProbeTypeError(
                f"{self.description} must return one tensor; got {type(out).__name__}"
            )
        return out.detach().to("cpu", torch.float64).numpy()

    def content_digest(self) -> str:
        """A file's bytes; a module's class, structure and every parameter and buffer."""
        if self._file is not None:
            return file_sha256(self._file)
        from probe.adapters.models import source_sha256

        h = hashlib.sha256()
        cls = type(self.module)
        h.update(f"{cls.__module__}.{cls.__qualname__}\n{self.module!r}\n".encode())
        h.update((source_sha256(self.module) or "").encode())
        import torch

        for name, value in sorted(self.module.state_dict().items()):
            t = value.detach().to("cpu").contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0].split(". ")[0] if text else type(err).__name__
