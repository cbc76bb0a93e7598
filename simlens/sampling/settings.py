"""The samplers' settings (``catalogs/simulation.toml``) and the stellar locus they draw from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from simlens._catalogs import catalog_file, load_toml
from simlens.errors import SimlensValueError

__all__ = ["SamplerSettings", "stellar_locus"]


@cache
def _settings_table() -> dict[str, dict[str, float]]:
    raw = load_toml("simulation.toml")
    out: dict[str, dict[str, float]] = {}
    for section, entries in raw.items():
        out[section] = {}
        for key, e in entries.items():
            if not isinstance(e, dict) or not {"value", "unit", "source"} <= set(e):
                raise SimlensValueError(
                    f"catalogs/simulation.toml: {section}.{key} needs value, unit, source"
                )
            out[section][key] = float(e["value"])
    return out


@dataclass(frozen=True)
class SamplerSettings:
    """Sampler choices from ``catalogs/simulation.toml`` (see that file for sources)."""

    table: dict[str, dict[str, float]]

    @classmethod
    def load(cls) -> SamplerSettings:
        return cls(_settings_table())

    def __getitem__(self, key: str) -> float:
        section, name = key.split(".")
        return self.table[section][name]


@cache
def stellar_locus() -> NDArray[np.float64]:
    """The stellar locus (``catalogs/stellar_locus.csv``): rows of g-r, r-i, i-z (mag)."""
    text = catalog_file("stellar_locus.csv").read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    return np.array([[float(x) for x in r.split(",")] for r in rows])
