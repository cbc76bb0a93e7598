"""Unlensed light of the field kinds, built from truth columns alone: disks, arcs, companions.

Two families, both pure functions of a truth row (random structure from the row's own
component seed, never from global state):

* **galsim profiles** (:func:`galsim_components`): the merger companion (a Sersic) and the
  neighbours (Sersic galaxies, or point sources where ``R_sersic_nb<k> == 0``), each at unit
  flux; the renderer convolves them with the PSF and the pixel response in galsim, exactly as
  the lens light.
* **pixel components** (:func:`pixel_components`): a spiral disk and an arc/ring. galsim has no
  spiral or arc profile, and an ``InterpolatedImage`` of one costs 35-100 ms per image (measured),
  so these are evaluated here on a sub-pixel grid of the image plane and integrated over the
  pixels of a patch that holds the whole profile, normalised to unit flux; the renderer then
  convolves them with the PSF in Fourier space, as it does the lensed source.

  - Spiral disk: an exponential of half-light radius ``R`` whose light in each annulus is
    redistributed in azimuth onto ``m`` logarithmic arms, ``I = I_exp(r) [(1 - f_arm) +
    f_arm w / <w>]`` with ``w = ((1 + cos(m (theta - ln(r / h) / tan(pitch) - phase))) / 2)^4``
    (``<w> = 70/256`` is its azimuthal mean, so each annulus keeps the exponential's flux), plus
    ``n_knots`` star-forming clumps: positions from galsim ``RandomKnots`` (exponential profile,
    seeded by ``seed_disk``), each a Gaussian of sigma ``0.08 R`` (at least 0.05 arcsec)
    integrated exactly over the pixels. The face-on disk is inclined by the shear ``e1, e2``
    (area-preserving, as galsim's).
  - Arc / ring: Gaussian across a circle of radius ``radius_arc`` (sigma ``width_arc``), with a
    Gaussian azimuthal profile of FWHM ``length_arc`` around ``angle_arc`` (a full ring when
    ``length_arc >= 2 pi``), sheared by ``e1_arc, e2_arc``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import galsim
import numpy as np
from numpy.typing import NDArray
from scipy.special import erf

from simlens.schema import NEIGHBOUR_PREFIXES, flux_from_mag

__all__ = ["PixelComponent", "arc_image", "disk_image", "galsim_components", "pixel_components"]

F64 = NDArray[np.float64]

_ARM_POWER = 4  # arm sharpness; azimuthal mean of ((1 + cos)/2)^4 is C(8, 4) / 4^4
_ARM_MEAN = math.comb(2 * _ARM_POWER, _ARM_POWER) / 4.0**_ARM_POWER
_DISK_KNOT_SIGMA = 0.08  # clump sigma / R_sersic_disk
_MIN_KNOT_SIGMA = 0.05  # arcsec
_EXP_HLR = 1.6783469900166608  # half-light radius / scale length of an exponential
_DISK_EXTENT = 6.0  # patch half-size in half-light radii (flux beyond: 5e-4)


def _flux(mag: float, zp: float) -> float:
    return flux_from_mag(mag, zp)


def _band_fluxes(row: Any, comp: str, bands: tuple[str, ...], zp: float) -> F64:
    return np.array([_flux(float(getattr(row, f"mag_{comp}_{b}")), zp) for b in bands])


def _inverse_shear(e1: float, e2: float) -> NDArray[np.float64]:
    """Matrix from image-plane offsets to the face-on frame of galsim's shear(g1=e1, g2=e2)."""
    g2 = e1 * e1 + e2 * e2
    if g2 >= 1.0:
        raise ValueError(f"|e| must be < 1, got e1={e1}, e2={e2}")
    # galsim: S = [[1 + g1, g2], [g2, 1 - g1]] / sqrt(1 - g^2) (unit determinant)
    f = 1.0 / math.sqrt(1.0 - g2)
    s = f * np.array([[1.0 + e1, e2], [e2, 1.0 - e1]])
    return np.asarray(np.linalg.inv(s))


