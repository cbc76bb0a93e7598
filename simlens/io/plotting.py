"""Colour composites and contact sheets of simulated sets.

matplotlib is imported only inside :func:`contact_sheet`, through its object API with the Agg
canvas: no pyplot state, no windows, ``plt.show`` never called.

Default stretch
---------------
:func:`colour_composite` maps (i, r, g) to (red, green, blue) with Lupton et al. (2004)'s asinh
stretch (:func:`astropy.visualization.make_lupton_rgb`). For counts at zero point 30 on DES-like
coadds the sky noise is 3-6 counts per pixel in g, r, i, a lensed arc 20-200 counts per pixel
and a lens-galaxy centre up to a few thousand. ``stretch=50`` (counts) with ``Q=8`` keeps values
below ``stretch / Q`` ~ 6 counts linear, so the noise shows as faint grain, puts arcs at
mid-grey to bright, and saturates only above ~95 ``stretch`` ~ 5000 counts, so galaxy centres
keep their colour. Bands are not rescaled: equal counts mean equal AB flux, so a flat-spectrum
(AB) source is grey, passive galaxies red and star-forming arcs blue.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.atomic import atomic_path
from simlens.io.dataset import Dataset
from simlens.io.h5format import DEFAULT_BANDS

__all__ = ["RGB_BANDS", "colour_composite", "contact_sheet"]

#: Bands shown as (red, green, blue).
RGB_BANDS = ("i", "r", "g")
DEFAULT_STRETCH = 50.0  # counts at zero point 30; see the module docstring
DEFAULT_Q = 8.0
_DPI = 100  # figure dots per inch: sizes in inches are pixels / _DPI


def colour_composite(
    images: Any,
    *,
    bands: Sequence[str] = DEFAULT_BANDS,
    rgb: Sequence[str] = RGB_BANDS,
    stretch: float = DEFAULT_STRETCH,
    Q: float = DEFAULT_Q,
    minimum: float = 0.0,
) -> np.ndarray:
    """Lupton asinh RGB composite of one image or a stack.

    Parameters
    ----------
    images : array_like
        Shape ``(H, W, C)`` or ``(n, H, W, C)``, channels in the order of ``bands``, in counts.
    bands : sequence of str
        Band of each channel.
    rgb : sequence of 3 str
        Bands shown as red, green and blue.
    stretch : float
        Linear range of the asinh stretch, in counts (> 0); see the module docstring.
    Q : float
        Asinh softening (> 0): values below ``stretch / Q`` counts are mapped linearly.
    minimum : float
        Counts mapped to black.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(H, W, 3)`` or ``(n, H, W, 3)``.
    """
    from astropy.visualization import make_lupton_rgb

    data = np.asarray(images, dtype=np.float64)
    if data.ndim not in (3, 4):
        raise SimlensValueError(
            f"images: expected shape (H, W, C) or (n, H, W, C), got {data.shape}"
        )
    bands = tuple(bands)
    if data.shape[-1] != len(bands):
        raise SimlensValueError(
            f"bands: {len(bands)} names {bands} for {data.shape[-1]} image channels"
        )
    if len(tuple(rgb)) != 3:
        raise SimlensValueError(f"rgb: expected 3 band names, got {tuple(rgb)}")
    missing = [b for b in rgb if b not in bands]
    if missing:
        raise SimlensKeyError(f"rgb: bands {missing} not among the image bands {bands}")
    for name, value in (("stretch", stretch), ("Q", Q)):
        if not (math.isfinite(value) and value > 0):
            raise SimlensValueError(f"{name}: expected a positive finite number, got {value!r}")
    if not np.isfinite(data).all():
        raise SimlensValueError("images: must be finite, found NaN or infinity")
    channels = [bands.index(b) for b in rgb]

    def one(img: np.ndarray) -> np.ndarray:
        r, g, b = (img[:, :, c] for c in channels)
        # astropy divides f(I) by I, 0/0 where the sky is exactly empty (noise-free renders);
        # those pixels are set to black by astropy itself.
        with np.errstate(invalid="ignore", divide="ignore"):
            return make_lupton_rgb(r, g, b, minimum=minimum, stretch=stretch, Q=Q)

    if data.ndim == 3:
        return one(data)
    out = np.empty((*data.shape[:3], 3), dtype=np.uint8)
    for k in range(len(data)):
        out[k] = one(data[k])
    return out


def panel_title(row: pd.Series) -> str:
    """A contact-sheet panel's title from its truth row: ``lens θE=1.30"``, ``lens`` or the kind."""
    kind = str(row["kind"]) if "kind" in row.index and pd.notna(row["kind"]) else ""
    label = int(row["label"]) if "label" in row.index and pd.notna(row["label"]) else None
    theta = row["theta_E"] if "theta_E" in row.index else None
    if label == 1 or kind == "lens":
        if theta is not None and pd.notna(theta):
            return f'lens θE={float(theta):.2f}"'
        return "lens"
    return kind or ("non-lens" if label == 0 else "")


