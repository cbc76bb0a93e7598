"""Block seeding of the samplers: entropy, per-block generators, per-row render seeds.

Object ``i`` of a call with seed ``s`` is drawn from the generator of its block ``i // BLOCK``
(``SeedSequence(s, spawn_key=(block, 0, stream))``), so the rows of ``n = 1000`` are a prefix of
the rows of ``n = 2000`` and a cluster can draw blocks independently (``start=``); each row also
carries its own render seed (``SeedSequence(s, spawn_key=(i, 1))``) used for noise only. Also
holds :func:`control_values`, which draws a control's values for one block. The stream ids
live in :mod:`simlens.streams`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens.errors import SimlensValueError
from simlens.sampling.controls import Control
from simlens.streams import BLOCK_KEY, ROW_SEED_KEY

__all__ = ["BLOCK", "block_rng", "control_values", "iterate_blocks", "resolve_entropy", "row_seeds"]

BLOCK = 64

F64 = NDArray[np.float64]


def resolve_entropy(rng: np.random.Generator | int | None) -> int:
    """A non-negative integer seed from ``rng`` (an int is used as is)."""
    if rng is None:
        return int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise SimlensValueError(f"rng must be a numpy Generator, an int or None, got {rng!r}")
    if rng < 0:
        raise SimlensValueError(f"rng seed must be >= 0, got {rng}")
    return int(rng)


def row_seeds(entropy: int, start: int, n: int) -> NDArray[np.int64]:
    """Per-row render seeds (noise) for rows ``start .. start + n - 1``."""
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        seq = np.random.SeedSequence(entropy, spawn_key=(start + k, ROW_SEED_KEY))
        st = seq.generate_state(2, np.uint32)
        out[k] = (int(st[0]) << 31) ^ int(st[1])
    return out


def block_rng(entropy: int, block: int, stream: int) -> np.random.Generator:
    """The generator of block ``block`` in block stream ``stream`` (:mod:`simlens.streams`)."""
    key = (block, BLOCK_KEY, stream)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=key))


def iterate_blocks(
    n: int,
    start: int,
    entropy: int,
    stream: int,
    draw: Callable[[int, np.random.Generator, slice], pd.DataFrame],
) -> pd.DataFrame:
    """Run ``draw(m, rng, rows)`` for every block overlapping ``start .. start + n``."""
    parts = []
    first, last = start // BLOCK, (start + n - 1) // BLOCK
    for b in range(first, last + 1):
        lo, hi = b * BLOCK, (b + 1) * BLOCK
        df = draw(BLOCK, block_rng(entropy, b, stream), slice(lo, hi))
        a, z = max(start, lo) - lo, min(start + n, hi) - lo
        parts.append(df.iloc[a:z])
    return pd.concat(parts, ignore_index=True)


def control_values(
    ctrl: Control, rng: np.random.Generator, rows: slice, m: int, start: int
) -> F64 | None:
    """A control's values for the ``m`` rows ``rows`` of a block (None: the control is unset).

    Array controls give NaN on block rows outside ``start .. start + ctrl.values.size``.
    """
    u = rng.random(m)  # always consumed, so adding a control never shifts other draws
    if ctrl.kind == "array":
        idx = np.arange(rows.start, rows.stop) - start
        v = np.full(m, np.nan)
        ok = (idx >= 0) & (idx < ctrl.values.size)
        v[ok] = ctrl.values[idx[ok]]
        return v
    return ctrl.draw(u)
