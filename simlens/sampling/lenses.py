"""Truth tables of strong lenses: the LensPop population, conditioning on controls, detectability.

:mod:`simlens.sampling.truth` (which re-exports :func:`sample_lenses`) describes the population,
the conditioning on fixed ``theta_E`` or magnitudes, and the seeding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens.errors import SimlensValueError
from simlens.physics import sed
from simlens.population.lenspop_sources import survey_source_population
from simlens.sampling.controls import Control, parse_control
from simlens.sampling.lens_systems import (
    approx_magnification,
    draw_lens_systems,
    lensing_truth,
    may_be_detectable,
    pick_nearest,
    row_grid,
)
from simlens.sampling.seeding import (
    BLOCK,
    block_rng,
    control_values,
    iterate_blocks,
    resolve_entropy,
    row_seeds,
)
from simlens.sampling.settings import SamplerSettings
from simlens.sampling.table import (
    check_n,
    knot_columns,
    order_columns,
    placeholder_row,
    with_neighbours,
    with_psf_columns,
)
from simlens.schema import empty_components, records
from simlens.streams import KNOT_STREAM, LENS_STREAM, MASS_STREAM, REDRAW_KEY
from simlens.survey import Survey

__all__ = [
    "DETECTABLE_CANDIDATES",
    "DETECTABLE_ROUNDS",
    "SOURCE_COLOURS",
    "SOURCE_MODELS",
    "sample_lenses",
]

DETECTABLE_CANDIDATES = 64  # candidates per row and round when detectable=True
DETECTABLE_ROUNDS = 40
SOURCE_MODELS = ("sersic", "clumpy")
SOURCE_COLOURS = (sed.MIXTURE, *sed.TEMPLATES)

F64 = NDArray[np.float64]

# the lens controls, in the order they are parsed (the order of their errors)
_CONTROL_NAMES = (
    "theta_E",
    "psf_scale",
    "mag_lens_r",
    "mag_source_g",
    "n_sersic_source",
    "gamma_ext",
    "psi_ext",
    "gamma_slope",
)


def sample_lenses(
    n: int,
    *,
    survey: Survey,
    cosmology: Cosmology,
    npix: int,
    rng: np.random.Generator | int | None = 0,
    theta_E: Any = None,
    psf_scale: Any = 1.0,
    mag_lens_r: Any = None,
    mag_source_g: Any = None,
    detectable: bool = False,
    start: int = 0,
    supersampling: int = 3,
    source_model: str = "sersic",
    n_sersic_source: Any = None,
    source_colour: str = "mixture",
    neighbours: bool = True,
    gamma_ext: Any = None,
    psi_ext: Any = None,
    gamma_slope: Any = None,
) -> pd.DataFrame:
    """Truth table of ``n`` strong lenses (see the module docstring for the population).

    Lens mass beyond LensPop's SIE (controls; default off): ``gamma_ext`` external shear in
    [0, 0.5] (default 0), ``psi_ext`` its angle in rad (default uniform in [0, pi) where
    ``gamma_ext`` is given), ``gamma_slope`` lenstronomy's EPL slope in [1.2, 2.8] (default 2,
    the SIE). They come from a side stream: with the defaults every other column is unchanged.

    ``source_model``: ``"sersic"`` (smooth) or ``"clumpy"`` (Sersic plus star-forming clumps,
    :mod:`simlens.physics.sources`; clump numbers, fractions and seeds from
    ``catalogs/simulation.toml``
    ``[clumpy]``, drawn from a side stream so the systems are those of ``"sersic"``).
    ``n_sersic_source``: the source's Sersic index (control: scalar, range or array, in
    [0.5, 8]; default exponential, 1). ``source_colour``: SED template of the source colours
    (one of :data:`simlens.physics.sed.TEMPLATES`). ``neighbours``: add interloping field galaxies
    and
    stars (:mod:`simlens.sampling.neighbours`).

    ``detectable=True`` keeps only systems that pass LensPop's detectability (best-band S/N
    > 20, magnification > 3, arcs resolved), redrawing the others from the population under
    the same controls, so the set is LensPop's "detectable lenses" (as the paper's training and
    test sims were). The default keeps every strongly lensed system, flagged in ``detectable``.

    Sources are the survey preset's population: LensPop's own catalogue sources for
    ``lenspop-des`` (``[lenspop] source_population``, :mod:`simlens.population.lenspop_sources`;
    then
    ``source_colour`` is unused), the deep-field model otherwise.
    """
    check_n(n)
    if survey.band_names != ("g", "r", "i", "z"):
        raise SimlensValueError(
            f"survey bands must be g, r, i, z for the lens population, got {survey.band_names}"
        )
    cfg = SamplerSettings.load()
    requested = dict(zip(_CONTROL_NAMES, (theta_E, psf_scale, mag_lens_r, mag_source_g)))
    requested |= dict(zip(_CONTROL_NAMES[4:], (n_sersic_source, gamma_ext, psi_ext, gamma_slope)))
    controls = {name: parse_control(name, requested[name], n) for name in _CONTROL_NAMES}
    _check_source_options(source_model, source_colour)
    entropy = resolve_entropy(rng)
    # the preset's source population ("lenspop" for lenspop-des, else the deep-field model)
    population = survey_source_population(survey)
    job = _LensJob(
        *(survey, cosmology, npix, supersampling, cfg, controls, requested),
        *(source_model, source_colour, population, detectable, entropy, start, n),
    )
    out = iterate_blocks(n, start, entropy, LENS_STREAM, job.draw_block)
    out["seed"] = row_seeds(entropy, start, n)
    return order_columns(
        with_neighbours(out, neighbours, survey, npix, entropy, start, LENS_STREAM)
    )


def _check_source_options(source_model: str, source_colour: str) -> None:
    if source_model not in SOURCE_MODELS:
        raise SimlensValueError(
            f"source_model must be one of {SOURCE_MODELS}, got {source_model!r}"
        )
    if source_colour not in SOURCE_COLOURS:
        raise SimlensValueError(
            f"source_colour must be one of {SOURCE_COLOURS}, got {source_colour!r}"
        )


@dataclass(frozen=True)
class _Draws:
    """The per-row inputs of candidate systems: control values and side-stream columns.

    ``theta_E``, ``mag_lens_r`` and ``mag_source_g`` are None where the control is unset.
    """

    psf_scale: F64
    theta_E: F64 | None
    mag_lens_r: F64 | None
    mag_source_g: F64 | None
    n_sersic: F64
    knots: dict[str, Any]
    mass: dict[str, F64]

    def row(self, i: int) -> _Draws:
        """The inputs of row ``i`` alone (length-1 arrays)."""

        def one(a: Any) -> Any:
            return None if a is None else a[i : i + 1]

        return _Draws(
            one(self.psf_scale),
            one(self.theta_E),
            one(self.mag_lens_r),
            one(self.mag_source_g),
            one(self.n_sersic),
            {key: one(v) for key, v in self.knots.items()},
            {key: one(v) for key, v in self.mass.items()},
        )

    def repeated(self, per_row: int) -> _Draws:
        """Each row's inputs ``per_row`` times in a row (consecutive candidates of one row)."""

        def rep(a: Any) -> Any:
            return None if a is None else np.repeat(a, per_row)

        return _Draws(
            rep(self.psf_scale),
            rep(self.theta_E),
            rep(self.mag_lens_r),
            rep(self.mag_source_g),
            rep(self.n_sersic),
            {key: rep(v) for key, v in self.knots.items()},
            {key: rep(v) for key, v in self.mass.items()},
        )


