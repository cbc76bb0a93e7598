"""Block seeding of the samplers: entropy, per-block generators, per-row render seeds.

Object ``i`` of a call with seed ``s`` is drawn from the generator of its block ``i // BLOCK``
(``SeedSequence(s, spawn_key=(block, 0, stream))``), so the rows of ``n = 1000`` are a prefix of
the rows of ``n = 2000`` and a cluster can draw blocks independently (``start=``); each row also
carries its own render seed (``SeedSequence(s, spawn_key=(i, 1))``) used for noise only. Also
holds ``_control_values``, which draws a control's values for one block.
:mod:`simlens.sampling.truth`
re-exports every name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from simlens.errors import SimlensValueError
from simlens.sampling.controls import Control

__all__ = ["BLOCK", "resolve_entropy", "row_seeds", "value_rng"]

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
        st = np.random.SeedSequence(entropy, spawn_key=(start + k, 1)).generate_state(2, np.uint32)
        out[k] = (int(st[0]) << 31) ^ int(st[1])
    return out


def _block_rng(entropy: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(block, 0, stream)))


def _iterate_blocks(
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
        df = draw(BLOCK, _block_rng(entropy, b, stream), slice(lo, hi))
        a, z = max(start, lo) - lo, min(start + n, hi) - lo
        parts.append(df.iloc[a:z])
    return pd.concat(parts, ignore_index=True)


def _control_values(
    ctrl: Control, rng: np.random.Generator, rows: slice, m: int, start: int
) -> F64 | None:
    u = rng.random(m)  # always consumed, so adding a control never shifts other draws
    if ctrl.kind == "array":
        idx = np.arange(rows.start, rows.stop) - start
        v = np.full(m, np.nan)
        ok = (idx >= 0) & (idx < ctrl.values.size)
        v[ok] = ctrl.values[idx[ok]]
        return v
    return ctrl.draw(u)


def value_rng(*values: float, stream: int = 0) -> np.random.Generator:
    """A generator seeded by an object's own drawn values (their float64 bits) and ``stream``.

    For per-object randomness that must depend on the object only (never on the other rows,
    the chunking, or how far a shared generator has advanced).
    """
    bits = np.asarray(values, dtype=np.float64).view(np.uint32)
    return np.random.default_rng(np.random.SeedSequence([int(stream), *(int(b) for b in bits)]))
