"""``--resume`` of probe's commands: which chunk checkpoints a command keeps, and its scoring
through them (the mechanism itself is :mod:`probe.checkpoints`).

Every command that writes results and scores a model (``bin``, ``sweep``, ``resim``,
``selection``, ``yield --out``) keeps its chunk scores under ``OUT/checkpoints`` while it runs,
keyed by everything that determines them: the model's content identity
(:func:`probe.cache.model_identity`), the data's identity (:func:`probe.checkpoints.data_identity`)
or the simulator's (:func:`probe.cache.simulator_identity`) with the population's controls,
sizes and seed, the chunk and batch sizes and probe's source digest. Thresholds, bins and plots
are not in the key: they do not change a score. ``--resume`` reuses the verified chunks of a
killed run with the same key (another key is refused, naming what differs); a run without it
discards old checkpoints. Once the outputs are written the checkpoints are removed.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from probe.checkpoints import Checkpoints
from probe.cli_policy import notice
from probe.errors import ProbeValueError


def open_checkpoints(
    args: argparse.Namespace,
    extra: dict[str, Any] | Callable[[], dict[str, Any]],
    *,
    model: Any = None,
) -> Checkpoints | None:
    """The run's checkpoints under ``args.out/checkpoints``, keyed by the model's identity and
    scoring options, the seed, probe's source digest and ``extra`` (or what it returns: the
    data's digest is then computed only for a model with an identity); None when the model has
    no content identity (``--resume`` is then refused: its checkpoints could not be verified)."""
    from probe.cache import model_identity, source_digest

    spec = args.model if model is None else model
    ident = model_identity(spec)
    if ident is None:
        if args.resume:
            raise ProbeValueError(
                f"--resume: the model {spec!r} declares no identity (a callable needs "
                "model_id or weight_files), so its checkpoints cannot be verified"
            )
        return None
    key = {
        "command": args.command,
        "model": ident,
        "positive_class": args.positive_class,
        "logits": args.logits,
        "channels_first": args.channels_first,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "probe_source": source_digest("probe"),
        **(extra() if callable(extra) else extra),
    }
    return Checkpoints(Path(args.out) / "checkpoints", key, resume=args.resume, log=notice)


def selection_checkpoints(
    args: argparse.Namespace, p: Any, *, sim: Any = None, controls: Any = None
) -> Checkpoints | None:
    """``probe selection``: keyed by the saved set (``--data``) or the simulator, the
    population's controls (after the --param ranges are applied), ``--n``, ``--n-nonlenses``,
    ``--kind`` and ``--detectable``; and by ``--negatives``."""
    from probe.cache import simulator_identity
    from probe.checkpoints import data_identity

    def opened(path: str) -> dict[str, Any]:
        from probe.adapters.datasets import open_image_set

        # Opened first, so that a missing or unreadable set is named as the command names it.
        data = open_image_set(path)
        close = getattr(data, "close", None)
        if callable(close):
            close()
        return data_identity(path)

    def extra() -> dict[str, Any]:
        key: dict[str, Any] = {"chunk_size": p.chunk_size}
        if args.data:
            key["data"] = opened(args.data)
        else:
            key["simulator"] = simulator_identity(sim)
            # One entry each, so that a refusal names the option that differs.
            key["n"] = args.n
            key["n_nonlenses"] = args.n_nonlenses or 0
            key["kind"] = args.kind
            key["detectable"] = args.detectable
            key["controls"] = repr(controls)
        key["negatives"] = opened(args.negatives) if args.negatives else None
        return key

    return open_checkpoints(args, extra)


def yield_checkpoints(args: argparse.Namespace, p: Any, sim: Any) -> Checkpoints | None:
    """``probe yield --out``: keyed by the simulator (``--survey``, ``--npix``) and the
    population's sizes (``--n-density``, ``--n-other``, ``--n``); None without ``--out``."""
    from probe.cache import simulator_identity

    if args.out is None:
        if args.resume:
            raise ProbeValueError("--resume needs --out (the checkpoints live in OUT/checkpoints)")
        return None
    extra = {
        "chunk_size": p.chunk_size,
        "simulator": simulator_identity(sim),
        "survey": args.survey,
        "npix": args.npix,
        "n_density": args.n_density,
        "n_other": args.n_other,
        "n": args.n,
    }
    return open_checkpoints(args, extra)


