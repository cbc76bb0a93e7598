"""The one registry of random stream ids: which generator every random draw of simlens uses.

Every generator is a :class:`numpy.random.SeedSequence` of the call's seed (``entropy``) and a
spawn key, or (per-object generators, :func:`value_rng`) of a stream id and an object's values.
Keeping each id here, once, keeps streams from colliding: a new stream takes an unused id.

Spawn keys (the second element says what the generator is for):

* ``(block, BLOCK_KEY, stream)``: the block generators of the samplers
  (:func:`simlens.sampling.seeding.block_rng`), ``stream`` one of the block streams below;
* ``(row, ROW_SEED_KEY)``: a row's render seed, used for its noise only
  (:func:`simlens.sampling.seeding.row_seeds`);
* ``(row, REDRAW_KEY, round)``: the redraws of one row under ``detectable=True``;
* ``(block,)``: the generator of block ``block`` (512 candidates each) of the
  detectable-fraction Monte Carlo (:func:`simlens.yields.detectable_fraction`);
* ``(KEPT_ROWS_KEY + s,)``: the entropy of the truth rows that Monte Carlo keeps,
  ``s`` = :data:`KEPT_DETECTABLE` or :data:`KEPT_OTHERS`; their render seeds and neighbours use
  the keys above under it.

Block streams: lenses :data:`LENS_STREAM`; non-lens kind ``k`` (index in
:data:`simlens.sampling.truth.NONLENS_KINDS`) ``NONLENS_STREAM_BASE + k``; side streams, so that
adding knots, a mass model or neighbours never shifts the other draws: :data:`KNOT_STREAM`,
:data:`MASS_STREAM`, and ``NEIGHBOUR_STREAM + s`` for the neighbours of the kind of stream ``s``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BLOCK_KEY",
    "EXPOSURE_STREAM",
    "KEPT_DETECTABLE",
    "KEPT_OTHERS",
    "KEPT_ROWS_KEY",
    "KNOT_STREAM",
    "LENS_STREAM",
    "MASS_STREAM",
    "NEIGHBOUR_STREAM",
    "NONLENS_STREAM_BASE",
    "REDRAW_KEY",
    "ROW_SEED_KEY",
    "value_rng",
]

# second element of a spawn key: the generator's role
BLOCK_KEY = 0
ROW_SEED_KEY = 1
REDRAW_KEY = 2

# block streams (third element of a block generator's spawn key)
LENS_STREAM = 0
NONLENS_STREAM_BASE = 1  # + the kind's index in NONLENS_KINDS (1 .. 7)
KNOT_STREAM = 1000  # source Sersic index and clumps of lenses
NEIGHBOUR_STREAM = 2000  # + the stream of the kind the neighbours belong to
MASS_STREAM = 3000  # external shear and mass slope of lenses

# one-element spawn keys of the detectable-fraction Monte Carlo (simlens.yields): (block,) for
# its blocks (block < KEPT_ROWS_KEY), (KEPT_ROWS_KEY + KEPT_*,) for the rows it keeps
KEPT_ROWS_KEY = 2**20
KEPT_DETECTABLE = 0  # the detectable lenses kept (keep_rows)
KEPT_OTHERS = 1  # the non-detectable lenses kept (keep_others)

# per-object streams (value_rng)
EXPOSURE_STREAM = 1  # the exposures drawn per lens (simlens.population.detectability)


def value_rng(*values: float, stream: int = 0) -> np.random.Generator:
    """A generator seeded by an object's own drawn values (their float64 bits) and ``stream``.

    For per-object randomness that must depend on the object only (never on the other rows,
    the chunking, or how far a shared generator has advanced).
    """
    bits = np.asarray(values, dtype=np.float64).view(np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(stream), *(int(b) for b in bits)]))