@dataclass(frozen=True)
class _LensJob:
    """What one :func:`sample_lenses` call fixes; its methods are the steps of a block's draw."""

    survey: Survey
    cosmology: Cosmology
    npix: int
    supersampling: int
    cfg: SamplerSettings
    controls: dict[str, Control]
    requested: dict[str, Any]  # the controls as given, quoted in errors
    source_model: str
    source_colour: str
    source_population: str
    detectable: bool
    entropy: int
    start: int
    n: int

    @property
    def bands(self) -> tuple[str, ...]:
        return self.survey.band_names

    def draw_block(self, m: int, brng: np.random.Generator, rows: slice) -> pd.DataFrame:
        """The ``m`` rows ``rows`` of one block, drawn from the block generator ``brng``."""
        draws = self.block_draws(m, brng, rows)
        first = records(self.candidates(brng, draws))
        # Ray trace only the rows asked for: the others of the block are drawn (so the
        # generator advances identically) but dropped by iterate_blocks.
        want = [self.start <= rows.start + i < self.start + self.n for i in range(m)]
        out = [
            self.complete(r) if w else placeholder_row(r, self.bands) for r, w in zip(first, want)
        ]
        if self.detectable:
            self.redraw_undetectable(out, want, rows, draws)
        return pd.DataFrame(out)

    def block_draws(self, m: int, brng: np.random.Generator, rows: slice) -> _Draws:
        """Control values of a block's rows (from ``brng``) and their side-stream columns."""
        c, start = self.controls, self.start
        theta_e = control_values(c["theta_E"], brng, rows, m, start)
        psf_scale = control_values(c["psf_scale"], brng, rows, m, start)
        mag_lens = control_values(c["mag_lens_r"], brng, rows, m, start)
        mag_src_g = control_values(c["mag_source_g"], brng, rows, m, start)
        # array controls hold NaN on block rows outside the requested range: any value will do
        psf_scale = (
            np.ones(m) if psf_scale is None else np.where(np.isnan(psf_scale), 1.0, psf_scale)
        )
        theta_e = None if theta_e is None else np.where(np.isnan(theta_e), 1.0, theta_e)
        mag_lens = None if mag_lens is None else np.where(np.isnan(mag_lens), 20.0, mag_lens)
        mag_src_g = None if mag_src_g is None else np.where(np.isnan(mag_src_g), 22.0, mag_src_g)
        # source index and clumps from a side stream: the systems are those of the defaults
        srng = block_rng(self.entropy, rows.start // BLOCK, KNOT_STREAM)
        ns = control_values(c["n_sersic_source"], srng, rows, m, start)
        default_ns = self.cfg["source.n_sersic"]
        ns = np.full(m, default_ns) if ns is None else np.where(np.isnan(ns), 1.0, ns)
        knots = knot_columns(m, srng, self.cfg, self.source_model)
        mrng = block_rng(self.entropy, rows.start // BLOCK, MASS_STREAM)
        mass = self.mass_columns(m, mrng, rows)
        return _Draws(psf_scale, theta_e, mag_lens, mag_src_g, ns, knots, mass)

    def mass_columns(self, m: int, mrng: np.random.Generator, rows: slice) -> dict[str, F64]:
        """External shear and slope (side stream: the defaults leave every other draw as is)."""
        c, start = self.controls, self.start
        ge = control_values(c["gamma_ext"], mrng, rows, m, start)
        pe = control_values(c["psi_ext"], mrng, rows, m, start)
        gs = control_values(c["gamma_slope"], mrng, rows, m, start)
        u = mrng.random(m)
        ge = np.zeros(m) if ge is None else np.where(np.isnan(ge), 0.0, ge)
        pe = (np.pi * u if c["gamma_ext"].kind != "none" else np.zeros(m)) if pe is None else pe
        pe = np.where(np.isnan(pe), 0.0, pe)
        gs = np.full(m, 2.0) if gs is None else np.where(np.isnan(gs), 2.0, gs)
        return {"gamma_ext": ge, "psi_ext": pe, "gamma_slope": gs}

    def candidates(
        self, brng: np.random.Generator, draws: _Draws, per_row: int = 1
    ) -> pd.DataFrame:
        """``per_row`` candidate systems per row of ``draws`` (consecutive); no lensing truth."""
        m = draws.psf_scale.size * per_row
        d = draws.repeated(per_row)
        if d.mag_lens_r is None and d.mag_source_g is None:
            systems = draw_lens_systems(
                m,
                brng,
                self.cosmology,
                self.cfg,
                d.theta_E,
                n_sersic=d.n_sersic,
                **self._source_options(),
            )
        else:
            systems = self.magnitude_conditioned_systems(m, brng, d)
        if d.mag_source_g is not None:
            systems["_target_g"] = d.mag_source_g
        cols = empty_components(m, self.bands)
        cols.update(systems)
        cols.update(d.knots)
        cols.update(d.mass)
        cols["knot_sigma_source"] = np.maximum(
            self.cfg["clumpy.knot_sigma"] * np.asarray(cols["R_sersic_source"]),
            self.cfg["clumpy.knot_sigma_min"],
        )
        df = with_psf_columns(pd.DataFrame(cols), self.survey, d.psf_scale, brng)
        df["label"] = 1
        df["kind"] = "lens"
        return df

    def _source_options(self) -> dict[str, str]:
        return {"source_colour": self.source_colour, "source_population": self.source_population}

    def magnitude_conditioned_systems(
        self, m: int, brng: np.random.Generator, d: _Draws
    ) -> dict[str, F64]:
        """One system per row, picked among candidates near its fixed lens or source magnitude.

        The lens light is then shifted so ``mag_lens_r`` is exact (the source is pinned later,
        by :meth:`complete`, from the exact magnification).
        """
        n_cand = int(self.cfg["conditioning.candidates"])
        cand = draw_lens_systems(
            m * n_cand,
            brng,
            self.cosmology,
            self.cfg,
            None if d.theta_E is None else np.repeat(d.theta_E, n_cand),
            n_sersic=np.repeat(d.n_sersic, n_cand),
            **self._source_options(),
        )
        win = self.cfg["conditioning.mag_window"]
        obs_g = cand["mag_source_unlensed_g"] - 2.5 * np.log10(approx_magnification(cand))
        mag_lens, mag_src_g = d.mag_lens_r, d.mag_source_g
        pick = np.empty(m, dtype=int)
        u = brng.random(m)
        for i in range(m):
            sl = slice(i * n_cand, (i + 1) * n_cand)
            if mag_lens is not None and mag_src_g is not None:
                dist = np.hypot(cand["mag_lens_r"][sl] - mag_lens[i], obs_g[sl] - mag_src_g[i])
                pick[i] = i * n_cand + pick_nearest(dist, 0.0, win, u[i])
            elif mag_lens is not None:
                pick[i] = i * n_cand + pick_nearest(
                    cand["mag_lens_r"][sl], float(mag_lens[i]), win, u[i]
                )
            else:
                assert mag_src_g is not None
                pick[i] = i * n_cand + pick_nearest(obs_g[sl], float(mag_src_g[i]), win, u[i])
        systems = {key: v[pick] for key, v in cand.items()}
        if mag_lens is not None:
            shift = mag_lens - systems["mag_lens_r"]
            for b in self.bands:
                systems[f"mag_lens_{b}"] = systems[f"mag_lens_{b}"] + shift
        return systems

    def complete(self, row: dict[str, Any]) -> dict[str, Any]:
        """Exact magnification, S/N and detectability; pins the observed g if requested."""
        grid = row_grid(row, self.survey, self.npix, self.supersampling)
        target = row.pop("_target_g", None)
        if target is not None:
            shift = target + 2.5 * math.log10(grid.flux) - row["mag_source_unlensed_g"]
            for b in self.bands:
                row[f"mag_source_unlensed_{b}"] += shift
        row.update(lensing_truth(row, self.survey, self.npix, self.cfg, grid=grid))
        for b in self.bands:
            row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"] - 2.5 * math.log10(
                row["magnification"]
            )
        return row

    def redraw_undetectable(
        self, out: list[dict[str, Any]], want: list[bool], rows: slice, draws: _Draws
    ) -> None:
        """Replace (in ``out``) each wanted row that is not LensPop-detectable by one that is.

        Redraws come from the same controls, ray tracing candidates one at a time until one
        passes (cheap cuts first); each row redraws from its own stream, so rows stay
        independent of each other.
        """
        for rnd in range(DETECTABLE_ROUNDS):
            bad = [i for i, r in enumerate(out) if want[i] and not r["detectable"]]
            if not bad:
                return
            for i in bad:
                rrng = np.random.default_rng(
                    np.random.SeedSequence(
                        self.entropy, spawn_key=(rows.start + i, REDRAW_KEY, rnd)
                    )
                )
                cand = self.candidates(rrng, draws.row(i), DETECTABLE_CANDIDATES)
                maybe = may_be_detectable(cand, self.survey)
                recs = records(cand)
                for j in np.flatnonzero(maybe):
                    r = self.complete(recs[j])
                    if r["detectable"]:
                        out[i] = r
                        break
        req = self.requested
        raise SimlensValueError(
            "detectable=True: no LensPop-detectable lens found for some rows after "
            f"{DETECTABLE_ROUNDS * DETECTABLE_CANDIDATES} candidates each; the controls "
            f"(theta_E={req['theta_E']!r}, psf_scale={req['psf_scale']!r}, "
            f"mag_lens_r={req['mag_lens_r']!r}, mag_source_g={req['mag_source_g']!r}) leave "
            "(almost) no detectable systems"
        )
