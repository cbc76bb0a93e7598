"""The model side of :class:`probe.Probe`: predictions, their cache, chunking and provenance.

:class:`ModelScorer` holds the model under test and scores images with it: unperturbed (cached by
the images' hash), under a perturbation (serially, block by block) or re-rendered by a simulator,
here or chunk by chunk on a Dask cluster (:mod:`probe.sweeps.chunks`); it turns a matrix of scores
(values x images) into a :class:`probe.Result` with its provenance. :class:`probe.Probe` adds the
sweeps (:mod:`probe.sweeps.sensitivity`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.adapters.images import ImageSet
from probe.adapters.models import ModelAdapter
from probe.cluster import ModelSpec
from probe.errors import ProbeTypeError, ProbeValueError
from probe.perturbers import Perturber
from probe.protocols import SimulatorProtocol
from probe.provenance import now_utc, package_versions
from probe.statistics import StatsParams, summarise
from probe.sweeps._steps import BlockPerturbation, NoBar, Timer
from probe.sweeps.chunks import DEFAULT_CHUNK, check_chunk_size, distributed_baseline
from probe.sweeps.resim import render_chunked, render_serial
from probe.sweeps.result import Result
from probe.validation import check_positive_int, first_nonfinite

__all__ = ["ModelScorer", "correct_class_score"]

_CACHE_SIZE = 4  # unperturbed predictions kept, keyed by data hash


def correct_class_score(p_lens: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``s = p`` where label is 1 and ``1 - p`` where it is 0, in float64."""
    p = np.asarray(p_lens, dtype=np.float64)
    return np.where(np.asarray(labels) == 1, p, 1.0 - p)


