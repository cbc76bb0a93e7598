"""Plain callables with a declared identity (``model_id`` and/or ``weight_files``)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from probe.adapters._base import Adapter
from probe.errors import ModelLoadError, ProbeTypeError


class CallableAdapter(Adapter):
    """``fn(images) -> scores`` that declares what determines its outputs.

    Parameters
    ----------
    fn : callable
        Receives the channels-last batch as is (float32 ``(n, H, W, C)``).
    model_id : str, optional
        A name the user promises changes whenever the outputs do (e.g. ``"resnet-v3@2024-05"``).
    weight_files : path or sequence of paths, optional
        Files ``fn`` reads; their bytes are hashed each time the identity is asked for.
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        *,
        model_id: str | None = None,
        weight_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        if not callable(fn):
            raise ProbeTypeError(f"model must be callable; got {fn!r}")
        if model_id is None and weight_files is None:
            raise ModelLoadError(
                "probe.adapters.callable needs model_id or weight_files (else pass fn itself: "
                "an opaque callable, never cached)"
            )
        self.fn = fn
        self.model_id = model_id
        self.weight_files = weight_files
        from probe.adapters.models import describe

        self.description = describe(fn)
        self.content_digest()  # validate the declaration now

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(batch))

    def content_digest(self) -> str | None:
        from probe.adapters.models import declared_identity

        ident = declared_identity(self, code=self.fn)
        if ident is None:
            return None
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