def study_checkpoints(
    args: argparse.Namespace, models: Any, config: Any, sim: Any
) -> Checkpoints | None:
    """``probe study``: keyed by every model's identity, label and non-lens kinds, the sizes,
    seed, experiments, set controls and batch size (``config``), the simulator, the chunk size
    and probe's source; None when a model has no content identity (``--resume`` refused)."""
    from dataclasses import asdict

    from probe.cache import model_identity, simulator_identity, source_digest

    idents = []
    for m in models:
        ident = model_identity(m.model)
        if ident is None:
            if getattr(args, "resume", False):
                raise ProbeValueError(
                    f"--resume: the model {m.model!r} declares no identity (a callable needs "
                    "model_id or weight_files), so its checkpoints cannot be verified"
                )
            return None
        idents.append({"label": m.name, "model": ident, "nonlens_kinds": m.nonlens_kinds})
    key = {
        "command": "study",
        "models": idents,
        "sizes": asdict(config.sizes),
        "seed": config.seed,
        "experiments": list(config.experiments),
        "sets": repr(config.sets),
        "batch_size": config.batch_size,
        "simulator": simulator_identity(sim),
        "chunk_size": getattr(args, "chunk_size", None),
        "probe_source": source_digest("probe"),
    }
    resume = bool(getattr(args, "resume", False))
    return Checkpoints(Path(args.out) / "checkpoints", key, resume=resume, log=notice)


def images_scope(images: Any) -> str:
    """A checkpoint scope naming an in-memory image array by its content (shape, dtype and
    bytes): its chunk files are reused only for exactly these images."""
    a = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{a.dtype.str}:{a.shape}".encode())
    h.update(a.tobytes())
    return f"images-{h.hexdigest()[:16]}-"


def predict(p: Any, images: Any, checkpoints: Checkpoints | None, scope: str) -> np.ndarray:
    """``p.predict(images)`` with its chunks going through ``checkpoints`` under ``scope``
    (reused when verified, saved as computed); plain ``p.predict`` when None."""
    if checkpoints is None:
        return np.asarray(p.predict(images))
    p.checkpoints = checkpoints.scoped(scope)
    try:
        return np.asarray(p.predict(images))
    finally:
        p.checkpoints = None


def render_and_score(
    p: Any, sim: Any, truth: Any, checkpoints: Checkpoints | None, scope: str
) -> np.ndarray:
    """p(lens) of ``truth``'s rows rendered by ``sim`` (with noise), ``p.chunk_size`` rows per
    chunk task (:func:`probe.sweeps.chunks.render_task`): rendered and scored on the Probe's Dask
    workers when it has a client, else here. Each chunk's scores go through ``checkpoints``,
    named by its rows' hash, so a resumed run neither renders nor scores a finished chunk.
    Equal to ``p.predict(sim.render(truth))``: simlens renders every row from its own seed."""
    from probe.cluster import chunk_map
    from probe.provenance import hash_frame
    from probe.sweeps.chunks import render_task

    n = len(truth)
    scores = np.empty(n)
    tasks: list[tuple[Any, ...]] = []
    slots: list[tuple[int, int, str]] = []
    for lo in range(0, n, p.chunk_size):
        rows = truth.iloc[lo : lo + p.chunk_size]
        hi = lo + len(rows)
        name = f"{scope}rows-{lo:010d}-{hi:010d}-{hash_frame(rows)[:16]}"
        got = None if checkpoints is None else checkpoints.get(name)
        if got is not None and got.get("p", np.empty(0)).shape == (hi - lo,):
            scores[lo:hi] = got["p"]
            continue
        slots.append((lo, hi, name))
        tasks.append((p.model_spec, sim, rows, True, float("nan"), p.batch_size))

    def save(t: int, result: Any) -> None:
        if checkpoints is not None:
            checkpoints.put(slots[t][2], {"p": np.asarray(result)})

    parts = chunk_map(render_task, tasks, p.client, desc=f"render and score {scope.rstrip('-')}",
                      progress=p.progress, on_result=save)  # fmt: skip
    for (lo, hi, _), part in zip(slots, parts):
        scores[lo:hi] = part
    return scores


def finish(checkpoints: Checkpoints | None, args: argparse.Namespace) -> None:
    """After the outputs are written: say (with ``--resume``) how many chunks were reused, and
    remove the checkpoints (nothing is left to resume)."""
    if checkpoints is None:
        return
    if getattr(args, "resume", False):
        notice(checkpoints.summary())
    checkpoints.discard()
