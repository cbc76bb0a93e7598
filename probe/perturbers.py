"""Perturbers: small, pure, seeded image transformations used by :meth:`probe.Probe.sweep`.

A perturber is built with its value and called on a batch::

    blur = GaussianBlur(1.5)
    out = blur(images, rng)          # images (n, H, W, C); returns a new array, input untouched

A sweep builds one perturber per value: ``Probe.sweep(..., GaussianBlur, values=...)``. A plain
function ``f(images, value, rng) -> images`` works too (wrapped in :class:`FromCallable`), so no
subclassing is needed. Outputs keep the input's shape; blur, noise and jitter turn integer
images into float32.

A sweep calls a perturber on blocks of ``probe.rng.BLOCK`` images, each with its own generator
(see :mod:`probe.rng`), so a perturbation must treat the images of a block independently of the
images around it for a result to mean the same thing whatever the block boundaries; every
built-in does. Built-ins write straight into the sweep's batch buffer
(:meth:`Perturber.apply_into`), which :meth:`Perturber.apply` shares, so both give the same bits.

The *stamp centre* is the point ``((H - 1) / 2, (W - 1) / 2)`` in (row, column) pixel indices, the
centre of the middle pixel for odd sizes and the corner between the four middle pixels for even
sizes; distances ``d`` are Euclidean, in pixels, from there to each pixel centre.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from probe._geometric import (
    AnnulusOcclusion,
    DiskOcclusion,
    FlipLeftRight,
    FlipUpDown,
    Rotate90,
)
from probe._perturber_base import Perturber, float_dtype
from probe._perturber_base import radial_distance as radial_distance
from probe.errors import ProbeKeyError, ProbeTypeError, ProbeValueError
from probe.validation import check_nonnegative, names_list

__all__ = [
    "AnnulusOcclusion",
    "ColorJitter",
    "DiskOcclusion",
    "FlipLeftRight",
    "FlipUpDown",
    "FromCallable",
    "GaussianBlur",
    "GaussianNoise",
    "Perturber",
    "Rotate90",
    "by_name",
    "registry",
]


@dataclass(frozen=True)
class _SigmaPerturber(Perturber):
    """A perturbation of strength ``sigma`` (>= 0; 0 is the identity) with a float output."""

    sigma: float
    parameter: ClassVar[str] = "sigma"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", check_nonnegative(self.sigma, "sigma"))

    @property
    def is_identity(self) -> bool:
        return self.sigma == 0.0

    def result_dtype(self, dtype: np.dtype) -> np.dtype:
        return float_dtype(dtype)


@dataclass(frozen=True)
class ColorJitter(_SigmaPerturber):
    """Multiply each band of each image by its own factor drawn from N(1, sigma).

    ``out[i, :, :, c] = images[i, :, :, c] * f[i, c]`` with ``f ~ Normal(mean=1, std=sigma)``
    drawn independently per image and band (paper section 4.1). Factors are not clipped, so
    for large ``sigma`` a band can change sign. ``sigma = 0`` is the identity.

    Parameters
    ----------
    sigma : float
        Standard deviation of the multiplicative factors (dimensionless, >= 0).
    """

    name: ClassVar[str] = "color"
    unit: ClassVar[str] = ""

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        n, _, _, c = images.shape
        factors = rng.normal(1.0, self.sigma, size=(n, 1, 1, c))
        np.multiply(images, factors.astype(out.dtype), out=out)


@dataclass(frozen=True)
class GaussianBlur(_SigmaPerturber):
    """Convolve each band with a circular 2-D Gaussian of standard deviation ``sigma`` pixels.

    Uses :func:`scipy.ndimage.gaussian_filter` over the two image axes only (never across
    images or bands), kernel truncated at ``truncate * sigma`` pixels, edges handled by ``mode``
    (default "reflect": the stamp is mirrored about its edge, so total flux is kept). Computed
    in the image dtype (float32 for integer input). ``sigma = 0`` is the identity.

    Parameters
    ----------
    sigma : float
        Kernel standard deviation in pixels (>= 0); FWHM = 2.3548 sigma.
    mode : str
        Boundary mode of :func:`scipy.ndimage.gaussian_filter`.
    truncate : float
        Kernel half-width in units of ``sigma``.
    """

    mode: str = "reflect"
    truncate: float = 4.0
    name: ClassVar[str] = "blur"
    unit: ClassVar[str] = "pixel"

    def __post_init__(self) -> None:
        super().__post_init__()
        modes = ("reflect", "constant", "nearest", "mirror", "wrap")
        if self.mode not in modes:
            raise ProbeValueError(f"mode must be one of {names_list(modes)}; got {self.mode!r}")
        if not self.truncate > 0:
            raise ProbeValueError(f"truncate must be > 0; got {self.truncate!r}")

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        if self.sigma == 0.0:
            out[...] = images
            return
        from scipy import ndimage  # scipy.ndimage costs ~0.2 s to import; only blur needs it

        # scipy filters float32/float64 only: half precision is filtered in float32.
        work = out if out.dtype.itemsize >= 4 else np.empty(out.shape, np.float32)
        ndimage.gaussian_filter(
            images.astype(work.dtype, copy=False),
            sigma=(0.0, self.sigma, self.sigma, 0.0),
            output=work,
            mode=self.mode,
            truncate=self.truncate,
        )
        if work is not out:
            out[...] = work


@dataclass(frozen=True)
class GaussianNoise(_SigmaPerturber):
    """Add Gaussian noise in units of each band's own standard deviation (normalised noise).

    Per image ``i`` and band ``c``, with ``m`` and ``s`` the mean and standard deviation
    (ddof=0) of the band's pixels: standardise ``z = (x - m) / s``, add ``e ~ N(0, sigma)`` per
    pixel, and undo the standardisation, ``out = (z + e) * s + m = x + s * e``. The output std is
    thus ``s * sqrt(1 + sigma**2)`` in expectation, whatever the model's input scaling (paper
    section 4.6). A constant band (``s = 0``) has no scale and is returned unchanged.
    ``sigma = 0`` is the identity.

    Parameters
    ----------
    sigma : float
        Noise standard deviation in units of the band's standard deviation (>= 0).
    """

    name: ClassVar[str] = "noise"
    unit: ClassVar[str] = "band std"

    def apply_into(self, images: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
        dtype = out.dtype
        x = images.astype(dtype, copy=False)
        # Band std in float64: float32 accumulation loses digits on large stamps.
        s = x.std(axis=(1, 2), keepdims=True, dtype=np.float64)
        noise_dtype = np.float64 if dtype == np.float64 else np.float32
        if dtype == noise_dtype and out.flags.c_contiguous:
            rng.standard_normal(dtype=noise_dtype, out=out)  # the same draws, no temporary
        else:
            out[...] = rng.standard_normal(size=x.shape, dtype=noise_dtype)
        out *= (self.sigma * s).astype(dtype)
        out += x  # x + s * e


@dataclass(frozen=True)
class FromCallable(Perturber):
    """Wrap a user function ``func(images, value, rng) -> images`` as a perturber.

    The function receives a channels-last batch, the swept value and a seeded
    :class:`numpy.random.Generator`; it must return an array of the same shape and must not
    modify its input. Nothing is assumed about identity, so no cached score is reused.
    """

    func: Callable[[np.ndarray, float, np.random.Generator], Any]
    value_: float = field(default=0.0)
    name: ClassVar[str] = "callable"
    parameter: ClassVar[str] = "value_"
    preserves_finite: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise ProbeTypeError(f"perturber must be callable; got {self.func!r}")
        object.__setattr__(self, "value_", float(self.value_))

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(self.func(images, self.value_, rng))
        if out.shape != images.shape:
            raise ProbeValueError(
                f"perturber {_describe(self.func)} returned shape {out.shape} for input "
                f"{images.shape} at value {self.value_}; it must keep the shape"
            )
        return out

    def params(self) -> dict[str, Any]:
        return {"class": "FromCallable", "func": _describe(self.func), "value": self.value_}


def _describe(func: Any) -> str:
    module = getattr(func, "__module__", None) or "?"
    qual = getattr(func, "__qualname__", None) or type(func).__name__
    return f"{module}:{qual}"


_BUILTINS: tuple[type[Perturber], ...] = (
    ColorJitter,
    GaussianBlur,
    GaussianNoise,
    AnnulusOcclusion,
    DiskOcclusion,
    Rotate90,
    FlipLeftRight,
    FlipUpDown,
)


def registry() -> dict[str, type[Perturber]]:
    """Built-in perturber classes by short name (``"blur"`` -> :class:`GaussianBlur`)."""
    return {cls.name: cls for cls in _BUILTINS}


def by_name(name: str) -> type[Perturber]:
    """The built-in perturber class called ``name`` (short name or class name).

    Raises
    ------
    ProbeKeyError
        For an unknown name; the message lists the known ones.
    """
    known = registry()
    if name in known:
        return known[name]
    for cls in _BUILTINS:
        if cls.__name__ == name:
            return cls
    raise ProbeKeyError(f"unknown perturber {name!r}; known: {names_list(sorted(known))}")


PerturberFactory = Callable[[float], Perturber]


def factory(perturber: Any) -> tuple[PerturberFactory, str, str, str]:
    """Turn a sweep's ``perturber`` argument into ``value -> Perturber`` plus labels.

    Accepts a :class:`Perturber` subclass (built with each value), a built-in short name
    (``"blur"``), or a function ``f(images, value, rng)``. Returns the factory, a description,
    the swept parameter's name and its unit.
    """
    if isinstance(perturber, str):
        perturber = by_name(perturber)
    if isinstance(perturber, type) and issubclass(perturber, Perturber):
        cls = perturber
        return cls, cls.__name__, f"{cls.__name__} {cls.parameter}", cls.unit
    if isinstance(perturber, Perturber):
        raise ProbeTypeError(
            f"perturber must be a Perturber class (built with each value), not the instance "
            f"{perturber!r}; pass {type(perturber).__name__}"
        )
    if callable(perturber):
        func = perturber

        def build(value: float) -> Perturber:
            return FromCallable(func, value)

        return build, _describe(func), "value", ""
    raise ProbeTypeError(
        f"perturber must be a Perturber class, a built-in name or a function "
        f"(images, value, rng) -> images; got {perturber!r}"
    )
