"""ONNX models run with onnxruntime (imported only here, when an ``.onnx`` file is used).

The input's name, layout (NCHW or NHWC) and element type are read from the graph; the first
output is the score.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from probe.adapters._base import Adapter, check_batch, dask_worker_threads, file_sha256
from probe.errors import ModelLoadError, ProbeValueError

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


class OnnxAdapter(Adapter):
    """An ``.onnx`` file as a model.

    Parameters
    ----------
    path : str or path
        The ONNX file (one 4-D image input; the first output is the score).
    providers : sequence of str, optional
        onnxruntime execution providers in order of preference (default
        ``["CPUExecutionProvider"]``; e.g. ``["CUDAExecutionProvider", "CPUExecutionProvider"]``).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, providers: Sequence[str] | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = os.fspath(path)
        if not Path(self.path).is_file():
            raise ModelLoadError(f"model file {self.path!r} not found")
        available = ort.get_available_providers()
        chosen = list(providers) if providers is not None else ["CPUExecutionProvider"]
        missing = [p for p in chosen if p not in available]
        if missing or not chosen:
            raise ModelLoadError(
                f"providers {missing or chosen} not available in onnxruntime; available: "
                f"{', '.join(available)}"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no per-session warnings on stderr
        threads = dask_worker_threads()
        if threads is not None:
            # onnxruntime's default pool takes every core; N single-threaded Dask workers on N
            # cores would then oversubscribe the machine N-fold.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(self.path, options, providers=chosen)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"{self.path!r} is not a readable ONNX model: {first}") from err
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(f"{i.name} {i.shape}" for i in inputs)
            raise ModelLoadError(
                f"{self.path!r}: the ONNX graph has {len(inputs)} inputs ({names}); probe feeds "
                "one image batch, so the graph must have exactly one input"
            )
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        if len(self.input_shape) != 4:
            raise ModelLoadError(
                f"{self.path!r}: the ONNX input {self.input_name!r} has shape "
                f"{self.input_shape}; an image batch input must be 4-D (NCHW or NHWC)"
            )
        if inputs[0].type not in _DTYPES:
            raise ModelLoadError(
                f"{self.path!r}: ONNX input type {inputs[0].type} is not a float tensor"
            )
        self._dtype = _DTYPES[inputs[0].type]
        self.output_name = self.session.get_outputs()[0].name
        self.providers = self.session.get_providers()
        self.description = f"onnx:{Path(self.path).name}"
        self._layout: dict[tuple[int, ...], bool] = {}

    def channels_first_for(self, shape: tuple[int, ...]) -> bool:
        """Whether a channels-last batch of ``shape`` must be transposed to NCHW for the graph."""
        if shape[1:] not in self._layout:
            _, h, w, c = shape

            def fits(dims: tuple[int, ...]) -> bool:
                return all(
                    not isinstance(g, int) or g == d for g, d in zip(self.input_shape[1:], dims)
                )

            if fits((h, w, c)):
                self._layout[shape[1:]] = False
            elif fits((c, h, w)):
                self._layout[shape[1:]] = True
            else:
                raise ProbeValueError(
                    f"{self.description}: input {self.input_name!r} has shape {self.input_shape}; "
                    f"images of {h}x{w} pixels and {c} bands fit neither NHWC nor NCHW"
                )
        return self._layout[shape[1:]]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = check_batch(batch)
        if self.channels_first_for(x.shape):
            x = np.moveaxis(x, -1, 1)
        feed = {self.input_name: np.ascontiguousarray(x, dtype=self._dtype)}
        return np.asarray(self.session.run([self.output_name], feed)[0])

    def content_digest(self) -> str:
        """SHA-256 of the file's bytes."""
        return file_sha256(self.path)