class PixelComponent:
    """A unit-flux, pixel-integrated image on a patch of the stamp grid (no PSF).

    ``image[0, 0]`` is pixel (row ``y0``, column ``x0``) of the ``npix`` stamp (may lie outside).
    """

    __slots__ = ("image", "x0", "y0")

    def __init__(self, image: F64, x0: int, y0: int) -> None:
        self.image = image
        self.x0 = x0
        self.y0 = y0


def _patch(
    cx: float, cy: float, half: float, npix: int, ps: float, ss: int, pad: int
) -> tuple[F64, F64, int, int, int, int]:
    """Sub-pixel sample coordinates (arcsec, relative to (cx, cy)) of a patch around (cx, cy),
    clipped to the stamp plus ``pad`` pixels on each side (light beyond never reaches it)."""
    c0 = (npix - 1) / 2.0
    x0 = max(math.floor(c0 + (cx - half) / ps), -pad)
    x1 = max(min(math.ceil(c0 + (cx + half) / ps), npix + pad - 1), x0)
    y0 = max(math.floor(c0 + (cy - half) / ps), -pad)
    y1 = max(min(math.ceil(c0 + (cy + half) / ps), npix + pad - 1), y0)
    o = ((np.arange(ss) + 0.5) / ss - 0.5) * ps
    xs = ((np.arange(x0, x1 + 1) - c0) * ps)[:, None] + o[None, :] - cx
    ys = ((np.arange(y0, y1 + 1) - c0) * ps)[:, None] + o[None, :] - cy
    return xs.ravel(), ys.ravel(), x0, y0, x1 - x0 + 1, y1 - y0 + 1


def _bin(img: F64, ny: int, nx: int, ss: int) -> F64:
    return np.asarray(img.reshape(ny, ss, nx, ss).sum(axis=(1, 3)))


def _subsampling(size: float, ps: float) -> int:
    """Sub-pixels per axis: enough to resolve a feature of ``size`` arcsec (1 to 5)."""
    return int(min(5, max(1, math.ceil(2.0 * ps / max(size, 1e-3)))))


def _gaussian_knots(
    points: F64,
    sigma: float,
    cx: float,
    cy: float,
    x0: int,
    y0: int,
    nx: int,
    ny: int,
    npix: int,
    ps: float,
) -> F64:
    """Unit-total Gaussians at ``points`` (arcsec from (cx, cy)), exactly pixel-integrated."""
    c0 = (npix - 1) / 2.0
    xe = (np.arange(x0, x0 + nx + 1) - c0 - 0.5) * ps - cx  # pixel edges
    ye = (np.arange(y0, y0 + ny + 1) - c0 - 0.5) * ps - cy
    s = math.sqrt(2.0) * sigma
    ix = np.diff(erf((xe[None, :] - points[:, :1]) / s), axis=1) / 2.0  # (k, nx)
    iy = np.diff(erf((ye[None, :] - points[:, 1:2]) / s), axis=1) / 2.0  # (k, ny)
    return np.asarray(iy.T @ ix) / max(len(points), 1)


@lru_cache(maxsize=512)
def _knot_points(n: int, hlr: float, seed: int) -> F64:
    """Face-on clump positions (arcsec) from galsim RandomKnots (exponential profile)."""
    prof = galsim.Exponential(half_light_radius=hlr)
    knots = galsim.RandomKnots(n, profile=prof, rng=galsim.BaseDeviate(int(seed)))
    pts = np.array(knots.points, dtype=float).reshape(-1, 2)
    pts.setflags(write=False)
    return pts


