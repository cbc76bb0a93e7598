"""The lensed source on the image plane: ray tracing a source through a lens, pixel-integrated.

:func:`lensed_source_grid` ray-traces a Sersic source (optionally with clumps,
:mod:`simlens.physics.knots`) through the lens profiles of :mod:`simlens.physics.profiles`
(lenstronomy's conventions: angles in arcsec, ``x`` with the column index, ``y`` with the row)
with adaptive supersampling, and memoises the grid per process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from simlens.physics.knots import knot_sampler
from simlens.physics.profiles import phi_q, ray_shoot, sersic_surface_brightness

__all__ = ["LensedSourceGrid", "cached_grid", "clear_grid_cache", "lensed_source_grid"]

Array = NDArray[np.float64]

_MAX_SUPERSAMPLING = 64  # per axis, for sources far smaller than a pixel
_MAX_POINTS = 1 << 17  # ray-traced points per batch (memory of the temporaries)


class LensedSourceGrid:
    """Pixel-integrated lensed source on a patch of the image plane (no PSF).

    Attributes
    ----------
    image : ndarray (ny, nx)
        Flux per pixel (pixel-integrated surface brightness), in the source's flux units.
    x0, y0 : int
        Column and row of ``image[0, 0]`` in the stamp grid (may be negative or outside).
    pixel_scale : float
        Arcsec per pixel.
    moments : ndarray (4, 4, ny, nx)
        ``moments[q, p]`` is the pixel's ``sum(flux * dx**p * dy**q)`` over its sub-samples,
        with ``dx, dy`` the offsets from the pixel centre in pixels (``moments[0, 0]`` is
        ``image``); the renderer uses them (total order <= 3) to apply the PSF as if on the
        sub-pixel grid. Pixels left at their centre value count as uniform.
    """

    __slots__ = ("image", "moments", "pixel_scale", "x0", "y0")

    def __init__(
        self, image: Array, x0: int, y0: int, pixel_scale: float, moments: Array | None = None
    ) -> None:
        self.image = image
        self.x0 = x0
        self.y0 = y0
        self.pixel_scale = pixel_scale
        if moments is None:
            moments = np.zeros((4, 4, *image.shape))
            moments[0, 0] = image
            moments[2, 0] = moments[0, 2] = image / 12.0
        self.moments = moments

    @property
    def flux(self) -> float:
        """Total lensed flux on the patch."""
        return float(self.image.sum())


def _subpixel_offsets(ss: int) -> Array:
    return (np.arange(ss) + 0.5) / ss - 0.5


def lensed_source_grid(
    *,
    theta_E: float,
    e1_mass: float,
    e2_mass: float,
    center_x_mass: float,
    center_y_mass: float,
    R_sersic: float,
    n_sersic: float,
    e1_source: float,
    e2_source: float,
    center_x_source: float,
    center_y_source: float,
    flux: float,
    npix: int,
    pixel_scale: float,
    supersampling: int = 3,
    refine_threshold: float = 1e-3,
    extent: float = 8.0,
    knots: tuple[int, float, float, int] | None = None,
    gamma_slope: float = 2.0,
    gamma_ext: float = 0.0,
    psi_ext: float = 0.0,
) -> LensedSourceGrid:
    """Ray-trace a Sersic source through an SIE and integrate it over the pixels of a patch.

    ``gamma_slope``, ``gamma_ext``, ``psi_ext``: power-law slope and external shear (see
    :func:`simlens.physics.profiles.deflection`; the defaults are the plain SIE). See
    :func:`_trace_grid` for the method. Results are memoised per process (the
    sampler computes the magnification from the very grid the renderer needs next, so
    ``Simulator.lenses`` ray-traces each system once); the returned image is read-only.
    ``knots = (n_knots, knot_fraction, knot_sigma, seed)`` makes the source clumpy (see
    :mod:`simlens.physics.sources`); ``None`` or zero knots keep the smooth Sersic.
    """
    if knots is not None and (int(knots[0]) <= 0 or float(knots[1]) <= 0.0):
        knots = None
    kn = None if knots is None else (int(knots[0]), float(knots[1]), float(knots[2]), int(knots[3]))
    args = locals()
    key = tuple(float(args[name]) for name in _GRID_KEYS)
    return cached_grid(key, int(npix), int(supersampling), kn)


def clear_grid_cache() -> None:
    """Drop the memoised grids of :func:`lensed_source_grid` (each ~0.1 MB).

    A chunk of a generated set needs its own lenses' grids only (sampled, then rendered);
    clearing after each chunk keeps a long run's memory flat in the number of chunks.
    """
    cached_grid.cache_clear()


# the float arguments of lensed_source_grid, in the order of the memo key
_GRID_KEYS = (
    "theta_E", "e1_mass", "e2_mass", "center_x_mass", "center_y_mass", "R_sersic", "n_sersic",
    "e1_source", "e2_source", "center_x_source", "center_y_source", "flux", "pixel_scale",
    "refine_threshold", "extent", "gamma_slope", "gamma_ext", "psi_ext",
)  # fmt: skip


@lru_cache(maxsize=2048)
def cached_grid(
    key: tuple[float, ...],
    npix: int,
    supersampling: int,
    knots: tuple[int, float, float, int] | None = None,
) -> LensedSourceGrid:
    """The memoised body of :func:`lensed_source_grid` (``key``: its float arguments)."""
    grid = _trace_grid(
        _System(**dict(zip(_GRID_KEYS, key)), npix=npix, supersampling=supersampling, knots=knots)
    )
    grid.image.setflags(write=False)
    grid.moments.setflags(write=False)
    return grid


@dataclass(frozen=True)
class _System:
    """The arguments of :func:`lensed_source_grid`: lens, source (arcsec), patch and sampling."""

    theta_E: float
    e1_mass: float
    e2_mass: float
    center_x_mass: float
    center_y_mass: float
    R_sersic: float
    n_sersic: float
    e1_source: float
    e2_source: float
    center_x_source: float
    center_y_source: float
    flux: float
    npix: int
    pixel_scale: float
    supersampling: int
    refine_threshold: float
    extent: float
    knots: tuple[int, float, float, int] | None
    gamma_slope: float
    gamma_ext: float
    psi_ext: float

    def ray_shoot(self, x: Array, y: Array) -> tuple[Array, Array]:
        """Source-plane positions of image-plane points ``(x, y)`` (arcsec)."""
        return ray_shoot(
            x, y, self.theta_E, self.e1_mass, self.e2_mass, self.center_x_mass,
            self.center_y_mass, gamma_slope=self.gamma_slope, gamma_ext=self.gamma_ext,
            psi_ext=self.psi_ext,
        )  # fmt: skip


@dataclass(frozen=True)
class _SourceLight:
    """Unit-flux surface brightness of the source plane: Sersic, plus clumps if any."""

    system: _System
    knot_sb: Callable[[Array, Array], Array] | None = None
    f_knot: float = 0.0
    knot_reach: float = 0.0  # arcsec
    knot_sigma: float = math.inf  # arcsec

    @classmethod
    def of(cls, s: _System) -> _SourceLight:
        if s.knots is None:
            return cls(s)
        f_knot, knot_sigma = s.knots[1], s.knots[2]
        knot_sb, knot_reach = knot_sampler(
            s.knots[0], s.R_sersic, knot_sigma, s.e1_source, s.e2_source, s.knots[3]
        )
        return cls(s, knot_sb, f_knot, knot_reach, knot_sigma)

    def __call__(self, bx: Array, by: Array) -> Array:
        s = self.system
        sb = sersic_surface_brightness(
            bx, by, 1.0, s.R_sersic, s.n_sersic, s.e1_source, s.e2_source, s.center_x_source,
            s.center_y_source,
        )  # fmt: skip
        if self.knot_sb is None:
            return sb
        return (1.0 - self.f_knot) * sb + self.f_knot * self.knot_sb(
            bx - s.center_x_source, by - s.center_y_source
        )


def _trace_grid(s: _System) -> LensedSourceGrid:
    """Ray-trace a Sersic source through a lens and integrate it over the pixels of a patch.

    Adaptive supersampling: every pixel of the patch is first sampled at its centre; pixels
    brighter than ``refine_threshold`` times the brightest sample, pixels whose footprint can
    reach the source's core in the source plane, and their neighbours, are integrated on an
    ``ss`` x ``ss`` sub-grid with ``ss = supersampling * ceil(pixel / (0.75 R_minor))`` (so the
    sub-pixel spacing resolves sources smaller than a pixel; at most 64). The faint rest keeps
    its centre value (an error below ``refine_threshold`` of the peak, spread smoothly). The
    patch is aligned with the pixel grid of an ``npix`` x ``npix`` stamp whose centre is the
    origin, and covers every image of the source out to ``extent`` Sersic radii, independently
    of ``npix``, so that its total flux is the lensed flux even where the stamp truncates it.

    Parameters are lenstronomy's (arcsec); ``flux`` is the unlensed total flux of the source.
    With ``knots``, a fraction of the light is in clumps: an image of the source plane drawn
    by galsim (:func:`simlens.physics.knots.knot_sampler`) sampled at the ray-traced positions;
    the sub-pixel spacing then also resolves the clumps' sigma.
    """
    light = _SourceLight.of(s)
    _, q = phi_q(s.e1_mass, s.e2_mass)
    _, q_s = phi_q(s.e1_source, s.e2_source)
    # external shear stretches images by up to 1 / (1 - gamma_ext); shallow or steep slopes
    # move them by a fraction of theta_E
    shear_stretch = 1.0 / max(1.0 - abs(s.gamma_ext), 0.2) + abs(s.gamma_slope - 2.0)
    col_lo, row_lo, xc, yc = _patch(s, light, float(q), float(q_s), shear_stretch)
    # detection pass: one sample per pixel centre
    xg, yg = np.broadcast_arrays(xc[None, :], yc[:, None])
    bx, by = s.ray_shoot(xg, yg)
    img = light(bx, by)
    iy, ix = _pixels_to_refine(
        s, light, img, (xg, yg), (bx, by), float(q), float(q_s), shear_stretch
    )
    mom = _refined_moments(s, light, img, xc, yc, iy, ix, float(q_s))
    return LensedSourceGrid(mom[0, 0], col_lo, row_lo, s.pixel_scale, mom)


def _patch(
    s: _System, light: _SourceLight, q: float, q_s: float, shear_stretch: float
) -> tuple[int, int, Array, Array]:
    """First column and row of the patch on the stamp grid, and its pixel centres (arcsec)."""
    beta = float(np.hypot(s.center_x_source - s.center_x_mass, s.center_y_source - s.center_y_mass))
    r_src = max(s.extent * s.R_sersic / np.sqrt(q_s) * max(1.0, s.n_sersic), light.knot_reach)
    # Images of an SIE lie inside ~theta_E / sqrt(q) + |beta| of the lens; sources far outside
    # the Einstein radius are only weakly lensed and sit near their true position.
    half = 1.15 * s.theta_E / np.sqrt(q) * shear_stretch + beta + r_src + 2.0 * s.pixel_scale
    c0 = (s.npix - 1) / 2.0  # stamp centre in pixel coordinates
    ps = s.pixel_scale
    col_lo = int(np.floor(c0 + (s.center_x_mass - half) / ps))
    col_hi = int(np.ceil(c0 + (s.center_x_mass + half) / ps))
    row_lo = int(np.floor(c0 + (s.center_y_mass - half) / ps))
    row_hi = int(np.ceil(c0 + (s.center_y_mass + half) / ps))
    xc = np.asarray((np.arange(col_lo, col_hi + 1) - c0) * ps, dtype=np.float64)
    yc = np.asarray((np.arange(row_lo, row_hi + 1) - c0) * ps, dtype=np.float64)
    return col_lo, row_lo, xc, yc


def _pixels_to_refine(
    s: _System,
    light: _SourceLight,
    img: Array,
    image_xy: tuple[Array, Array],
    source_xy: tuple[Array, Array],
    q: float,
    q_s: float,
    shear_stretch: float,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows and columns of the pixels to supersample: bright ones, their neighbours, and those
    whose footprint can reach the source's core."""
    (xg, yg), (bx, by) = image_xy, source_xy
    peak = float(img.max())
    # A source smaller than a pixel can fall between pixel centres: also mark pixels whose
    # footprint, mapped to the source plane, can reach the source's core. A pixel there spans
    # ~p radially (SIE radial magnification ~1) and ~p |1 - theta_E / r| tangentially.
    r_lens = np.hypot(xg - s.center_x_mass, yg - s.center_y_mass)
    stretch = shear_stretch * np.maximum(
        1.0, 1.2 * s.theta_E / (np.sqrt(q) * np.maximum(r_lens, 1e-3))
    )
    reach = 0.75 * s.pixel_scale * stretch
    core = max(3.0 * s.R_sersic / np.sqrt(q_s), light.knot_reach)
    near = np.hypot(bx - s.center_x_source, by - s.center_y_source) < core + reach
    bright = img > s.refine_threshold * peak if peak > 0 else np.zeros_like(near)
    # neighbours of bright pixels too: a feature narrower than a pixel can sit between centres
    grow = near | bright
    grow[1:, :] |= bright[:-1, :]
    grow[:-1, :] |= bright[1:, :]
    grow[:, 1:] |= bright[:, :-1]
    grow[:, :-1] |= bright[:, 1:]
    iy, ix = np.nonzero(grow)
    return iy, ix