class ModelScorer:
    """A model under test and how it scores images: the base of :class:`probe.Probe`, which
    documents the parameters."""

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int = 256,
        positive_class: int = 1,
        logits: bool = False,
        channels_first: bool = False,
        stats: StatsParams | None = None,
        progress: bool = False,
        label: str | None = None,
        trust_code: bool = False,
        client: Any = None,
        chunk_size: int | None = None,
    ) -> None:

        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.chunk_size = check_chunk_size(DEFAULT_CHUNK if chunk_size is None else chunk_size)
        self._chunk_given = chunk_size is not None
        self.client = client
        # A probe.checkpoints.Checkpoints: baseline and sweep scores go chunk by chunk through
        # it (reused when verified, saved as computed); the CLI sets it for --resume.
        self.checkpoints: Any = None
        self.adapter = ModelAdapter(
            model,
            positive_class=positive_class,
            logits=logits,
            channels_first=channels_first,
            trust_code=trust_code,
        )
        self.channels_first = bool(channels_first)
        self.stats = stats if stats is not None else StatsParams()
        if not isinstance(self.stats, StatsParams):
            raise ProbeTypeError(f"stats must be a StatsParams; got {stats!r}")
        self.progress = bool(progress)
        self.label = label or self.adapter.description
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        options = {
            "positive_class": self.adapter.positive_class,
            "logits": self.adapter.logits,
            "channels_first": self.channels_first,
            "trust_code": bool(trust_code),
        }
        # What a chunk task needs to rebuild this model in a worker (picklable; cluster.ModelSpec).
        self.model_spec = ModelSpec(model, self.adapter, options)

    def __repr__(self) -> str:
        return (
            f"Probe({self.adapter.description}, batch_size={self.batch_size}, "
            f"positive_class={self.adapter.positive_class}, logits={self.adapter.logits}, "
            f"channels_first={self.channels_first}, stats={self.stats!r})"
        )

    # -- predictions ------------------------------------------------------------------------
    def predict(self, images: Any, *, client: Any = None) -> np.ndarray:
        """p(lens) of every image, float64 of shape (n,); cached by the images' hash.

        ``client``: a ``distributed.Client`` to score on (default: the Probe's own, if any).
        """
        image_set = ImageSet(images, channels_first=self.channels_first)
        return self._baseline(image_set, Timer(), client)[0].copy()

    def chunk_for(self, image_set: ImageSet) -> int:
        """Images per chunk task over ``image_set``: the chunk size given, else a sharded zarr
        set's shard (so a task reads whole shards), else the default."""
        shards = getattr(image_set.source, "shards", None)
        if self._chunk_given or not shards:
            return self.chunk_size
        return check_chunk_size(int(shards[0]))

    def _client(self, client: Any) -> Any:
        return client if client is not None else self.client

    def _baseline(
        self, image_set: ImageSet, timer: Timer, client: Any = None
    ) -> tuple[np.ndarray, str]:
        """Unperturbed p(lens) of every image and the images' hash (the cache key)."""
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            # One pass over the chunks gives both the scores and the hash leaves.
            with timer("inference"):
                p, data_hash = distributed_baseline(
                    image_set, self.model_spec, client, batch_size=self.batch_size,
                    chunk_size=self.chunk_for(image_set), progress=self.progress,
                    checkpoints=self.checkpoints,
                )  # fmt: skip
            return self._remember(data_hash, p)
        if self._cache or not image_set.in_memory:
            with timer("validate_hash"):
                data_hash = image_set.hash_pixels(self.batch_size)
            if data_hash in self._cache:
                self._cache.move_to_end(data_hash)
                return self._cache[data_hash], data_hash
            return self._remember(data_hash, self._predict_all(image_set, timer, None))
        # Nothing is cached, so knowing the hash first could not save the pass: hash in a
        # second thread (hashlib releases the GIL) while the model runs, and validate each
        # batch just before the model sees it.
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(image_set.hash_pixels, self.batch_size, check=False)
            p = self._predict_all(image_set, timer, future)
            with timer("validate_hash"):
                data_hash = future.result()
        return self._remember(data_hash, p)

    def _remember(self, data_hash: str, p: np.ndarray) -> tuple[np.ndarray, str]:
        self._cache[data_hash] = p
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return p, data_hash

    def _true_class_scores(
        self,
        image_set: ImageSet,
        cats: np.ndarray,
        classes: Mapping[str, int],
        timer: Timer,
    ) -> np.ndarray:
        """Probability of each image's true class (its category's column of the output)."""
        from probe.adapters.models import to_p_lens

        missing = sorted(set(cats.tolist()) - set(classes))
        if missing:
            raise ProbeValueError(
                f"classes has no output column for categor{'ies' if len(missing) > 1 else 'y'} "
                f"{', '.join(map(repr, missing))}"
            )
        column = np.array([int(classes[c]) for c in cats])
        score = np.empty(image_set.n)
        for start, stop in image_set.spans(self.batch_size):
            batch = image_set.batch(start, stop)
            x = np.moveaxis(batch, -1, 1) if self.channels_first else batch
            with timer("inference"):
                raw = np.asarray(self.adapter.raw_predict(x))
            if raw.ndim != 2 or raw.shape[1] < 2:
                raise ProbeValueError(
                    f"classes= needs a multi-class model output (n, k >= 2); got {raw.shape}"
                )
            cols = column[start:stop]
            # to_p_lens validates and normalises one column at a time (softmax for logits).
            for k in np.unique(cols):
                rows = np.flatnonzero(cols == k)
                probs = to_p_lens(raw, raw.shape[0], positive_class=int(k),
                                  logits=self.adapter.logits)  # fmt: skip
                score[start + rows] = probs[rows]
        return score

    def _predict_all(
        self, image_set: ImageSet, timer: Timer, pending_hash: Future[str] | None
    ) -> np.ndarray:
        p = np.empty(image_set.n)
        with self._bar(image_set.n, "baseline") as bar:
            for start, stop in image_set.spans(self.batch_size):
                batch = image_set.batch(start, stop)
                if pending_hash is not None:
                    with timer("validate_hash"):
                        image_set.check_finite(batch, start)
                with timer("inference"):
                    p[start:stop] = self.adapter(batch)
                bar.update(stop - start)
        p.setflags(write=False)
        return p

    @contextmanager
    def _bar(self, total: int, desc: str) -> Iterator[Any]:
        if not self.progress:
            yield NoBar()
            return
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit="img", leave=False) as bar:
            yield bar

    def _sweep_serial(
        self,
        image_set: ImageSet,
        perturbers: list[Perturber],
        base: np.ndarray,
        entropy: int,
        description: str,
        timer: Timer,
    ) -> np.ndarray:
        p_all = np.empty((len(perturbers), image_set.n))
        with self._bar(len(perturbers) * image_set.n, f"sweep {description}") as bar:
            for j, pert in enumerate(perturbers):
                if pert.is_identity:
                    p_all[j] = base
                    bar.update(image_set.n)
                    continue
                blocks = BlockPerturbation(image_set, pert, entropy, j, self.batch_size)
                for start, stop in image_set.spans(self.batch_size):
                    with timer("perturb"):
                        out = blocks.batch(start, stop)
                    # Built-ins keep finite pixels finite; only user code needs the check.
                    bad = None if pert.preserves_finite else first_nonfinite(out)
                    if bad is not None:
                        raise ProbeValueError(
                            f"perturber {pert!r} produced {bad[1]} at image index {start + bad[0]}"
                        )
                    with timer("inference"):
                        p_all[j, start:stop] = self.adapter(out)
                    bar.update(stop - start)
        return p_all

    def _paired_result(
        self,
        kind: str,
        grid: np.ndarray,
        p_all: np.ndarray,
        lab: np.ndarray,
        entropy: int,
        timer: Timer,
        t_start: float,
        *,
        name: str,
        unit: str,
        data: dict[str, Any],
        extra: dict[str, Any],
        paired: bool = True,
    ) -> Result:
        k, n = p_all.shape
        labels_all = np.tile(lab, k)
        p_flat = p_all.reshape(-1)
        score = correct_class_score(p_flat, labels_all)
        keys = np.repeat(np.arange(k), n)
        with timer("statistics"):
            table = summarise(score, labels_all, keys, grid, params=self.stats, entropy=entropy)
        scores = pd.DataFrame(
            {
                "sample": np.tile(np.arange(n), k),
                "value": np.repeat(grid, n),
                "label": labels_all,
                "p_lens": p_flat,
                "score": score,
            }
        )
        prov = self._provenance(kind, entropy, timer, t_start, data=data)
        prov.update(extra)
        return Result(
            table=table,
            scores=scores,
            kind=kind,
            parameter=name,
            unit=unit,
            paired=paired,
            stats=self.stats,
            provenance=prov,
            label=self.label,
        )

    def _score_resimulated(
        self,
        sim: SimulatorProtocol,
        grid: np.ndarray,
        tables_at: Any,
        n: int,
        *,
        name: str,
        noise: bool,
        timer: Timer,
        client: Any,
    ) -> np.ndarray:
        """``(values, n)`` p(lens) of the truth tables rendered at each value: chunk by chunk
        on the cluster (or through the checkpoints), else here."""
        p_all = np.empty((grid.size, n))
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            render_chunked(sim, grid, tables_at, p_all, model_spec=self.model_spec,
                           chunk_size=self.chunk_size, batch_size=self.batch_size,
                           checkpoints=self.checkpoints, progress=self.progress, noise=noise,
                           name=name, timer=timer, client=client)  # fmt: skip
        else:
            with self._bar(p_all.size, f"resimulate {name}") as bar:
                render_serial(sim, grid, tables_at, p_all, predict=self.adapter,
                              batch_size=self.batch_size, bar=bar, noise=noise,
                              timer=timer)  # fmt: skip
        return p_all

    # -- provenance -------------------------------------------------------------------------
    def _provenance(
        self, kind: str, entropy: int, timer: Timer, t_start: float, *, data: dict[str, Any]
    ) -> dict[str, Any]:
        seconds = dict(timer.seconds)
        seconds["total"] = time.perf_counter() - t_start
        return {
            "kind": kind,
            "created": now_utc(),
            "model": {
                "hash": self.adapter.hash,
                "description": self.adapter.description,
                "positive_class": self.adapter.positive_class,
                "logits": self.adapter.logits,
                "channels_first": self.channels_first,
            },
            "data": data,
            "seeds": {
                "entropy": entropy,
                "streams": "SeedSequence(entropy, spawn_key=(stream, ...)); stream 0 perturb "
                f"(value, block of {_rng.BLOCK} images), 1 bootstrap (value/bin, group), "
                "2 simulator draws (class[, value]), 3 trend bootstrap (group)",
                "perturb_block": _rng.BLOCK,
            },
            "batch_size": self.batch_size,
            "stats": self.stats.to_dict(),
            "packages": package_versions(),
            "timings_s": seconds,
        }