def contact_sheet(
    images: Any,
    truth: pd.DataFrame | None = None,
    *,
    path: str | os.PathLike[str],
    ncols: int = 4,
    bands: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    panel_px: int = 160,
    stretch: float = DEFAULT_STRETCH,
    Q: float = DEFAULT_Q,
) -> Path:
    """Write a grid of colour composites as a PNG (atomically).

    Parameters
    ----------
    images : array_like or Dataset
        Shape ``(n, H, W, C)``; a Dataset brings its truth and bands.
    truth : pandas.DataFrame, optional
        One row per image; gives each panel a title such as ``lens θE=1.30"`` (label 1, with
        ``theta_E``) or the ``kind`` (``elliptical``, ``star``).
    path : str or path-like
        Output PNG; replaced if it exists.
    ncols : int
        Panels per row (>= 1); the number of rows follows from ``n``.
    bands : sequence of str, optional
        Band of each channel (default: the Dataset's, else g, r, i, z).
    titles : sequence of str, optional
        Explicit panel titles (override those from ``truth``).
    panel_px : int
        Side of each panel in pixels (>= 16). Each panel has a title strip of ``panel_px // 8``
        pixels above it, so the PNG is ``ncols * panel_px`` pixels wide and
        ``nrows * (panel_px + panel_px // 8)`` high.
    stretch, Q : float
        Passed to :func:`colour_composite`.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    if isinstance(images, Dataset):
        if truth is None:
            truth = images.truth
        bands = images.bands if bands is None else bands
        images = images.images
    bands = tuple(bands) if bands is not None else DEFAULT_BANDS
    data = np.asarray(images)
    if data.ndim != 4 or len(data) == 0:
        raise SimlensValueError(
            f"images: expected shape (n, H, W, C) with n >= 1, got {data.shape}"
        )
    n = len(data)
    for name, value, low in (("ncols", ncols, 1), ("panel_px", panel_px, 16)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise SimlensValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if truth is not None and len(truth) != n:
        raise SimlensValueError(f"truth: expected {n} rows (one per image), got {len(truth)}")
    if titles is None:
        titles = [panel_title(truth.iloc[k]) for k in range(n)] if truth is not None else [""] * n
    elif len(titles) != n:
        raise SimlensValueError(f"titles: expected {n} titles, got {len(titles)}")
    rgb = colour_composite(data, bands=bands, stretch=stretch, Q=Q)
    fig = _sheet_figure(rgb, titles, min(int(ncols), n), panel_px)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, facecolor="black")
    return Path(path)


def _sheet_figure(rgb: np.ndarray, titles: Sequence[str], ncols: int, panel_px: int) -> Any:
    """A matplotlib Figure (Agg canvas) laying out the composites ``rgb`` ``(n, H, W, 3)``.

    ``ncols`` panels per row, each ``panel_px`` pixels square under a title strip of
    ``panel_px // 8`` pixels; black background, white titles.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(rgb)
    nrows = math.ceil(n / ncols)
    title_px = panel_px // 8
    width, height = ncols * panel_px, nrows * (panel_px + title_px)
    dpi = _DPI
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="black")
    FigureCanvasAgg(fig)
    for k in range(n):
        row, col = divmod(k, ncols)
        # Axes positions in figure fractions: exact pixel placement, no layout engine.
        left = col * panel_px / width
        bottom = 1.0 - ((row + 1) * (panel_px + title_px)) / height
        ax = fig.add_axes((left, bottom, panel_px / width, panel_px / height))
        # origin="lower": row index grows upward, so truth y points up as on the sky.
        ax.imshow(rgb[k], origin="lower", interpolation="nearest")
        ax.set_axis_off()
        if titles[k]:
            fig.text(
                left + 0.5 * panel_px / width,
                bottom + (panel_px + 0.5 * title_px) / height,
                titles[k],
                color="white",
                ha="center",
                va="center",
                fontsize=max(6.0, 0.6 * title_px * 72 / dpi),
            )
    return fig
