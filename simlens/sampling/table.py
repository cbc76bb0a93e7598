"""Shared steps of the samplers: argument check, PSF columns, clumps, neighbours, column order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens.errors import SimlensValueError
from simlens.physics.psf import psf_fwhm_draws
from simlens.sampling.neighbours import neighbour_table
from simlens.sampling.settings import SamplerSettings
from simlens.schema import CRITERIA, HEAD_COLUMNS
from simlens.survey import Survey

__all__ = [
    "check_n",
    "knot_columns",
    "order_columns",
    "placeholder_row",
    "with_neighbours",
    "with_psf_columns",
]

F64 = NDArray[np.float64]


def check_n(n: int) -> None:
    """Raise unless ``n`` (a number of rows) is a positive integer."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise SimlensValueError(f"n must be a positive integer, got {n!r}")


def with_psf_columns(
    df: pd.DataFrame, survey: Survey, psf_scale: F64, rng: np.random.Generator
) -> pd.DataFrame:
    """``df`` with ``psf_scale`` and per-band PSF FWHM columns drawn from ``rng``."""
    fw = psf_fwhm_draws(survey, psf_scale, rng)
    new = {
        "psf_scale": psf_scale,
        **{f"psf_fwhm_{b}": fw[:, j] for j, b in enumerate(survey.band_names)},
    }
    # one concat (not many inserts): keeps the wide frame in few blocks
    return pd.concat(
        [df.drop(columns=[c for c in new if c in df.columns]), pd.DataFrame(new, index=df.index)],
        axis=1,
    )


def knot_columns(
    m: int, rng: np.random.Generator, cfg: SamplerSettings, source_model: str
) -> dict[str, Any]:
    """Clump columns of ``m`` sources (always drawn, so the stream never depends on the model)."""
    nk = rng.integers(int(cfg["clumpy.knots_min"]), int(cfg["clumpy.knots_max"]) + 1, m)
    fk = rng.uniform(cfg["clumpy.knot_fraction_min"], cfg["clumpy.knot_fraction_max"], m)
    seeds = rng.integers(1, 2**31 - 1, m)
    if source_model == "sersic":
        nk, fk, seeds = np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m, dtype=np.int64)
    return {"n_knots_source": nk, "knot_fraction_source": fk, "seed_source": seeds}


def with_neighbours(
    df: pd.DataFrame, on: bool, survey: Survey, npix: int, entropy: int, start: int, kind: int
) -> pd.DataFrame:
    """``df`` with the neighbour columns of its rows filled in (``on``; unchanged if not).

    ``kind`` is the block stream of the rows' kind (:mod:`simlens.streams`).
    """
    if not on:
        return df
    nb = neighbour_table(
        len(df), survey=survey, npix=npix, entropy=entropy, start=start, kind_stream=kind
    )
    return pd.DataFrame(
        {c: (nb[c].to_numpy() if c in nb.columns else df[c].to_numpy()) for c in df.columns}
    )


def placeholder_row(row: dict[str, Any], bands: tuple[str, ...]) -> dict[str, Any]:
    """A block row outside the requested range: complete in schema, never returned."""
    row.pop("_target_g", None)
    row.update(magnification=1.0, snr_source=0.0, snr_band=bands[0], resolved=False)
    row.update(fwhm_detection=0.0, **dict.fromkeys(CRITERIA, False))
    row["detectable"] = True  # never redrawn
    for b in bands:
        row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"]
    return row


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the head columns first and the dtypes of the truth-table schema."""
    cols = [*HEAD_COLUMNS, *(c for c in df.columns if c not in HEAD_COLUMNS)]
    df = df[cols].reset_index(drop=True).copy()
    df["label"] = df["label"].astype(np.int64)
    df["kind"] = df["kind"].astype(object)
    df["snr_band"] = df["snr_band"].astype(object)
    return df
