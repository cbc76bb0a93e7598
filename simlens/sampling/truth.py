"""Draw truth tables: the LensPop-style lens population, non-lenses, and conditioning on controls.

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

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology
from numpy.typing import NDArray

from simlens._catalogs import catalog_file, load_toml
from simlens.errors import SimlensValueError
from simlens.physics import sed
from simlens.physics.psf import psf_fwhm_draws
from simlens.population.lenspop_sources import survey_source_population
from simlens.sampling.controls import parse_control
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
from simlens.schema import CRITERIA, HEAD_COLUMNS, empty_components, records
from simlens.streams import (
    KNOT_STREAM,
    LENS_STREAM,
    MASS_STREAM,
    NONLENS_STREAM_BASE,
    REDRAW_KEY,
)
from simlens.survey import Survey

__all__ = ["BLOCK", "NONLENS_KINDS", "SamplerSettings", "sample_lenses", "sample_nonlenses"]

DETECTABLE_CANDIDATES = 64  # candidates per row and round when detectable=True
DETECTABLE_ROUNDS = 40
NONLENS_KINDS = ("elliptical", "star", "spiral", "merger", "ring", "blue_companion", "field")
SOURCE_MODELS = ("sersic", "clumpy")
MAG_LENS_KINDS = ("elliptical", "ring", "blue_companion")
SOURCE_COLOURS = (sed.MIXTURE, *sed.TEMPLATES)

F64 = NDArray[np.float64]


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
def stellar_locus() -> F64:
    text = catalog_file("stellar_locus.csv").read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if ln and not ln.startswith("#")][1:]
    return np.array([[float(x) for x in r.split(",")] for r in rows])


# -------------------------------------------------------------------------------------------
# public samplers
# -------------------------------------------------------------------------------------------


def check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise SimlensValueError(f"n must be a positive integer, got {n!r}")


def with_psf_columns(
    df: pd.DataFrame, survey: Survey, psf_scale: F64, rng: np.random.Generator
) -> pd.DataFrame:
    fw = psf_fwhm_draws(survey, psf_scale, rng)
    new = {
        "psf_scale": psf_scale,
        **{f"psf_fwhm_{b}": fw[:, j] for j, b in enumerate(survey.band_names)},
    }
    # one concat (not many inserts): keeps the wide frame in few blocks
    return pd.concat(
        [df.drop(columns=[c for c in new if c in df.columns]), pd.DataFrame(new, index=df.index)],
        axis=1,
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
    c_theta = parse_control("theta_E", theta_E, n)
    c_psf = parse_control("psf_scale", psf_scale, n)
    c_ml = parse_control("mag_lens_r", mag_lens_r, n)
    c_ms = parse_control("mag_source_g", mag_source_g, n)
    c_ns = parse_control("n_sersic_source", n_sersic_source, n)
    c_ge = parse_control("gamma_ext", gamma_ext, n)
    c_pe = parse_control("psi_ext", psi_ext, n)
    c_gs = parse_control("gamma_slope", gamma_slope, n)
    if source_model not in SOURCE_MODELS:
        raise SimlensValueError(
            f"source_model must be one of {SOURCE_MODELS}, got {source_model!r}"
        )
    if source_colour not in SOURCE_COLOURS:
        raise SimlensValueError(
            f"source_colour must be one of {SOURCE_COLOURS}, got {source_colour!r}"
        )
    entropy = resolve_entropy(rng)
    bands = survey.band_names
    # the preset's source population ("lenspop" for lenspop-des, else the deep-field model)
    source_population = survey_source_population(survey)

    def candidates(
        brng: np.random.Generator,
        ps: F64,
        th: F64 | None,
        ml: F64 | None,
        msg: F64 | None,
        ns: F64,
        kn: dict[str, Any],
        mass: dict[str, F64],
        per_row: int = 1,
    ) -> pd.DataFrame:
        """``per_row`` candidate systems per entry of ``ps`` (consecutive), no lensing truth yet."""
        m = ps.size * per_row
        ps, ns = np.repeat(ps, per_row), np.repeat(ns, per_row)
        th, ml, msg = (None if a is None else np.repeat(a, per_row) for a in (th, ml, msg))
        opts = {"source_colour": source_colour, "source_population": source_population}
        if ml is None and msg is None:
            sys = draw_lens_systems(m, brng, cosmology, cfg, th, n_sersic=ns, **opts)
        else:
            K = int(cfg["conditioning.candidates"])
            cand = draw_lens_systems(
                m * K,
                brng,
                cosmology,
                cfg,
                None if th is None else np.repeat(th, K),
                n_sersic=np.repeat(ns, K),
                **opts,
            )
            win = cfg["conditioning.mag_window"]
            obs_g = cand["mag_source_unlensed_g"] - 2.5 * np.log10(approx_magnification(cand))
            pick = np.empty(m, dtype=int)
            u = brng.random(m)
            for i in range(m):
                sl = slice(i * K, (i + 1) * K)
                if ml is not None and msg is not None:
                    d = np.hypot(cand["mag_lens_r"][sl] - ml[i], obs_g[sl] - msg[i])
                    pick[i] = i * K + pick_nearest(d, 0.0, win, u[i])
                elif ml is not None:
                    pick[i] = i * K + pick_nearest(cand["mag_lens_r"][sl], float(ml[i]), win, u[i])
                else:
                    assert msg is not None
                    pick[i] = i * K + pick_nearest(obs_g[sl], float(msg[i]), win, u[i])
            sys = {k: v[pick] for k, v in cand.items()}
            if ml is not None:
                shift = ml - sys["mag_lens_r"]
                for b in bands:
                    sys[f"mag_lens_{b}"] = sys[f"mag_lens_{b}"] + shift
        if msg is not None:
            sys["_target_g"] = msg
        cols = empty_components(m, bands)
        cols.update(sys)
        cols.update({k: np.repeat(v, per_row) for k, v in kn.items()})
        cols.update({k: np.repeat(v, per_row) for k, v in mass.items()})
        cols["knot_sigma_source"] = np.maximum(
            cfg["clumpy.knot_sigma"] * np.asarray(cols["R_sersic_source"]),
            cfg["clumpy.knot_sigma_min"],
        )
        df = with_psf_columns(pd.DataFrame(cols), survey, ps, brng)
        df["label"] = 1
        df["kind"] = "lens"
        return df

    def complete(row: dict[str, Any]) -> dict[str, Any]:
        """Exact magnification, S/N and detectability; pins the observed g if requested."""
        grid = row_grid(row, survey, npix, supersampling)
        target = row.pop("_target_g", None)
        if target is not None:
            shift = target + 2.5 * math.log10(grid.flux) - row["mag_source_unlensed_g"]
            for b in bands:
                row[f"mag_source_unlensed_{b}"] += shift
        row.update(lensing_truth(row, survey, npix, cfg, grid=grid))
        for b in bands:
            row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"] - 2.5 * math.log10(
                row["magnification"]
            )
        return row

    def _mass_columns(m: int, mrng: np.random.Generator, rows: slice) -> dict[str, F64]:
        """External shear and slope (side stream: the defaults leave every other draw as is)."""
        ge = control_values(c_ge, mrng, rows, m, start)
        pe = control_values(c_pe, mrng, rows, m, start)
        gs = control_values(c_gs, mrng, rows, m, start)
        u = mrng.random(m)
        ge = np.zeros(m) if ge is None else np.where(np.isnan(ge), 0.0, ge)
        pe = (np.pi * u if c_ge.kind != "none" else np.zeros(m)) if pe is None else pe
        pe = np.where(np.isnan(pe), 0.0, pe)
        gs = np.full(m, 2.0) if gs is None else np.where(np.isnan(gs), 2.0, gs)
        return {"gamma_ext": ge, "psi_ext": pe, "gamma_slope": gs}

    def draw(m: int, brng: np.random.Generator, rows: slice) -> pd.DataFrame:
        th = control_values(c_theta, brng, rows, m, start)
        ps = control_values(c_psf, brng, rows, m, start)
        ml = control_values(c_ml, brng, rows, m, start)
        msg = control_values(c_ms, brng, rows, m, start)
        # array controls hold NaN on block rows outside the requested range: any value will do
        ps = np.ones(m) if ps is None else np.where(np.isnan(ps), 1.0, ps)
        th = None if th is None else np.where(np.isnan(th), 1.0, th)
        ml = None if ml is None else np.where(np.isnan(ml), 20.0, ml)
        msg = None if msg is None else np.where(np.isnan(msg), 22.0, msg)
        # source index and clumps from a side stream: the systems are those of the defaults
        srng = block_rng(entropy, rows.start // BLOCK, KNOT_STREAM)
        ns = control_values(c_ns, srng, rows, m, start)
        ns = np.full(m, cfg["source.n_sersic"]) if ns is None else np.where(np.isnan(ns), 1.0, ns)
        kn = knot_columns(m, srng, cfg, source_model)
        mass = _mass_columns(m, block_rng(entropy, rows.start // BLOCK, MASS_STREAM), rows)
        recs0 = records(candidates(brng, ps, th, ml, msg, ns, kn, mass))
        # Ray trace only the rows asked for: the others of the block are drawn (so the
        # generator advances identically) but dropped by iterate_blocks.
        want = [start <= rows.start + i < start + n for i in range(m)]
        out = [complete(r) if w else placeholder_row(r, bands) for r, w in zip(recs0, want)]
        if detectable:
            # keep LensPop-detectable systems only: redraw the others from the same controls,
            # ray tracing candidates one at a time until one passes (cheap cuts first)
            k = DETECTABLE_CANDIDATES

            def sub(a: F64 | None, i: int) -> F64 | None:
                return None if a is None else a[i : i + 1]

            for rnd in range(DETECTABLE_ROUNDS):
                bad = [i for i, r in enumerate(out) if want[i] and not r["detectable"]]
                if not bad:
                    break
                for i in bad:
                    # each row redraws from its own stream: rows stay independent of each other
                    rrng = np.random.default_rng(
                        np.random.SeedSequence(entropy, spawn_key=(rows.start + i, REDRAW_KEY, rnd))
                    )
                    kni = {key: v[i : i + 1] for key, v in kn.items()}
                    massi = {key: v[i : i + 1] for key, v in mass.items()}
                    cand = candidates(
                        rrng,
                        ps[i : i + 1],
                        sub(th, i),
                        sub(ml, i),
                        sub(msg, i),
                        ns[i : i + 1],
                        kni,
                        massi,
                        k,
                    )
                    maybe = may_be_detectable(cand, survey)
                    recs = records(cand)
                    for j in np.flatnonzero(maybe):
                        r = complete(recs[j])
                        if r["detectable"]:
                            out[i] = r
                            break
            else:
                raise SimlensValueError(
                    "detectable=True: no LensPop-detectable lens found for some rows after "
                    f"{DETECTABLE_ROUNDS * DETECTABLE_CANDIDATES} candidates each; the controls "
                    f"(theta_E={theta_E!r}, psf_scale={psf_scale!r}, mag_lens_r={mag_lens_r!r}, "
                    f"mag_source_g={mag_source_g!r}) leave (almost) no detectable systems"
                )
        return pd.DataFrame(out)

    out = iterate_blocks(n, start, entropy, LENS_STREAM, draw)
    out["seed"] = row_seeds(entropy, start, n)
    return order_columns(
        with_neighbours(out, neighbours, survey, npix, entropy, start, LENS_STREAM)
    )


def knot_columns(
    m: int, rng: np.random.Generator, cfg: SamplerSettings, source_model: str
) -> dict[str, Any]:
    """Clump columns of ``m`` sources (always drawn, so the stream never depends on the model)."""
    nk = rng.integers(int(cfg["clumpy.knots_min"]), int(cfg["clumpy.knots_max"]) + 1, m)
    fk = rng.uniform(cfg["clumpy.knot_fraction_min"], cfg["clumpy.knot_fraction_max"], m)
    seeds = rng.integers(1, 2**31 - 1, m)
    if source_model == "sersic":
        nk, fk, seeds = np.zeros(m, dtype=np.int64), np.zeros(m), np.zeros(m, dtype=np.int64)
    return {"n_knots_source": nk, "knot_fraction_source": fk, "seed_source": seeds}


def with_neighbours(
    df: pd.DataFrame, on: bool, survey: Survey, npix: int, entropy: int, start: int, kind: int
) -> pd.DataFrame:
    if not on:
        return df
    from simlens.sampling.neighbours import neighbour_table

    nb = neighbour_table(
        len(df), survey=survey, npix=npix, entropy=entropy, start=start, kind_stream=kind
    )
    return pd.DataFrame(
        {c: (nb[c].to_numpy() if c in nb.columns else df[c].to_numpy()) for c in df.columns}
    )


def placeholder_row(row: dict[str, Any], bands: tuple[str, ...]) -> dict[str, Any]:
    """A block row outside the requested range: complete in schema, never returned."""
    row.pop("_target_g", None)
    row.update(magnification=1.0, snr_source=0.0, snr_band=bands[0], resolved=False)
    row.update(fwhm_detection=0.0, **dict.fromkeys(CRITERIA, False))
    row["detectable"] = True  # never redrawn
    for b in bands:
        row[f"mag_source_{b}"] = row[f"mag_source_unlensed_{b}"]
    return row


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    cols = [*HEAD_COLUMNS, *(c for c in df.columns if c not in HEAD_COLUMNS)]
    df = df[cols].reset_index(drop=True).copy()
    df["label"] = df["label"].astype(np.int64)
    df["kind"] = df["kind"].astype(object)
    df["snr_band"] = df["snr_band"].astype(object)
    return df


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
            from simlens.sampling.kinds import draw_kind

            df = draw_kind(kind, df, m, brng, cosmology, cfg, ml, bands).copy()  # defragment
        df = with_psf_columns(df, survey, ps, brng)
        df["label"] = 0
        if kind != "field":  # field rows carry the kind each was drawn as
            df["kind"] = kind
        return df

    out = iterate_blocks(n, start, entropy, stream, draw)
    out["seed"] = row_seeds(entropy, start, n)
    return order_columns(with_neighbours(out, neighbours, survey, npix, entropy, start, stream))


def elliptical_columns(
    df: pd.DataFrame,
    m: int,
    brng: np.random.Generator,
    cosmology: Cosmology,
    cfg: SamplerSettings,
    ml: F64 | None,
    bands: tuple[str, ...],
) -> None:
    """Fill ``df`` (in place) with lens-like ellipticals: deflectors without source or mass."""
    # no source, so no per-source SED draw (a fixed template consumes no random numbers)
    sf = "star-forming"
    if ml is None:
        sys = draw_lens_systems(m, brng, cosmology, cfg, None, source_colour=sf)
    else:
        K = int(cfg["conditioning.candidates"])
        cand = draw_lens_systems(m * K, brng, cosmology, cfg, None, source_colour=sf)
        win = cfg["conditioning.mag_window"]
        u = brng.random(m)
        pick = np.array(
            [
                i * K
                + pick_nearest(cand["mag_lens_r"][i * K : (i + 1) * K], float(ml[i]), win, u[i])
                for i in range(m)
            ]
        )
        sys = {k: v[pick] for k, v in cand.items()}
        shift = np.where(np.isnan(ml), 0.0, ml - sys["mag_lens_r"])
        for b in bands:
            sys[f"mag_lens_{b}"] = sys[f"mag_lens_{b}"] + shift
    keep = [
        k
        for k in sys
        if not (
            k.endswith("_source")
            or k.startswith("mag_source")
            or k.endswith("_mass")
            or k in ("theta_E", "z_source")
        )
    ]
    for k in keep:
        df[k] = sys[k]


def star_columns(
    df: pd.DataFrame,
    m: int,
    brng: np.random.Generator,
    cfg: SamplerSettings,
    bands: tuple[str, ...],
) -> None:
    """Fill ``df`` (in place) with stars: high-latitude counts, stellar-locus colours."""
    smin, smax = cfg["star.mag_r_min"], cfg["star.mag_r_max"]
    a = cfg["star.count_slope"] * math.log(10.0)
    # counts N(m) ∝ 10**(slope m): inverse CDF of an exponential on [smin, smax]
    u = brng.random(m)
    mag_r = smin + np.log1p(u * np.expm1(a * (smax - smin))) / a
    locus = stellar_locus()
    gr = brng.uniform(locus[0, 0], locus[-1, 0], m)
    order = np.argsort(locus[:, 0])
    ri = np.interp(gr, locus[order, 0], locus[order, 1])
    iz = np.interp(gr, locus[order, 0], locus[order, 2])
    mags = {"g": mag_r + gr, "r": mag_r, "i": mag_r - ri, "z": mag_r - ri - iz}
    for b in bands:
        df[f"mag_star_{b}"] = mags[b]
    cs = cfg["star.center_scatter"]
    df["center_x_star"] = cs * brng.standard_normal(m)
    df["center_y_star"] = cs * brng.standard_normal(m)
