"""Draw truth tables: the LensPop-style lens population, non-lenses, and conditioning on controls.

The samplers' front module: :func:`sample_lenses` (:mod:`simlens.sampling.lenses`) and
:func:`sample_nonlenses` (:mod:`simlens.sampling.nonlenses`), with the names their callers use.

Randomness: object ``i`` of a call with seed ``s`` is drawn from the generator of its block
``i // BLOCK`` (``SeedSequence(s, spawn_key=(block, 0, stream))``, stream ids in
:mod:`simlens.streams`), so the rows of ``n = 1000`` are a prefix
of the rows of ``n = 2000`` and a cluster can draw blocks independently (``start=``). Each row
also carries its own ``seed`` (from ``SeedSequence(s, spawn_key=(i, 1))``) that the renderer uses
for noise and nothing else.

Lenses (Collett 2015, "LensPop"):

* ``sigma_v`` from the Choi et al. (2007) velocity dispersion function, ``z_lens`` from the
  comoving volume, ``z_source`` and unlensed source magnitudes from faint-galaxy counts
  (:mod:`simlens.population.relations`); a system is kept with probability ``(theta_E /
  theta_max)^2``,
  the strong-lensing cross-section, and the source centre is uniform in the disk of radius
  ``theta_E`` around the lens.
* ``theta_E`` fixed (scalar, range or array): for each object, ``theta_E_candidates`` redshift
  pairs are drawn from their priors, ``sigma_v`` is solved from ``theta_E`` for each, and one pair
  is chosen with weight ``p(sigma_v) * sigma_v`` -- the Jacobian ``d sigma / d theta_E =
  sigma / (2 theta_E)`` times the velocity dispersion function, i.e. exactly
  ``p(z_l, z_s | theta_E)`` of the cross-section-weighted population.
* ``mag_lens_r`` / ``mag_source_g`` fixed: ``candidates`` complete systems are drawn (respecting
  ``theta_E`` if fixed); one is chosen uniformly among those within ``mag_window`` of the
  requested value (the nearest if none is), and its lens light (all bands) or unlensed source
  (all bands) is shifted by the residual, so the requested magnitude is exact and the colours,
  sizes and redshifts are those of the population near that magnitude.
"""

from __future__ import annotations

from simlens.sampling.lens_systems import (
    draw_lens_systems,
    lensing_truth,
    may_be_detectable,
    row_grid,
)
from simlens.sampling.lenses import SOURCE_COLOURS, SOURCE_MODELS, sample_lenses
from simlens.sampling.nonlenses import MAG_LENS_KINDS, NONLENS_KINDS, sample_nonlenses
from simlens.sampling.seeding import BLOCK, resolve_entropy, row_seeds
from simlens.sampling.settings import SamplerSettings
from simlens.sampling.table import knot_columns, order_columns, with_neighbours, with_psf_columns

__all__ = [
    "BLOCK",
    "MAG_LENS_KINDS",
    "NONLENS_KINDS",
    "SOURCE_COLOURS",
    "SOURCE_MODELS",
    "SamplerSettings",
    "draw_lens_systems",
    "knot_columns",
    "lensing_truth",
    "may_be_detectable",
    "order_columns",
    "resolve_entropy",
    "row_grid",
    "row_seeds",
    "sample_lenses",
    "sample_nonlenses",
    "with_neighbours",
    "with_psf_columns",
]
