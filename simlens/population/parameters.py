"""The numbers of the LensPop-style population relations, read from ``catalogs/population.toml``.

:class:`PopulationParameters` holds each entry's ``value`` (units and sources stay in the file,
see ``docs/population.md``); :func:`load_population_parameters` builds and validates it from a
parsed catalogue and :func:`population_parameters` loads the shipped file once per process.
:mod:`simlens.population.relations` uses them and re-exports all three names.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields
from typing import Any

from simlens._catalogs import load_toml
from simlens.errors import SimlensValueError

__all__ = ["PopulationParameters", "load_population_parameters", "population_parameters"]


@dataclass(frozen=True)
class PopulationParameters:
    """Numbers of the population relations, loaded from ``catalogs/population.toml``.

    Attributes carry the ``value`` of each catalogue entry; units and sources stay in the file
    (see ``docs/population.md``). Tuples hold polynomial coefficients in increasing order.
    """

    vdf_phi_star: float  # h^3 Mpc^-3
    vdf_sigma_star: float  # km/s
    vdf_alpha: float
    vdf_beta: float
    sigma_mag_coefficients: tuple[float, float, float]  # log10 sigma = c0 + c1 M + c2 M^2
    lens_mag_scatter: float  # mag
    size_sigma_coefficients: tuple[float, float, float]  # log10 R_e/kpc = r0 + r1 V + r2 V^2
    lens_size_scatter: float  # dex
    lens_sigma_max: float  # km/s
    lens_q_scale_intercept: float
    lens_q_scale_slope: float  # (km/s)^-1
    lens_q_min: float
    source_count_slope: float  # dex/mag
    source_z0_slope: float  # 1/mag
    source_z0_intercept: float
    source_gamma_shape: float
    source_r_ref: float  # kpc
    source_mag_ref: float  # mag
    source_z_ref: float
    source_luminosity_slope: float
    source_evolution_slope: float
    source_size_scatter: float  # dex
    source_q_scale: float
    source_q_min: float

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise SimlensValueError(f"population.toml: {what}")

        need(self.vdf_phi_star > 0, "vdf.phi_star must be > 0")
        need(self.vdf_sigma_star > 0, "vdf.sigma_star must be > 0 km/s")
        need(self.vdf_alpha > 0 and self.vdf_beta > 0, "vdf.alpha and vdf.beta must be > 0")
        need(len(self.sigma_mag_coefficients) == 3, "sigma_mag_coefficients needs 3 numbers")
        need(self.sigma_mag_coefficients[2] < 0, "sigma_mag_coefficients[2] must be < 0")
        need(len(self.size_sigma_coefficients) == 3, "size_sigma_coefficients needs 3 numbers")
        need(self.lens_mag_scatter >= 0, "lens_light.mag_scatter must be >= 0 mag")
        need(self.lens_size_scatter >= 0, "lens_light.size_scatter must be >= 0 dex")
        need(self.lens_sigma_max > 0, "lens_light.sigma_max must be > 0 km/s")
        need(
            self.lens_q_scale_intercept + self.lens_q_scale_slope * self.lens_sigma_max > 0,
            "lens_shape: Rayleigh scale must stay > 0 up to lens_light.sigma_max",
        )
        need(0 < self.lens_q_min < 1, "lens_shape.q_min must be in (0, 1)")
        c0, c1, c2 = self.sigma_mag_coefficients
        need(
            c1 * c1 - 4.0 * c2 * (c0 - math.log10(self.lens_sigma_max)) >= 0,
            "lens_light.sigma_max must lie below the turnover of the sigma-M_r relation",
        )
        need(self.source_count_slope > 0, "source_counts.slope must be > 0 dex/mag")
        need(self.source_z0_slope > 0, "source_redshift.z0_slope must be > 0")
        need(self.source_gamma_shape > 0, "source_redshift.gamma_shape must be > 0")
        need(self.source_r_ref > 0, "source_size.r_ref must be > 0 kpc")
        need(self.source_z_ref >= 0, "source_size.z_ref must be >= 0")
        need(self.source_size_scatter >= 0, "source_size.scatter must be >= 0 dex")
        need(self.source_q_scale > 0, "source_shape.rayleigh_scale must be > 0")
        need(0 < self.source_q_min < 1, "source_shape.q_min must be in (0, 1)")
        for f in fields(self):
            v = getattr(self, f.name)
            vals = v if isinstance(v, tuple) else (v,)
            need(all(math.isfinite(x) for x in vals), f"{f.name} must be finite")

    @property
    def source_mag_min(self) -> float:
        """Faintest-allowed lower magnitude bound: z0(i) = a i + b must stay > 0 (AB mag)."""
        return -self.source_z0_intercept / self.source_z0_slope


_MAPPING: dict[str, tuple[str, str]] = {
    "vdf_phi_star": ("vdf", "phi_star"),
    "vdf_sigma_star": ("vdf", "sigma_star"),
    "vdf_alpha": ("vdf", "alpha"),
    "vdf_beta": ("vdf", "beta"),
    "sigma_mag_coefficients": ("lens_light", "sigma_mag_coefficients"),
    "lens_mag_scatter": ("lens_light", "mag_scatter"),
    "size_sigma_coefficients": ("lens_light", "size_sigma_coefficients"),
    "lens_size_scatter": ("lens_light", "size_scatter"),
    "lens_sigma_max": ("lens_light", "sigma_max"),
    "lens_q_scale_intercept": ("lens_shape", "rayleigh_scale_intercept"),
    "lens_q_scale_slope": ("lens_shape", "rayleigh_scale_slope"),
    "lens_q_min": ("lens_shape", "q_min"),
    "source_count_slope": ("source_counts", "slope"),
    "source_z0_slope": ("source_redshift", "z0_slope"),
    "source_z0_intercept": ("source_redshift", "z0_intercept"),
    "source_gamma_shape": ("source_redshift", "gamma_shape"),
    "source_r_ref": ("source_size", "r_ref"),
    "source_mag_ref": ("source_size", "mag_ref"),
    "source_z_ref": ("source_size", "z_ref"),
    "source_luminosity_slope": ("source_size", "luminosity_slope"),
    "source_evolution_slope": ("source_size", "evolution_slope"),
    "source_size_scatter": ("source_size", "scatter"),
    "source_q_scale": ("source_shape", "rayleigh_scale"),
    "source_q_min": ("source_shape", "q_min"),
}


def _entry_value(table: dict[str, Any], section: str, key: str) -> Any:
    """The ``value`` of ``[section] key``, checking that unit and source are given."""
    node: Any = table
    for part in section.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SimlensValueError(f"population.toml: missing section [{section}]")
        node = node[part]
    entry = node.get(key) if isinstance(node, dict) else None
    if not isinstance(entry, dict) or not {"value", "unit", "source"} <= entry.keys():
        raise SimlensValueError(
            f"population.toml: [{section}] {key} must be a table with value, unit and source"
        )
    if not str(entry["source"]).strip():
        raise SimlensValueError(f"population.toml: [{section}] {key} has an empty source")
    return entry["value"]


def load_population_parameters(table: dict[str, Any] | None = None) -> PopulationParameters:
    """Build and validate :class:`PopulationParameters` from a parsed catalogue.

    Parameters
    ----------
    table : dict, optional
        Parsed TOML with the layout of ``catalogs/population.toml``; the shipped file when
        omitted.

    Returns
    -------
    PopulationParameters
        Frozen, validated parameters.

    Raises
    ------
    SimlensValueError
        An entry is missing, lacks a unit or source, or holds a value outside its valid range.
    """
    if table is None:
        table = load_toml("population.toml")
    kwargs: dict[str, Any] = {}
    for name, (section, key) in _MAPPING.items():
        v = _entry_value(table, section, key)
        if isinstance(v, list):
            kwargs[name] = tuple(float(x) for x in v)
        else:
            try:
                kwargs[name] = float(v)
            except (TypeError, ValueError):
                raise SimlensValueError(
                    f"population.toml: [{section}] {key} must be a number, got {v!r}"
                ) from None
    return PopulationParameters(**kwargs)


_PARAMS_LOCK = threading.Lock()
_PARAMS: list[PopulationParameters] = []


def population_parameters() -> PopulationParameters:
    """The shipped parameters, loaded from ``catalogs/population.toml`` once per process."""
    with _PARAMS_LOCK:
        if not _PARAMS:
            _PARAMS.append(load_population_parameters())
        return _PARAMS[0]
