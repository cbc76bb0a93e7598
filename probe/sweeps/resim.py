"""Steps of :meth:`probe.Probe.resimulate`: checked truth draws, then rendering and scoring.

The truth tables of every value are drawn (or varied) first, in the calling process (cheap);
rendering and scoring then run serially (:func:`render_serial`) or as Dask chunks with per-chunk
checkpoints (:func:`render_chunked`). Every draw comes from stream ``(SAMPLE, class[, value])``
of the root seed (:mod:`probe.rng`), so the tables depend on the seed alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.errors import ProbeTypeError, ProbeValueError
from probe.protocols import SimulatorProtocol
from probe.provenance import hash_frame
from probe.sweeps._steps import Timer, check_rendered, simulator_hint
from probe.validation import check_labels, check_positive_int

#: The methods a simulator must have (:class:`probe.SimulatorProtocol`).
SIMULATOR_METHODS = ("sample_lenses", "sample_nonlenses", "render", "vary")


def check_counts(n: Any, n_nonlenses: Any) -> tuple[int, int]:
    """Lenses (``n``, positive) and non-lenses per value (``n_nonlenses``, >= 0; None: ``n``)."""
    n_l = check_positive_int(n, "n")
    if n_nonlenses is None:
        return n_l, n_l
    return n_l, check_positive_int(n_nonlenses, "n_nonlenses", minimum=0)


def check_simulator(sim: Any, name: Any) -> None:
    """Raise ProbeTypeError unless ``sim`` has the protocol's methods and ``name`` is a str."""
    missing = [m for m in SIMULATOR_METHODS if not hasattr(sim, m)]
    if missing:
        raise ProbeTypeError(
            f"sim must implement probe.SimulatorProtocol; it lacks {', '.join(missing)}"
        )
    if not isinstance(name, str) or not name:
        raise ProbeTypeError(f"name must be a non-empty str; got {name!r}")


def class_controls(
    name: str,
    controls: Mapping[str, Any] | None,
    lens_controls: Mapping[str, Any] | None,
    nonlens_controls: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], tuple[dict[str, Any], dict[str, Any]]]:
    """The fixed controls and, per class (lenses, non-lenses), the controls of its sampler.

    Raises ProbeValueError if any of them holds the varied parameter ``name``.
    """
    fixed = dict(controls or {})
    per_class = (
        {**fixed, **dict(lens_controls or {})},
        {**fixed, **dict(nonlens_controls or {})},
    )
    for where, table in (
        ("controls", fixed),
        ("lens_controls", per_class[0]),
        ("nonlens_controls", per_class[1]),
    ):
        if name in table:
            raise ProbeValueError(f"{where} must not contain the varied parameter {name!r}")
    return fixed, per_class


def truth_labels(tables: list[pd.DataFrame], default: np.ndarray) -> np.ndarray:
    """Labels from the truth tables' ``label`` column where present, else by origin."""
    if not all("label" in t.columns for t in tables):
        return default
    return check_labels(np.concatenate([t["label"].to_numpy() for t in tables]), default.size)


class TruthSampler:
    """Checked truth draws of one re-simulation: ``sim``'s samplers with the class controls.

    Class 0 is the lenses, 1 the non-lenses; time spent goes to ``timer``'s "simulate" phase.
    """

    def __init__(
        self,
        sim: SimulatorProtocol,
        name: str,
        per_class: tuple[dict[str, Any], dict[str, Any]],
        entropy: int,
        timer: Timer,
    ) -> None:
        self.sim, self.name, self.per_class = sim, name, per_class
        self.entropy, self.timer = entropy, timer

    def draw(
        self, kind: int, count: int, value_index: int | None, extra: dict[str, Any]
    ) -> pd.DataFrame:
        """``count`` systems of class ``kind`` (stream ``(SAMPLE, kind[, value_index])``)."""
        key = (_rng.SAMPLE, kind) if value_index is None else (_rng.SAMPLE, kind, value_index)
        gen = _rng.child(self.entropy, *key)
        sampler = self.sim.sample_lenses if kind == 0 else self.sim.sample_nonlenses
        given = self.per_class[kind]
        try:
            with self.timer("simulate"):
                truth = sampler(count, rng=gen, **given, **extra)
        except (TypeError, ValueError, KeyError) as err:
            raise simulator_hint(err, kind, self.name, sorted(given)) from err
        if not isinstance(truth, pd.DataFrame) or len(truth) != count:
            raise ProbeValueError(
                f"sim.{sampler.__name__}({count}) must return a DataFrame of {count} rows"
            )
        return truth

    def vary(self, truth: pd.DataFrame, kind: int, value: float) -> pd.DataFrame:
        """``truth`` with only the varied parameter set to ``value`` (``sim.vary``)."""
        try:
            with self.timer("simulate"):
                return self.sim.vary(truth, self.name, value)
        except (TypeError, ValueError, KeyError) as err:
            raise simulator_hint(err, kind, self.name) from err


