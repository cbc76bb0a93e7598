"""JAX models (Flax/Equinox style ``apply_fn(params, images)``); jax imported only here."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from probe.adapters._base import Adapter, check_batch, hash_arrays


class JaxAdapter(Adapter):
    """``apply_fn(params, images)`` jitted once per batch shape, on channels-last float32.

    Parameters
    ----------
    apply_fn : callable
        ``(params, images) -> scores``, e.g. a Flax module's ``apply`` (without training-only
        arguments: bind them with :func:`functools.partial`).
    params : pytree
        The parameters (every leaf is hashed into the digest).
    channels_first : bool
        Whether ``apply_fn`` takes ``(n, C, H, W)`` (default False: JAX's usual NHWC).
    """

    def __init__(
        self, apply_fn: Callable[..., Any], params: Any, *, channels_first: bool = False
    ) -> None:
        import jax

        if not callable(apply_fn):
            from probe.errors import ProbeTypeError

            raise ProbeTypeError(f"apply_fn must be callable; got {apply_fn!r}")
        self.apply_fn = apply_fn
        self.params = params
        self.channels_first = bool(channels_first)
        # jax.jit traces and compiles once per input shape and dtype, then reuses it.
        self._jitted = jax.jit(apply_fn)
        from probe.adapters.models import describe

        self.description = f"jax:{describe(apply_fn).split(':')[-1]}"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = check_batch(batch)
        if self.channels_first:
            x = np.moveaxis(x, -1, 1)
        out = self._jitted(self.params, np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(out)

    def content_digest(self) -> str:
        """The function's name and source file, and every leaf of ``params`` with its path."""
        import jax

        from probe.adapters.models import describe, source_sha256

        h = hashlib.sha256()
        fn = getattr(self.apply_fn, "func", self.apply_fn)  # functools.partial
        h.update(f"{describe(fn)}\n{source_sha256(fn) or ''}\n".encode())
        leaves, treedef = jax.tree_util.tree_flatten_with_path(self.params)
        h.update(str(treedef).encode())
        hash_arrays(h, [(jax.tree_util.keystr(path), leaf) for path, leaf in leaves])
        return h.hexdigest()