def _refined_moments(
    s: _System,
    light: _SourceLight,
    img: Array,
    xc: Array,
    yc: Array,
    iy: NDArray[np.intp],
    ix: NDArray[np.intp],
    q_s: float,
) -> Array:
    """Sub-pixel moments ``(4, 4, ny, nx)`` times the flux, supersampling pixels ``(iy, ix)``.

    ``img`` (the centre samples) is updated in place to the refined pixels' means.
    """
    ps = s.pixel_scale
    # sub-pixel spacing ~ a quarter of the source's minor-axis radius at the default (radial
    # magnification of an SIE is ~1, so arcs stay that thin in the image plane; a cruder grid
    # aliases the exponential's central cusp: 1.3% flux error at spacing r_minor / 2)
    r_minor = min(s.R_sersic * np.sqrt(q_s), 2.0 * light.knot_sigma)
    ss = min(s.supersampling * max(1, math.ceil(ps / (0.75 * r_minor))), _MAX_SUPERSAMPLING)
    o = _subpixel_offsets(ss) * ps
    step = max(1, _MAX_POINTS // (ss * ss))  # bound temporaries for very fine grids
    # sub-pixel moments sum(I dx^p dy^q) / ss^2 (offsets in pixels): unrefined pixels count as
    # uniform (dx^2 and dy^2 average 1/12), refined ones get them from their sub-samples
    mom = np.zeros((4, 4, *img.shape))
    mom[2, 0] = mom[0, 2] = img / 12.0
    mom[:, :, iy, ix] = 0.0
    u = _subpixel_offsets(ss)
    powers = np.stack([u**p for p in range(4)], axis=1) / ss  # (ss, 4)
    for k in range(0, iy.size, step):
        jy, jx = iy[k : k + step], ix[k : k + step]
        fx, fy = np.broadcast_arrays(
            xc[jx][:, None, None] + o[None, None, :], yc[jy][:, None, None] + o[None, :, None]
        )
        vals = light(*s.ray_shoot(fx, fy))  # (k, ss_y, ss_x)
        # sum over x, then y, as two matrix products (einsum's path search alone cost ~0.3 ms)
        m = np.moveaxis(powers.T @ (vals @ powers), 0, -1)
        mom[:, :, jy, jx] = m
        img[jy, jx] = vals.mean(axis=(1, 2))  # as before the moments: same bits
    mom[0, 0] = img
    mom *= s.flux * ps**2
    return mom