def disk_image(row: Any, npix: int, ps: float, pad: int = 1 << 20) -> PixelComponent:
    """The spiral disk of ``row`` (arms and clumps), unit flux, pixel-integrated, no PSF."""
    hlr = float(row.R_sersic_disk)
    e1, e2 = float(row.e1_disk), float(row.e2_disk)
    cx, cy = float(row.center_x_disk), float(row.center_y_disk)
    q = (1.0 - math.hypot(e1, e2)) / (1.0 + math.hypot(e1, e2))
    half = _DISK_EXTENT * hlr / math.sqrt(q)
    h = hlr / _EXP_HLR
    m = int(row.n_arms_disk)
    f_arm = float(row.arm_fraction_disk) if m > 0 else 0.0
    ss = _subsampling(min(h * math.sqrt(q), hlr / max(m, 1)), ps)
    # normalised on the whole profile (sums, not the analytic total: the sampling of the
    # exponential's cusp then changes its shape, never its flux), clipped to the canvas below
    xs, ys, x0, y0, nx, ny = _patch(cx, cy, half, npix, ps, ss, 1 << 20)
    inv = _inverse_shear(e1, e2)
    X, Y = np.meshgrid(xs, ys)
    u = inv[0, 0] * X + inv[0, 1] * Y
    v = inv[1, 0] * X + inv[1, 1] * Y
    r = np.hypot(u, v)
    img = np.exp(-r / h)
    if f_arm > 0:
        theta = np.arctan2(v, u)
        tan_p = math.tan(math.radians(float(row.pitch_disk)))
        ph = m * (theta - np.log(np.maximum(r, 1e-3 * h) / h) / tan_p - float(row.phase_disk))
        w = ((1.0 + np.cos(ph)) / 2.0) ** _ARM_POWER
        img *= (1.0 - f_arm) + f_arm * w / _ARM_MEAN
    img = _bin(img, ny, nx, ss)
    img /= img.sum()
    f_knot = float(row.knot_fraction_disk)
    nk = int(row.n_knots_disk)
    if nk > 0 and f_knot > 0:
        pts = _knot_points(nk, hlr, int(row.seed_disk))
        s = np.linalg.inv(inv)
        sheared = pts @ s.T  # incline the face-on positions with the disk
        sig = max(_DISK_KNOT_SIGMA * hlr, _MIN_KNOT_SIGMA)
        kimg = _gaussian_knots(sheared, sig, cx, cy, x0, y0, nx, ny, npix, ps)
        img = (1.0 - f_knot) * img + f_knot * kimg  # erf-integrated: unit total, exactly
    return _clip(img, x0, y0, npix, pad)


def _clip(img: F64, x0: int, y0: int, npix: int, pad: int) -> PixelComponent:
    """The part of a patch on the stamp plus ``pad`` pixels."""
    ny, nx = img.shape
    c0, r0 = max(-pad - x0, 0), max(-pad - y0, 0)
    c1, r1 = min(npix + pad - x0, nx), min(npix + pad - y0, ny)
    return PixelComponent(img[r0 : max(r1, r0), c0 : max(c1, c0)], x0 + c0, y0 + r0)


def arc_image(row: Any, npix: int, ps: float, pad: int = 1 << 20) -> PixelComponent:
    """The arc or ring of ``row``, unit flux, pixel-integrated, no PSF."""
    rad, wid = float(row.radius_arc), float(row.width_arc)
    e1, e2 = float(row.e1_arc), float(row.e2_arc)
    cx, cy = float(row.center_x_arc), float(row.center_y_arc)
    q = (1.0 - math.hypot(e1, e2)) / (1.0 + math.hypot(e1, e2))
    half = (rad + 6.0 * wid) / math.sqrt(q)
    ss = _subsampling(wid * math.sqrt(q), ps)
    # normalised on the whole profile (an arc is compact), then clipped to the canvas
    xs, ys, x0, y0, nx, ny = _patch(cx, cy, half, npix, ps, ss, 1 << 20)
    inv = _inverse_shear(e1, e2)
    X, Y = np.meshgrid(xs, ys)
    u = inv[0, 0] * X + inv[0, 1] * Y
    v = inv[1, 0] * X + inv[1, 1] * Y
    img = np.exp(-0.5 * ((np.hypot(u, v) - rad) / wid) ** 2)
    length = float(row.length_arc)
    if length < 2.0 * math.pi:
        d = np.angle(np.exp(1j * (np.arctan2(v, u) - float(row.angle_arc))))
        img *= np.exp(-0.5 * (d / (length / 2.3548200450309493)) ** 2)
    img = _bin(img, ny, nx, ss)
    img /= img.sum()
    return _clip(img, x0, y0, npix, pad)


