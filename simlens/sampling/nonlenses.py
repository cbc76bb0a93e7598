"""Truth tables of non-lenses: ellipticals, stars and the kinds of :mod:`simlens.sampling.kinds`.

Randomness as for lenses (:mod:`simlens.sampling.truth`): blocks of the kind's own block stream
(:mod:`simlens.streams`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology

from simlens.errors import SimlensValueError
from simlens.sampling.basic_kinds import elliptical_columns, star_columns
from simlens.sampling.controls import parse_control
from simlens.sampling.kinds import draw_kind
from simlens.sampling.seeding import control_values, iterate_blocks, resolve_entropy, row_seeds
from simlens.sampling.settings import SamplerSettings
from simlens.sampling.table import check_n, order_columns, with_neighbours, with_psf_columns
from simlens.schema import empty_components
from simlens.streams import NONLENS_STREAM_BASE
from simlens.survey import Survey

__all__ = ["MAG_LENS_KINDS", "NONLENS_KINDS", "sample_nonlenses"]

NONLENS_KINDS = ("elliptical", "star", "spiral", "merger", "ring", "blue_companion", "field")
MAG_LENS_KINDS = ("elliptical", "ring", "blue_companion")


def sample_nonlenses(
    n: int,
    *,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    rng: np.random.Generator | int | None = 0,
    kind: str = "elliptical",
    psf_scale: Any = 1.0,
    mag_lens_r: Any = None,
    start: int = 0,
    neighbours: bool = True,
) -> pd.DataFrame:
    """Truth table of ``n`` non-lenses of ``kind``.

    ``"elliptical"``: lens-like massive ellipticals, drawn exactly as the deflectors of
    :func:`sample_lenses` (same cross-section-weighted population) with no source and no mass,
    the negatives of the paper's Network A. ``mag_lens_r`` fixes their r magnitude as for lenses.
    ``"star"``: a point source with high-latitude star counts and colours on the stellar locus.
    ``"spiral"``, ``"merger"``, ``"ring"``, ``"blue_companion"`` and the ``"field"`` mixture:
    see :mod:`simlens.sampling.kinds` (``mag_lens_r`` also fixes the elliptical of ``"ring"`` and
    ``"blue_companion"``). ``neighbours`` adds interlopers (:mod:`simlens.sampling.neighbours`).
    """
    check_n(n)
    if kind not in NONLENS_KINDS:
        raise SimlensValueError(f"kind must be one of {NONLENS_KINDS}, got {kind!r}")
    if kind not in MAG_LENS_KINDS and mag_lens_r is not None:
        raise SimlensValueError(
            f"mag_lens_r applies to kind in {MAG_LENS_KINDS} only, not {kind!r} "
            "(it fixes the r magnitude of a lens-like elliptical)"
        )
    cfg = SamplerSettings.load()
    c_psf = parse_control("psf_scale", psf_scale, n)
    c_ml = parse_control("mag_lens_r", mag_lens_r, n)
    entropy = resolve_entropy(rng)
    bands = survey.band_names
    stream = NONLENS_STREAM_BASE + NONLENS_KINDS.index(kind)

    def draw(m: int, brng: np.random.Generator, rows: slice) -> pd.DataFrame:
        ps = control_values(c_psf, brng, rows, m, start)
        ml = control_values(c_ml, brng, rows, m, start)
        assert ps is not None
        ps = np.where(np.isnan(ps), 1.0, ps)
        df = pd.DataFrame(empty_components(m, bands))
        if kind == "elliptical":
            elliptical_columns(df, m, brng, cosmology, cfg, ml, bands)
        elif kind == "star":
            star_columns(df, m, brng, cfg, bands)
        else:
            df = draw_kind(kind, df, m, brng, cosmology, cfg, ml, bands).copy()  # defragment
        df = with_psf_columns(df, survey, ps, brng)
        df["label"] = 0
        if kind != "field":  # field rows carry the kind each was drawn as
            df["kind"] = kind
        return df

    out = iterate_blocks(n, start, entropy, stream, draw)
    out["seed"] = row_seeds(entropy, start, n)
    return order_columns(with_neighbours(out, neighbours, survey, npix, entropy, start, stream))
