"""Seeding: one root :class:`numpy.random.SeedSequence` per call, child streams keyed by purpose.

Every random draw in probe comes from a generator derived as
``SeedSequence(entropy, spawn_key=(stream, *indices))``, so a result is reproduced from the single
integer ``entropy`` recorded in its provenance, and adding a stream never shifts another one.
The global ``np.random`` state is never touched.

Perturbations are drawn per *block* of :data:`BLOCK` consecutive images, not per model batch:
value ``j``, block ``k`` (images ``k * BLOCK`` to ``(k + 1) * BLOCK - 1``) uses the stream
``(PERTURB, j, k)``. A block is always perturbed whole, with its own generator, so the perturbed
images (and every result) are the same for any ``batch_size``.
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

RngLike: TypeAlias = np.random.Generator | int | None
"""What every ``rng`` argument accepts: a Generator, an integer seed, or None (fresh entropy)."""

# Stream identifiers: the first element of every spawn key.
PERTURB = 0
BOOTSTRAP = 1
SAMPLE = 2
TREND = 3

BLOCK = 64
"""Images per perturbation block: the unit of perturbation seeding (see the module docstring).

Part of the definition of a seeded result, like the seed itself: changing it changes the
perturbed images, so it is recorded in provenance."""


def root_entropy(rng: RngLike) -> int:
    """Reduce an ``rng`` argument to one non-negative integer that reproduces everything.

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        An integer is used as is; a Generator gives one 63-bit draw (advancing it, as any use
        would); None draws fresh OS entropy.

    Returns
    -------
    int
        The entropy of the root :class:`numpy.random.SeedSequence`, recorded in provenance.
    """
    if rng is None:
        entropy = np.random.SeedSequence().entropy
        assert isinstance(entropy, int)
        return entropy
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        from probe.errors import ProbeTypeError

        raise ProbeTypeError(
            f"rng must be a numpy Generator, an int or None; got {type(rng).__name__}"
        )
    if rng < 0:
        from probe.errors import ProbeValueError

        raise ProbeValueError(f"rng must be a non-negative integer seed; got {rng}")
    return int(rng)


def child(entropy: int, *key: int) -> np.random.Generator:
    """Generator of the stream ``key`` below the root ``entropy`` (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))