def pixel_components(
    row: Any, bands: tuple[str, ...], zp: float, npix: int, ps: float, pad: int = 1 << 20
) -> list[tuple[PixelComponent, F64]]:
    """``(unit-flux patch, flux per band)`` of the disk and the arc, where they have light,
    clipped to the stamp plus ``pad`` pixels."""
    out = []
    for comp, make in (("disk", disk_image), ("arc", arc_image)):
        fl = _band_fluxes(row, comp, bands, zp)
        if fl.any():
            out.append((make(row, npix, ps, pad), fl))
    return out


def galsim_components(
    row: Any, bands: tuple[str, ...], zp: float, canvas_reach: float
) -> list[tuple[galsim.GSObject, F64, float, float, float]]:
    """``(unit-flux galsim profile, flux per band, reach, x, y)`` of the companion and
    neighbours; the profile is centred on the origin, to be drawn at ``(x, y)`` (arcsec).

    ``reach`` (arcsec) is the radius the profile's light is drawn out to (0: the whole canvas).
    The companion is truncated beyond ``canvas_reach`` (the canvas corners) keeping the flux of
    the untruncated profile, as the lens light; neighbour profiles are truncated at ``reach``
    with their total flux in the truncated profile (so the flux drawn equals the magnitude).
    """
    out: list[tuple[galsim.GSObject, F64, float, float, float]] = []
    fl = _band_fluxes(row, "companion", bands, zp)
    if fl.any():
        obj = _sersic(
            float(row.n_sersic_companion),
            float(row.R_sersic_companion),
            float(row.e1_companion),
            float(row.e2_companion),
            canvas_reach,
            keep_untruncated=True,
        )
        out.append((obj, fl, 0.0, float(row.center_x_companion), float(row.center_y_companion)))
    for p in NEIGHBOUR_PREFIXES:
        fl = _band_fluxes(row, p, bands, zp)
        if not fl.any():
            continue
        hlr = float(getattr(row, f"R_sersic_{p}"))
        x, y = float(getattr(row, f"center_x_{p}")), float(getattr(row, f"center_y_{p}"))
        if hlr <= 0.0:
            out.append((galsim.DeltaFunction(), fl, 0.3, x, y))
            continue
        n = float(getattr(row, f"n_sersic_{p}"))
        reach = 10.0 * hlr if n <= 1.5 else 20.0 * hlr
        obj = _sersic(n, hlr, float(getattr(row, f"e1_{p}")), float(getattr(row, f"e2_{p}")), reach)
        out.append((obj, fl, reach, x, y))
    return out


_TRUNC_RATIOS = tuple(float(2 ** (k / 2)) for k in range(2, 41))


@lru_cache(maxsize=64)
def _hlr_factor(n: float) -> float:
    return float(galsim.Sersic(n=n, scale_radius=1.0).calculateHLRFactor())


def _sersic(
    n: float, hlr: float, e1: float, e2: float, reach: float, *, keep_untruncated: bool = False
) -> galsim.GSObject:
    """Sersic of unit flux (of the untruncated profile if ``keep_untruncated``, else of the
    truncated one), truncated at a listed multiple of the scale radius beyond ``reach`` (0:
    untruncated); listed ratios keep galsim's Hankel tables shared between images."""
    if n == 1.0 and not keep_untruncated:
        base: galsim.GSObject = galsim.Exponential(half_light_radius=hlr)
    else:
        r0 = hlr / _hlr_factor(n)
        ratio = next((r for r in _TRUNC_RATIOS if r * r0 >= reach), 0.0) if reach > 0 else 0.0
        base = galsim.Sersic(
            n=n, scale_radius=1.0, flux=1.0, trunc=ratio, flux_untruncated=keep_untruncated
        ).dilate(r0)
    return base.shear(g1=e1, g2=e2)
