"""The :class:`Perturber` base class and the array helpers shared by the built-in perturbers.

Public names of a private module; users import them from :mod:`probe.perturbers`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np

from probe.errors import ProbeTypeError
from probe.rng import RngLike

__all__ = ["Perturber", "as_images", "float_dtype", "radial_distance"]


def as_images(images: Any) -> np.ndarray:
    """``images`` as an array, checked to be 4-D ``(n, H, W, C)``."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ProbeTypeError(f"images must be 4-D (n, H, W, C); got shape {arr.shape}")
    return arr


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a smoothing or noisy perturbation computes in: ``dtype`` if float, else float32."""
    # Integer images would truncate blurred or noisy pixels; compute those in float32.
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def radial_distance(height: int, width: int) -> np.ndarray:
    """Distance in pixels of each pixel centre from the stamp centre ``((H-1)/2, (W-1)/2)``."""
    rows = np.arange(height) - (height - 1) / 2.0
    cols = np.arange(width) - (width - 1) / 2.0
    return np.hypot(rows[:, None], cols[None, :])


class Perturber:
    """Base class of the built-in perturbers (users may pass plain functions instead).

    Subclasses are frozen dataclasses whose first field is the swept value; they implement
    :meth:`apply` and may override :attr:`is_identity`. A subclass may instead implement
    :meth:`apply_into` and :meth:`result_dtype` (as the built-ins do): :meth:`apply` then
    allocates the output and calls :meth:`apply_into`, and a sweep writes into its batch
    buffer directly, saving a copy.
    """

    name: ClassVar[str] = ""
    """Short name used by the CLI (``--perturber blur``)."""
    parameter: ClassVar[str] = "value"
    """Name of the swept value, for axis labels."""
    unit: ClassVar[str] = ""
    """Unit of the swept value, for axis labels ("" if dimensionless)."""
    preserves_finite: ClassVar[bool] = True
    """Finite input gives finite output (true of every built-in), so a sweep need not check."""

    @property
    def value(self) -> float:
        """The swept value this perturber was built with."""
        return float(getattr(self, self.parameter))

    @property
    def is_identity(self) -> bool:
        """True when the perturbation changes nothing, so a sweep can reuse cached scores."""
        return False

    def __call__(self, images: Any, rng: RngLike = None) -> np.ndarray:
        """Return a perturbed copy of ``images`` (n, H, W, C); ``images`` is not modified."""
        arr = as_images(images)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return self.apply(arr, gen)

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Perturb a validated 4-D batch; must not modify ``images``."""
        dtype = self.result_dtype(images.dtype)
        if dtype is None or type(self).apply_into is Perturber.apply_into:
            raise NotImplementedError(f"{type(self).__name__} must implement apply")
        out = np.empty(images.shape, dtype)
        self.apply_into(images, rng, out)
        return out

    def result_dtype(self, dtype: np.dtype) -> np.dtype | None:
        """The output dtype for input ``dtype``; None if only a call can tell."""
        return None

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        """Write the perturbation of ``images`` into ``out`` (same shape; must not alias it).

        ``out`` has dtype :meth:`result_dtype` when that is known. The default copies the result
        of :meth:`apply`; built-ins compute in place.
        """
        out[...] = self.apply(images, rng)

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters, for provenance."""
        return {"class": type(self).__name__, **asdict(self)}  # type: ignore[call-overload]
