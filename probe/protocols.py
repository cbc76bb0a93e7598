"""The interfaces probe needs from the outside world, as structural :class:`typing.Protocol`\\ s.

probe never imports a simulator. Any object with these four methods (``simlens.Simulator``
among them) can drive :meth:`probe.Probe.resimulate`; no subclassing is needed.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from probe.rng import RngLike


@runtime_checkable
class SimulatorProtocol(Protocol):
    """What :meth:`probe.Probe.resimulate` calls on a simulator.

    A *truth table* is a :class:`pandas.DataFrame` with one row per system that fully describes
    its image (rendering it again gives the same image). It may carry a ``label`` column
    (1 lens, 0 non-lens); otherwise probe labels lenses 1 and non-lenses 0 by where they came from.
    """

    def sample_lenses(self, n: int, *, rng: RngLike, **controls: Any) -> pd.DataFrame:
        """Draw the truth table of ``n`` lens systems; ``controls`` fix parameters (psf_scale)."""
        ...

    def sample_nonlenses(self, n: int, *, rng: RngLike, **controls: Any) -> pd.DataFrame:
        """Draw the truth table of ``n`` non-lenses (lens-only controls are not accepted)."""
        ...

    def render(self, truth: pd.DataFrame, *, noise: bool = True) -> np.ndarray:
        """Images of the rows of ``truth``: float32, ``(n, H, W, C)``, channels-last."""
        ...

    def vary(self, truth: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
        """The same systems with only control ``name`` set to ``value`` (paired re-simulation)."""
        ...


@runtime_checkable
class ScoreModel(Protocol):
    """A model as probe calls it: a batch of images in, one or two scores per image out."""

    def __call__(self, images: np.ndarray, /) -> Any:
        """Return scores of shape (n,), (n, 1) or (n, k); see :mod:`probe.adapters.models`."""
        ...
