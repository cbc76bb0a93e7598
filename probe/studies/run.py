"""Running the study: every experiment of :data:`probe.studies.experiments.EXPERIMENTS` for
every model, on test sets drawn once (:func:`probe.studies.simulation.draw_study_sets`).

:func:`run_study` checks its inputs, draws the test sets, runs the experiments model by model
(:func:`run_experiment`: a perturbation sweep, a paired re-simulation or a binned experiment,
each with its gallery), records the run's settings and writes the report if asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from probe import rng as _rng
from probe.binning import Binning
from probe.errors import ProbeValueError
from probe.protocols import SimulatorProtocol
from probe.studies.experiments import (
    EXPERIMENTS,
    MIN_BIN_COUNT,
    Experiment,
    StudyConfig,
    StudyModel,
    StudyResult,
    StudySizes,
)
from probe.studies.galleries import Gallery, bin_gallery, resim_gallery, sweep_gallery
from probe.studies.progress import StudyClock
from probe.studies.simulation import STREAMS, KindMixture, RenderCache, StudySets, draw_study_sets
from probe.sweeps.result import Result
from probe.sweeps.sensitivity import Probe

__all__ = ["check_kinds", "min_bin_count", "run_experiment", "run_study", "sweep_set"]


def min_bin_count(values: np.ndarray, edges: Sequence[float]) -> int:
    """The fewest values of any bin of ``edges`` (numpy's histogram: the last bin is closed)."""
    counts, _ = np.histogram(values, bins=np.asarray(edges, dtype=float))
    return int(counts.min()) if counts.size else 0


def check_kinds(kinds: Mapping[str, float], name: str) -> dict[str, float]:
    """Model ``name``'s non-lens kind fractions, normalised to sum 1 (checked non-negative)."""
    if not kinds or any(float(v) < 0 for v in kinds.values()) or sum(kinds.values()) <= 0:
        raise ProbeValueError(
            f"model {name!r}: nonlens_kinds needs non-negative fractions with a positive sum; "
            f"got {dict(kinds)!r}"
        )
    total = float(sum(kinds.values()))
    return {str(k): float(v) / total for k, v in kinds.items()}


def _check_inputs(models: Sequence[StudyModel], cfg: StudyConfig) -> dict[str, dict[str, float]]:
    """Check the models and experiments; each model's normalised non-lens kinds, by name."""
    if not models:
        raise ProbeValueError("models is empty; give at least one StudyModel")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ProbeValueError(f"model names must be distinct; got {names}")
    unknown = sorted(set(cfg.experiments) - {e.name for e in EXPERIMENTS})
    if unknown:
        raise ProbeValueError(
            f"unknown experiments {unknown}; known: {[e.name for e in EXPERIMENTS]}"
        )
    return {m.name: check_kinds(m.nonlens_kinds, m.name) for m in models}


def sweep_set(sets: StudySets, mix: str, n_sweep: int) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of a sweep: the first ``n_sweep`` lenses, then the non-lenses of
    kind mixture ``mix``."""
    lens_x = sets.lenses["lenses"]["images"][:n_sweep]
    nonlens_x = sets.nonlens_images[mix]
    x = np.concatenate([lens_x, nonlens_x])
    y = np.r_[np.ones(len(lens_x), np.int8), np.zeros(len(nonlens_x), np.int8)]
    return x, y


def _binned(
    probe: Probe, e: Experiment, model: str, data: Mapping[str, Any], sz: StudySizes, seed: int
) -> tuple[Result, int, Gallery]:
    """Experiment ``e`` binned by its truth column on lens set ``data``: result, fewest
    images of a bin, gallery."""
    n = sz.n_theta_E if e.data == "lenses" else len(data["truth"])
    lo, hi, nb = e.bins
    binning = Binning.uniform(lo, hi, n=e.smoke_bins if sz.smoke else nb)
    vals = data["truth"][e.column].to_numpy(dtype=float)[:n]
    r = probe.by_parameter(
        data["images"][:n], np.ones(n, np.int8), np.clip(vals, lo, hi),
        bins=binning, name=e.column, unit=e.unit, rng=seed,
    )  # fmt: skip
    count = min_bin_count(np.clip(vals, lo, hi), binning.bin_edges)
    return r, count, bin_gallery(e, model, r, data["images"][:n])


def run_experiment(
    probe: Probe,
    e: Experiment,
    model: StudyModel,
    *,
    sim: Any,
    sets: StudySets,
    sweep_set: tuple[np.ndarray, np.ndarray] | None,
    kinds: Mapping[str, float],
    cfg: StudyConfig,
    seed: int,
) -> tuple[Result, int, Gallery]:
    """Run experiment ``e`` for ``model``: its result, the fewest images of any bin (or value
    and class), and its gallery.

    ``sim`` draws the re-simulations (a :class:`~probe.studies.simulation.RenderCache` or the
    simulator itself); ``sets`` holds the shared test sets and ``sweep_set`` the model's sweep
    images and labels (:func:`sweep_set`; needed by sweeps); ``kinds`` is the model's
    normalised non-lens mixture; ``seed`` the experiments' seed.
    """
    sz = cfg.sizes
    values = np.asarray(e.smoke_values if sz.smoke else e.values, dtype=float)
    if e.kind == "sweep":
        if sweep_set is None:
            raise ProbeValueError(f"experiment {e.name!r} is a sweep: it needs sweep_set")
        x, y = sweep_set
        r = probe.sweep(x, y, e.perturber, values, rng=seed, unit=e.unit)
        count = int(min(y.sum(), (1 - y).sum()))
        return r, count, sweep_gallery(e, model.name, r, x, y, values, seed)
    if e.kind == "resimulate":
        wrapped = KindMixture(sim, kinds, cfg.sets.get("lenses", {}))
        r = probe.resimulate(
            wrapped, e.control, values, n=sz.n_psf, rng=seed, paired=True, unit=e.unit
        )
        return r, int(sz.n_psf), resim_gallery(e, model.name, r, wrapped)
    return _binned(probe, e, model.name, sets.lenses[e.data], sz, seed)


def _run_model(
    i_model: int,
    m: StudyModel,
    todo: Sequence[Experiment],
    *,
    sim: Any,
    sets: StudySets,
    kinds: Mapping[str, float],
    cfg: StudyConfig,
    seed: int,
    caches: dict[str, RenderCache],
    last: bool,
    clock: StudyClock,
    client: Any,
    chunk_size: int | None,
    checkpoints: Any,
) -> dict[str, tuple[Result, int, Gallery]]:
    """Run the experiments ``todo`` for model number ``i_model``: per experiment name, its
    result, fewest images per bin and gallery (see :func:`run_experiment`).

    The re-simulations render through ``caches`` (one :class:`RenderCache` per experiment,
    shared by the models; freed after the ``last`` model) unless a Dask ``client`` renders.
    """
    probe = Probe(
        m.model,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        label=m.name,
        client=client,
        chunk_size=chunk_size,
    )
    xy = None
    if any(e.kind == "sweep" for e in todo):
        xy = sweep_set(sets, json.dumps(kinds, sort_keys=True), cfg.sizes.n_sweep)
    done: dict[str, tuple[Result, int, Gallery]] = {}
    for e in todo:
        t0, c0 = clock.start()
        if checkpoints is not None:
            # One scope per (model, experiment); the sweeps of a model share the sweep
            # set's unperturbed scores.
            shared = f"m{i_model}-sweepset-" if e.kind == "sweep" else None
            probe.checkpoints = checkpoints.scoped(f"m{i_model}-{e.name}-", shared)
        # On a cluster the workers render; an in-process cache would only be shipped.
        renders = sim
        if e.kind == "resimulate" and client is None:
            renders = caches.setdefault(e.name, RenderCache(sim))
        r, count, gallery = run_experiment(
            probe, e, m, sim=renders, sets=sets, sweep_set=xy, kinds=kinds, cfg=cfg, seed=seed
        )
        r.label = m.name
        done[e.name] = (r, count, gallery)
        clock.clock(f"{m.name}_{e.name}", t0, c0)
        if last:
            caches.pop(e.name, None)  # free its images
        clock.say(f"model {m.name}: {e.name} done in {clock.timings[f'{m.name}_{e.name}']:.0f} s")
    return done


def _run_models(
    models: Sequence[StudyModel],
    todo: Sequence[Experiment],
    *,
    sim: Any,
    sets: StudySets,
    kinds: Mapping[str, Mapping[str, float]],
    cfg: StudyConfig,
    seed: int,
    clock: StudyClock,
    client: Any,
    chunk_size: int | None,
    checkpoints: Any,
) -> tuple[dict[tuple[str, str], Result], dict[str, int], dict[tuple[str, str], Gallery]]:
    """Run the experiments ``todo`` for every model (:func:`_run_model`): the results and
    galleries by (model, experiment), and the fewest images per bin by experiment."""
    results: dict[tuple[str, str], Result] = {}
    min_counts: dict[str, int] = {}
    galleries: dict[tuple[str, str], Gallery] = {}
    # Re-simulations render the same lenses for every model (and, for psf_source, the same
    # unchanged non-lenses at every value): rendered once, one bounded cache per experiment.
    caches: dict[str, RenderCache] = {}
    for i_model, m in enumerate(models):
        done = _run_model(
            i_model, m, todo, sim=sim, sets=sets, kinds=kinds[m.name], cfg=cfg, seed=seed,
            caches=caches, last=m is models[-1], clock=clock, client=client,
            chunk_size=chunk_size, checkpoints=checkpoints,
        )  # fmt: skip
        for name, (r, count, gallery) in done.items():
            results[(m.name, name)] = r
            min_counts[name] = count
            galleries[(m.name, name)] = gallery
    return results, min_counts, galleries


def _record(
    cfg: StudyConfig,
    seed: int,
    kinds: Mapping[str, Mapping[str, float]],
    min_counts: Mapping[str, int],
    strata: Mapping[str, str],
    sim: Any,
) -> dict[str, Any]:
    """The run's settings as recorded in ``study.json`` (``StudyResult.config``)."""
    return {
        "sizes": asdict(cfg.sizes),
        "seed": cfg.seed,
        "experiment_seed": seed,
        "sets": {k: {c: repr(v) for c, v in d.items()} for k, d in cfg.sets.items()},
        "nonlens_kinds": dict(kinds),
        "min_bin_count": dict(min_counts),
        "stratified": dict(strata),
        "simulator": f"{type(sim).__module__}.{type(sim).__qualname__}",
        "simulator_repr": repr(sim),
    }


def run_study(
    sim: SimulatorProtocol,
    models: Sequence[StudyModel],
    out: str | Path | None = None,
    *,
    config: StudyConfig | None = None,
    log: Callable[[str], None] | None = None,
    client: Any = None,
    chunk_size: int | None = None,
    checkpoints: Any = None,
) -> StudyResult:
    """Run every experiment for every model; write the report to ``out`` if given.

    Parameters
    ----------
    sim : SimulatorProtocol
        Draws and renders the test sets (e.g. ``simlens.Simulator("des-sv")``: the paper's
        training PSF, so that PSF ratio 1 is the training value).
    models : sequence of StudyModel
        The models and their non-lens kinds.
    out : str or Path, optional
        Output directory of :func:`probe.studies.report.write_report` (figures, tables,
        report.html).
    config : StudyConfig, optional
        Sizes, seed, controls, experiments (default :class:`StudyConfig`).
    log : callable, optional
        Receives progress lines (default: logged at INFO when ``config.progress``).
    client : distributed.Client, optional
        Score every experiment as chunks on this Dask cluster (:class:`probe.Probe`'s
        ``client``); results are bit-identical to the serial run. The test sets are still
        drawn and rendered here.
    chunk_size : int, optional
        Images per chunk task (:class:`probe.Probe`).
    checkpoints : probe.checkpoints.Checkpoints, optional
        Every experiment's chunk scores go through it (``probe study --resume``): verified
        chunks are reused, the others saved as they finish. Its key must hold everything
        that determines the scores (:func:`probe.resume.study_checkpoints`). The test sets
        are drawn and rendered again (they are pure functions of the seed).

    Returns
    -------
    StudyResult
    """
    cfg = config or StudyConfig()
    kinds = _check_inputs(models, cfg)
    clock = StudyClock(log, cfg.progress)
    todo = [e for e in EXPERIMENTS if e.name in cfg.experiments]
    sets = draw_study_sets(sim, cfg, todo, kinds, clock)
    exp_seed = int(_rng.child(cfg.seed, STREAMS["experiments"]).integers(0, 2**62))
    results, min_counts, galleries = _run_models(
        models, todo, sim=sim, sets=sets, kinds=kinds, cfg=cfg, seed=exp_seed, clock=clock,
        client=client, chunk_size=chunk_size, checkpoints=checkpoints,
    )  # fmt: skip
    clock.total()
    thin = {k: v for k, v in min_counts.items() if v < MIN_BIN_COUNT}
    if thin and not cfg.sizes.smoke:
        clock.say(
            f"WARNING: fewer than {MIN_BIN_COUNT} images in a bin (or per value and class) of "
            f"{thin}: trends there follow bin noise; use larger sizes"
        )
    study = StudyResult(
        models=[m.name for m in models],
        results=results,
        config=_record(cfg, exp_seed, kinds, min_counts, sets.strata, sim),
        timings=clock.timings,
        galleries=galleries,
    )
    if out is not None:
        from probe.studies.report import write_report

        path = write_report(study, out)
        clock.say(f"wrote {path} (study {clock.timings['total']:.0f} s)")
    return study
