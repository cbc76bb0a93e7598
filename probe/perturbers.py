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
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from probe.errors import ProbeKeyError, ProbeTypeError, ProbeValueError
from probe.rng import RngLike
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


def _as_images(images: Any) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ProbeTypeError(f"images must be 4-D (n, H, W, C); got shape {arr.shape}")
    return arr


def _float_dtype(dtype: np.dtype) -> np.dtype:
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
        arr = _as_images(images)
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
        return _float_dtype(dtype)


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
