"""Geometric perturbers: occlusions, rotations, flips (re-exported by :mod:`probe.perturbers`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from probe._perturber_base import Perturber, radial_distance
from probe.errors import ProbeValueError
from probe.validation import check_nonnegative

__all__ = ["AnnulusOcclusion", "DiskOcclusion", "FlipLeftRight", "FlipUpDown", "Rotate90"]


@dataclass(frozen=True)
class AnnulusOcclusion(Perturber):
    """Set to 0, in every band, the pixels with ``radius <= d < radius + width``.

    ``d`` is the distance in pixels from the stamp centre (see the module docstring).

    Parameters
    ----------
    radius : float
        Inner radius in pixels (>= 0).
    width : float
        Radial width in pixels (> 0); the paper used 5.
    """

    radius: float
    width: float = 5.0
    name: ClassVar[str] = "annulus"
    parameter: ClassVar[str] = "radius"
    unit: ClassVar[str] = "pixel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "radius", check_nonnegative(self.radius, "radius"))
        width = check_nonnegative(self.width, "width")
        if width == 0:
            raise ProbeValueError("width must be > 0 pixels; got 0")
        object.__setattr__(self, "width", width)

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean (H, W) mask of the occluded pixels."""
        d = radial_distance(height, width)
        return (d >= self.radius) & (d < self.radius + self.width)

    def result_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        out[...] = images
        out[:, self.mask(images.shape[1], images.shape[2]), :] = 0


@dataclass(frozen=True)
class DiskOcclusion(Perturber):
    """Set to 0, in every band, the pixels with ``d < radius`` (``radius = 0`` is the identity).

    Parameters
    ----------
    radius : float
        Disk radius in pixels (>= 0), measured from the stamp centre.
    """

    radius: float
    name: ClassVar[str] = "disk"
    parameter: ClassVar[str] = "radius"
    unit: ClassVar[str] = "pixel"

    def __post_init__(self) -> None:
        object.__setattr__(self, "radius", check_nonnegative(self.radius, "radius"))

    @property
    def is_identity(self) -> bool:
        return self.radius == 0.0

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean (H, W) mask of the occluded pixels."""
        return radial_distance(height, width) < self.radius

    def result_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        out[...] = images
        out[:, self.mask(images.shape[1], images.shape[2]), :] = 0


def _whole(value: Any, name: str) -> int:
    f = float(value)
    if not np.isfinite(f) or f != round(f):
        raise ProbeValueError(f"{name} must be a whole number; got {value!r}")
    return round(f)


@dataclass(frozen=True)
class Rotate90(Perturber):
    """Rotate each image by ``k`` quarter turns (counter-clockwise when row 0 is drawn on top).

    ``out = numpy.rot90(images, k, axes=(1, 2))``; ``k`` may be any whole number (taken mod 4).
    Odd ``k`` on a non-square stamp is an error (the shape would change). For invariance checks:
    sweep ``values=[0, 1, 2, 3]``.
    """

    k: float = 1
    name: ClassVar[str] = "rot90"
    parameter: ClassVar[str] = "k"
    unit: ClassVar[str] = "quarter turns"

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _whole(self.k, "k"))

    @property
    def is_identity(self) -> bool:
        return int(self.k) % 4 == 0

    def result_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        k = int(self.k) % 4
        if k % 2 and images.shape[1] != images.shape[2]:
            raise ProbeValueError(
                f"Rotate90(k={self.k}) needs square stamps; got {images.shape[1]}x{images.shape[2]}"
            )
        out[...] = np.rot90(images, k, axes=(1, 2))


@dataclass(frozen=True)
class _Flip(Perturber):
    flip: float = 1
    axis: ClassVar[int] = 2
    parameter: ClassVar[str] = "flip"
    unit: ClassVar[str] = "0 = off, 1 = on"

    def __post_init__(self) -> None:
        flip = _whole(self.flip, "flip")
        if flip not in (0, 1):
            raise ProbeValueError(f"flip must be 0 (off) or 1 (on); got {self.flip!r}")
        object.__setattr__(self, "flip", flip)

    @property
    def is_identity(self) -> bool:
        return self.flip == 0

    def result_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        out[...] = images if self.flip == 0 else np.flip(images, axis=self.axis)


@dataclass(frozen=True)
class FlipLeftRight(_Flip):
    """Mirror each image left-right (reverse the column axis) when ``flip`` is 1; 0 is identity."""

    name: ClassVar[str] = "fliplr"
    axis: ClassVar[int] = 2


@dataclass(frozen=True)
class FlipUpDown(_Flip):
    """Mirror each image up-down (reverse the row axis) when ``flip`` is 1; 0 is identity."""

    name: ClassVar[str] = "flipud"
    axis: ClassVar[int] = 1