def draw_tables(
    sampler: TruthSampler,
    grid: np.ndarray,
    n_lenses: int,
    n_nonlenses: int,
    labels: np.ndarray,
    *,
    paired: bool,
) -> tuple[list[list[pd.DataFrame]], np.ndarray, list[str]]:
    """Truth tables of every value (lenses, then non-lenses if any), their labels and hashes.

    Paired: one draw per class, varied to each value. Otherwise a fresh draw per value, whose
    labels must not change from value to value.
    """
    truth_hashes: list[str] = []
    base: list[pd.DataFrame] = []
    if paired:
        base = [sampler.draw(0, n_lenses, None, {})]
        if n_nonlenses:
            base.append(sampler.draw(1, n_nonlenses, None, {}))
        truth_hashes = [hash_frame(t) for t in base]
        labels = truth_labels(base, labels)
    tables_at: list[list[pd.DataFrame]] = []
    for j, value in enumerate(grid):
        if paired:
            tables = [sampler.vary(t, kind, float(value)) for kind, t in enumerate(base)]
        else:
            extra = {sampler.name: float(value)}
            tables = [sampler.draw(0, n_lenses, j, extra)]
            if n_nonlenses:
                tables.append(sampler.draw(1, n_nonlenses, j, extra))
            truth_hashes.extend(hash_frame(t) for t in tables)
            if not np.array_equal(truth_labels(tables, labels), labels):
                raise ProbeValueError("truth labels changed between values")
        tables_at.append(tables)
    return tables_at, labels, truth_hashes


def render_chunked(
    sim: SimulatorProtocol,
    grid: np.ndarray,
    tables_at: list[list[pd.DataFrame]],
    p_all: np.ndarray,
    *,
    model_spec: Any,
    chunk_size: int,
    batch_size: int,
    checkpoints: Any,
    progress: bool,
    noise: bool,
    name: str,
    timer: Timer,
    client: Any,
) -> None:
    """Render and score the tables in chunks of ``chunk_size`` rows on ``client`` (or locally),
    into ``p_all`` (values x images).

    A chunk already in ``checkpoints`` is read back, not recomputed; each new one is
    checkpointed as it completes.
    """
    from probe.cluster import chunk_map
    from probe.sweeps.chunks import render_task

    ckpt = checkpoints
    slots: list[tuple[int, int, int, str]] = []
    tasks = []
    for j, tables in enumerate(tables_at):
        offset = 0
        for truth in tables:
            for lo in range(0, len(truth), chunk_size):
                rows = truth.iloc[lo : lo + chunk_size]
                a, b = offset + lo, offset + lo + len(rows)
                # Named by the rows' own hash: a checkpoint is of exactly these rows.
                ckpt_name = f"resim-{j:04d}-{a:010d}-{b:010d}-{hash_frame(rows)[:16]}"
                got = None if ckpt is None else ckpt.get(ckpt_name)
                if got is not None and got.get("p", np.empty(0)).shape == (b - a,):
                    p_all[j, a:b] = got["p"]
                    continue
                slots.append((j, a, b, ckpt_name))
                tasks.append((model_spec, sim, rows, noise, float(grid[j]), batch_size))
            offset += len(truth)

    def save(t: int, result: Any) -> None:
        if ckpt is not None:
            ckpt.put(slots[t][3], {"p": np.asarray(result)})

    with timer("simulate"):
        parts = chunk_map(render_task, tasks, client, desc=f"resimulate {name}",
                          progress=progress, on_result=save)  # fmt: skip
    for (j, lo, hi, _), part in zip(slots, parts):
        p_all[j, lo:hi] = part


def render_serial(
    sim: SimulatorProtocol,
    grid: np.ndarray,
    tables_at: list[list[pd.DataFrame]],
    p_all: np.ndarray,
    *,
    predict: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    bar: Any,
    noise: bool,
    timer: Timer,
) -> None:
    """Render and score (``predict``: images -> p(lens)) the tables here, one batch at a time,
    into ``p_all`` (values x images); ``bar`` (a progress bar) counts the images."""
    for j, tables in enumerate(tables_at):
        value = float(grid[j])
        offset = 0
        for truth in tables:
            for start in range(0, len(truth), batch_size):
                rows = truth.iloc[start : start + batch_size]
                with timer("simulate"):
                    imgs = sim.render(rows, noise=noise)
                imgs = check_rendered(imgs, len(rows), value)
                with timer("inference"):
                    p_all[j, offset + start : offset + start + len(rows)] = predict(imgs)
                bar.update(len(rows))
            offset += len(truth)


def truth_data(truth_hashes: list[str], n_lenses: int, n_nonlenses: int) -> dict[str, Any]:
    """The ``data`` entry of a re-simulation's provenance: the hash of its truth tables."""
    import hashlib

    data_hash = hashlib.sha256("".join(truth_hashes).encode()).hexdigest()
    return {
        "hash": data_hash,
        "hash_of": "truth tables",
        "n_lenses": n_lenses,
        "n_nonlenses": n_nonlenses,
    }


def simulator_provenance(
    sim: SimulatorProtocol,
    name: str,
    fixed: dict[str, Any],
    per_class: tuple[dict[str, Any], dict[str, Any]],
    *,
    paired: bool,
    noise: bool,
) -> dict[str, Any]:
    """The ``simulator`` entry of a re-simulation's provenance (controls as ``repr``)."""
    sim_desc = f"{type(sim).__module__}.{type(sim).__qualname__}"
    return {
        "simulator": {
            "class": sim_desc,
            "parameter": name,
            "paired": paired,
            "controls": {k: repr(v) for k, v in fixed.items()},
            "lens_controls": {k: repr(v) for k, v in per_class[0].items()},
            "nonlens_controls": {k: repr(v) for k, v in per_class[1].items()},
            "noise": noise,
        }
    }
