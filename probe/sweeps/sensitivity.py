"""The sensitivity probe (paper section 3.2): correct-class score against a parameter.

:class:`Probe` runs a model over images and summarises the correct-class score
``s = p(lens)`` for lenses and ``1 - p(lens)`` for non-lenses, three ways:

- :meth:`Probe.by_parameter`: binned by a known per-image value (section 3.2.1);
- :meth:`Probe.sweep`: under a perturbation at each of several values (section 3.2.2);
- :meth:`Probe.resimulate`: on images re-simulated at each value of a simulator parameter.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.adapters.images import ImageSet
from probe.adapters.models import ModelAdapter
from probe.binning import Binning
from probe.errors import ProbeTypeError, ProbeValueError
from probe.perturbers import Perturber
from probe.perturbers import factory as perturber_factory
from probe.protocols import SimulatorProtocol
from probe.provenance import hash_frame, now_utc, package_versions
from probe.sweeps.result import Result

if TYPE_CHECKING:
    from probe.sweeps.categories import CategoryResult
from probe.statistics import StatsParams, summarise
from probe.validation import (
    check_grid,
    check_labels,
    check_positive_int,
    check_values,
    first_nonfinite,
)

_CACHE_SIZE = 4  # unperturbed predictions kept, keyed by data hash


def correct_class_score(p_lens: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``s = p`` where label is 1 and ``1 - p`` where it is 0, in float64."""
    p = np.asarray(p_lens, dtype=np.float64)
    return np.where(np.asarray(labels) == 1, p, 1.0 - p)


class _Timer:
    """Accumulates wall time per phase, reported in provenance (used by the benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0


class BlockPerturbation:
    """One sweep value's perturbation, drawn per block of ``rng.BLOCK`` images.

    Block ``k`` (images ``k * BLOCK`` to ``(k + 1) * BLOCK - 1``, the last one possibly shorter)
    is always perturbed whole, with the generator of stream ``(PERTURB, value_index, k)``, so
    every image's perturbation is fixed by the seed alone, whatever the batching. A batch is
    assembled in one buffer (reused from batch to batch) from its blocks: a block inside the
    batch is written straight into it (:meth:`Perturber.apply_into`); a block that straddles two
    batches is perturbed once, when the first of them needs it, and its rest is kept for the
    next one (memory: one block). Batches must be asked for in increasing order, as
    :meth:`ImageSet.spans` yields them.
    """

    def __init__(
        self,
        image_set: ImageSet,
        pert: Perturber,
        entropy: int,
        value_index: int,
        batch_size: int,
        block_offset: int = 0,
    ) -> None:
        # block_offset: index of image_set's first block in the whole set (a chunk of it).
        self.block_offset = block_offset
        self.image_set = image_set
        self.pert = pert
        self.entropy = entropy
        self.value_index = value_index
        self.batch_size = batch_size
        # Output dtype; a user function's is learnt from its first output.
        self._dtype = pert.result_dtype(image_set.dtype)
        self._buffer: np.ndarray | None = None
        self._carry_index = -1
        self._carry: np.ndarray | None = None

    def _rng(self, k: int) -> np.random.Generator:
        return _rng.child(self.entropy, _rng.PERTURB, self.value_index, self.block_offset + k)

    def _carried(self, k: int, first: int, last: int) -> np.ndarray:
        if self._carry_index != k:
            self._carry = self.pert(self.image_set.batch(first, last), self._rng(k))
            self._carry_index = k
        assert self._carry is not None
        return self._carry

    def _output(self, size: int, dtype: np.dtype) -> np.ndarray:
        shape = (self.batch_size, *self.image_set.image_shape)
        buffer = self._buffer
        if buffer is None or buffer.dtype != dtype:
            # One buffer for all batches: a fresh array per batch costs page faults each time.
            buffer = self._buffer = np.empty(shape, dtype)
        return buffer[:size]

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Perturbed images ``start:stop`` (channels-last).

        The array returned may be overwritten by the next call: use it before asking again.
        """
        size, n = _rng.BLOCK, self.image_set.n
        out: np.ndarray | None = None
        for k in range(start // size, (stop - 1) // size + 1):
            first, last = k * size, min((k + 1) * size, n)
            lo, hi = max(start, first), min(stop, last)
            whole = lo == first and hi == last
            if whole and self._dtype is not None:
                if out is None:
                    out = self._output(stop - start, self._dtype)
                images = self.image_set.batch(first, last)
                self.pert.apply_into(images, self._rng(k), out[lo - start : hi - start])
                continue
            if whole:
                piece = self.pert(self.image_set.batch(first, last), self._rng(k))
            else:
                piece = self._carried(k, first, last)[lo - first : hi - first]
            if lo == start and hi == stop:
                return piece  # the batch is this one piece: no copy
            if out is None:
                if self._dtype is None:
                    self._dtype = piece.dtype
                out = self._output(stop - start, self._dtype)
            out[lo - start : hi - start] = piece
        assert out is not None
        return out


class Probe:
    """A model under test.

    Parameters
    ----------
    model : callable, keras.Model, torch.nn.Module, adapter, str or pathlib.Path
        ``f(images) -> scores``, a Keras or PyTorch model, an adapter of
        :mod:`probe.adapters` (ONNX, JAX, ...), a model file (``.keras``, ``.h5``, ``.onnx``,
        ``.pt``/``.pth``, ``.pt2``) or a ``"module:callable"`` spec. Outputs: sigmoid
        ``(n,)``/``(n, 1)`` or softmax ``(n, k)`` probabilities, or logits with
        ``logits=True``.
    batch_size : int
        Images per model call. Perturbations are drawn per block of ``probe.rng.BLOCK`` (64)
        images inside each batch, so results do not depend on it; memory stays bounded by a
        few batches (or blocks, whichever is larger).
    positive_class : int
        Column of the lens class in a softmax output.
    logits : bool
        Whether the model returns logits.
    channels_first : bool
        Images (and the model) use ``(n, C, H, W)``; perturbers still see ``(n, H, W, C)``.
    stats : StatsParams, optional
        Bootstrap size, confidence, minimum count and threshold of every statistic.
    progress : bool
        Show tqdm progress bars.
    label : str, optional
        Legend label of this model in plots (default: the model's description).
    trust_code : bool
        Let a model file run code: import the custom-layer modules a ``.keras`` file names
        (beyond simlens's and probe's own) and allow Lambda layers. Off by default
        (:func:`probe.adapters.load`).
    client : distributed.Client, optional
        Run scoring as a map over chunks on this Dask cluster (:mod:`probe.cluster`); every
        method also takes ``client=``. Results are bit-identical to the serial path (None).
        A model given as a path or spec is re-opened on each worker; a model object is sent
        with ``cloudpickle`` (by Dask).
    chunk_size : int, optional
        Images (or re-simulated systems) per chunk task on a cluster, rounded up to a multiple
        of ``probe.rng.BLOCK`` (default: a ``.zarr`` set's shard size, else 1024). Results do
        not depend on it.
    """

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
        from probe.chunks import DEFAULT_CHUNK, check_chunk_size
        from probe.cluster import ModelSpec

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
        self._model_spec = ModelSpec(model, self.adapter, options)

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
        return self._baseline(image_set, _Timer(), client)[0].copy()

    def _chunk_for(self, image_set: ImageSet) -> int:
        """The chunk size given, else a sharded zarr set's shard (so a task reads whole
        shards), else the default."""
        from probe.chunks import check_chunk_size

        shards = getattr(image_set._source, "shards", None)
        if self._chunk_given or not shards:
            return self.chunk_size
        return check_chunk_size(int(shards[0]))

    def _client(self, client: Any) -> Any:
        return client if client is not None else self.client

    def _baseline(
        self, image_set: ImageSet, timer: _Timer, client: Any = None
    ) -> tuple[np.ndarray, str]:
        """Unperturbed p(lens) of every image and the images' hash (the cache key)."""
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            from probe.chunks import distributed_baseline

            # One pass over the chunks gives both the scores and the hash leaves.
            with timer("inference"):
                p, data_hash = distributed_baseline(
                    image_set, self._model_spec, client, batch_size=self.batch_size,
                    chunk_size=self._chunk_for(image_set), progress=self.progress,
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
        timer: _Timer,
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
                raw = np.asarray(self.adapter._call(x))
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
        self, image_set: ImageSet, timer: _Timer, pending_hash: Future[str] | None
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
            yield _NoBar()
            return
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit="img", leave=False) as bar:
            yield bar

    # -- binned parameter -------------------------------------------------------------------
    def by_parameter(
        self,
        images: Any,
        labels: Any,
        values: Any,
        *,
        bins: Binning | int,
        name: str = "value",
        unit: str = "",
        rng: _rng.RngLike = None,
        client: Any = None,
    ) -> Result:
        """Correct-class score binned by a known per-image parameter (paper section 3.2.1).

        Parameters
        ----------
        images : array_like
            ``(n, H, W, C)`` images (numpy, memmap or h5py dataset).
        labels : array_like of shape (n,)
            1 for lenses, 0 for non-lenses.
        values : array_like of shape (n,)
            The parameter of each image (e.g. Einstein radius in arcsec).
        bins : Binning or int
            The binning; an int ``k`` means ``Binning.uniform(min(values), max(values), n=k)``.
        name, unit : str
            Name and unit of the parameter, for tables and plots.
        rng : numpy.random.Generator, int or None
            Seed of the bootstrap intervals (recorded in provenance).
        client : distributed.Client, optional
            Score on this Dask cluster (default: the Probe's ``client``); same results.

        Returns
        -------
        Result
            ``value`` is the bin centre; ``Result.bins`` lists edges and counts.
        """
        timer = _Timer()
        t_start = time.perf_counter()
        image_set = ImageSet(images, channels_first=self.channels_first)
        lab = check_labels(labels, image_set.n)
        vals = check_values(values, image_set.n)
        if isinstance(bins, int | np.integer) and not isinstance(bins, bool):
            if vals.min() == vals.max():
                raise ProbeValueError(f"values are all {vals.min()}; cannot make {bins} bins")
            binning = Binning.uniform(vals.min(), vals.max(), n=int(bins))
        elif isinstance(bins, Binning):
            binning = bins
        else:
            raise ProbeTypeError(f"bins must be a Binning or an int; got {bins!r}")
        bin_index = binning.assign(vals)
        entropy = _rng.root_entropy(rng)

        p, data_hash = self._baseline(image_set, timer, client)
        score = correct_class_score(p, lab)
        kept = bin_index >= 0
        with timer("statistics"):
            table = summarise(
                score[kept],
                lab[kept],
                bin_index[kept],
                binning.centres,
                params=self.stats,
                entropy=entropy,
            )
        counts = np.bincount(bin_index[kept], minlength=binning.n_bins)
        bins_frame = pd.DataFrame(
            {
                "bin": np.arange(binning.n_bins),
                "low": binning.lows,
                "high": binning.highs,
                "centre": binning.centres,
                "count": counts,
            }
        )
        centre_of = np.where(kept, binning.centres[np.maximum(bin_index, 0)], np.nan)
        scores = pd.DataFrame(
            {
                "sample": np.arange(image_set.n),
                "value": centre_of,
                "label": lab,
                "p_lens": p,
                "score": score,
                "parameter": vals,
                "bin": bin_index,
            }
        )
        n_dropped = int((~kept).sum())
        prov = self._provenance(
            "by_parameter", entropy, timer, t_start, data={"hash": data_hash, "n": image_set.n}
        )
        prov["binning"] = {**binning.to_dict(), "repr": repr(binning)}
        prov["n_dropped"] = n_dropped
        return Result(
            table=table,
            scores=scores,
            kind="by_parameter",
            parameter=name,
            unit=unit,
            paired=False,
            stats=self.stats,
            provenance=prov,
            bins=bins_frame,
            n_dropped=n_dropped,
            label=self.label,
        )

    def by_category(
        self,
        images: Any,
        labels: Any,
        categories: Any,
        *,
        name: str = "category",
        rng: _rng.RngLike = None,
        classes: Mapping[str, int] | None = None,
        client: Any = None,
    ) -> CategoryResult:
        """Correct-class score per category of a categorical column (e.g. ``kind``).

        Parameters
        ----------
        images : array_like
            ``(n, H, W, C)`` images.
        labels : array_like of shape (n,)
            1 for lenses, 0 for non-lenses.
        categories : array_like of shape (n,)
            Category of each image (strings, or anything with a string form; missing values
            form the category ``"<missing>"``).
        name : str
            Name of the column, for tables and plots.
        rng : numpy.random.Generator, int or None
            Seed of the bootstrap intervals.
        classes : mapping of str to int, optional
            For a multi-class model (output ``(n, k)``): the output column of each category's
            true class (e.g. ``{"lens": 1, "spiral": 2, "elliptical": 0, ...}``). The score of an
            image is then the probability of its true class (``logits=True`` applies a
            softmax); ``flagged`` still uses p(lens), the ``positive_class`` column. Without it,
            the score is the correct-class score of the lens/non-lens label.
        client : distributed.Client, optional
            Score on this Dask cluster (default: the Probe's ``client``); same results.

        Returns
        -------
        CategoryResult
            Per (category, group): n, mean score and its interval, accuracy, and the fraction
            flagged at ``stats.threshold`` (TPR of lenses, FPR of non-lenses) with its Wilson
            interval; categories ordered by mean score, lowest first.
        """
        from probe.sweeps.categories import CategoryResult, category_names, category_table

        timer = _Timer()
        t_start = time.perf_counter()
        image_set = ImageSet(images, channels_first=self.channels_first)
        lab = check_labels(labels, image_set.n)
        cats = category_names(categories, image_set.n, name=name)
        entropy = _rng.root_entropy(rng)
        p, data_hash = self._baseline(image_set, timer, client)
        if classes is None:
            score = correct_class_score(p, lab)
        else:
            score = self._true_class_scores(image_set, cats, classes, timer)
        with timer("statistics"):
            table = category_table(p, score, lab, cats, params=self.stats, entropy=entropy)
        scores = pd.DataFrame(
            {"sample": np.arange(image_set.n), "category": cats, "label": lab, "p_lens": p,
             "score": score}
        )  # fmt: skip
        prov = self._provenance(
            "by_category", entropy, timer, t_start, data={"hash": data_hash, "n": image_set.n}
        )
        prov["classes"] = None if classes is None else {str(k): int(v) for k, v in classes.items()}
        return CategoryResult(
            table=table,
            scores=scores,
            parameter=name,
            stats=self.stats,
            provenance=prov,
            label=self.label,
        )

    # -- perturbation sweep -----------------------------------------------------------------
    def sweep(
        self,
        images: Any,
        labels: Any,
        perturber: Any,
        values: Any,
        *,
        rng: _rng.RngLike = None,
        name: str | None = None,
        unit: str | None = None,
        client: Any = None,
    ) -> Result:
        """Correct-class score under a perturbation at each value (paper section 3.2.2).

        Each value's perturbation is applied batch by batch (in blocks of ``probe.rng.BLOCK``
        images) and scored at once, so memory holds a few batches, not one copy of the images
        per value. Unperturbed predictions are
        computed once (and cached across calls); values where the perturber is the identity
        (e.g. ``GaussianBlur(0)``) reuse them.

        Parameters
        ----------
        images, labels : array_like
            As in :meth:`by_parameter`.
        perturber : Perturber class, str or callable
            A class built with each value (``GaussianBlur``), a built-in short name
            (``"blur"``), or ``f(images, value, rng) -> images``.
        values : sequence of float
            Perturbation values (e.g. blur sigma in pixels), non-empty and distinct.
        rng : numpy.random.Generator, int or None
            Root seed. Perturbations are drawn per block of ``probe.rng.BLOCK`` (64) images:
            value ``j``, block ``k`` uses stream ``(0, j, k)`` and the perturber is called on
            the whole block, so the same seed gives the same perturbed images and results for
            any ``batch_size``.
        name, unit : str, optional
            Axis name and unit (default: from the perturber class).
        client : distributed.Client, optional
            Score on this Dask cluster (default: the Probe's ``client``); same results.

        Returns
        -------
        Result
            ``paired`` is True: :meth:`Result.trend` uses per-image slopes.
        """
        timer = _Timer()
        t_start = time.perf_counter()
        image_set = ImageSet(images, channels_first=self.channels_first)
        lab = check_labels(labels, image_set.n)
        grid = check_grid(values)
        build, description, default_name, default_unit = perturber_factory(perturber)
        # Build every perturber first: a bad value fails before any expensive work.
        perturbers = [build(float(v)) for v in grid]
        entropy = _rng.root_entropy(rng)

        base, data_hash = self._baseline(image_set, timer, client)
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            from probe.chunks import distributed_sweep

            with timer("inference"):
                p_all = distributed_sweep(
                    image_set, self._model_spec, client, perturbers, base, entropy,
                    batch_size=self.batch_size, chunk_size=self._chunk_for(image_set),
                    progress=self.progress, checkpoints=self.checkpoints,
                )  # fmt: skip
        else:
            p_all = self._sweep_serial(image_set, perturbers, base, entropy, description, timer)
        return self._paired_result(
            "sweep",
            grid,
            p_all,
            lab,
            entropy,
            timer,
            t_start,
            name=name or default_name,
            unit=default_unit if unit is None else unit,
            data={"hash": data_hash, "n": image_set.n},
            extra={
                "perturber": {
                    "description": description,
                    "params": [pert.params() for pert in perturbers],
                }
            },
        )

    def _sweep_serial(
        self,
        image_set: ImageSet,
        perturbers: list[Perturber],
        base: np.ndarray,
        entropy: int,
        description: str,
        timer: _Timer,
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
        timer: _Timer,
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

    # -- re-simulation ----------------------------------------------------------------------
    def resimulate(
        self,
        sim: SimulatorProtocol,
        name: str,
        values: Any,
        *,
        n: int = 300,
        n_nonlenses: int | None = None,
        rng: _rng.RngLike = None,
        paired: bool = True,
        controls: Mapping[str, Any] | None = None,
        noise: bool = True,
        unit: str = "",
        lens_controls: Mapping[str, Any] | None = None,
        nonlens_controls: Mapping[str, Any] | None = None,
        client: Any = None,
    ) -> Result:
        """Correct-class score on images re-simulated at each value of a simulator parameter.

        Parameters
        ----------
        sim : SimulatorProtocol
            Any object with ``sample_lenses``, ``sample_nonlenses``, ``render`` and ``vary``
            (e.g. ``simlens.Simulator``).
        name : str
            The simulator control to vary (e.g. "psf_scale").
        values : sequence of float
            Its values, non-empty and distinct.
        n : int
            Lenses per value.
        n_nonlenses : int, optional
            Non-lenses per value (default ``n``); 0 for a lens-only parameter such as theta_E.
        rng : numpy.random.Generator, int or None
            Root seed of the truth draws (stream ``(2, class[, value])``) and the bootstrap.
        paired : bool
            True: draw the systems once and re-render them with only ``name`` changed
            (``sim.vary``), so every system is seen at every value and the trend is a paired
            per-image slope. False: draw a fresh set per value (independent samples; the trend
            is a weighted fit of the means).
        controls : mapping, optional
            Other fixed controls passed to both samplers (e.g. ``{"psf_scale": 1.2}``).
        noise : bool
            Passed to ``sim.render``.
        unit : str
            Unit of ``name`` for plots.
        lens_controls, nonlens_controls : mapping, optional
            Controls of the lens draw only (e.g. ``{"theta_E": (1.0, 2.0), "mag_source_g":
            (20, 22)}``) and of the non-lens draw only (e.g. ``{"kind": "spiral"}``); they add
            to (and override) ``controls``. A bespoke population: lens-only controls must not
            go to the non-lens sampler.
        client : distributed.Client, optional
            Render and score on this Dask cluster (default: the Probe's ``client``); the truth
            tables are drawn here. Same results.
        """
        timer = _Timer()
        t_start = time.perf_counter()
        missing = [
            m
            for m in ("sample_lenses", "sample_nonlenses", "render", "vary")
            if not hasattr(sim, m)
        ]
        if missing:
            raise ProbeTypeError(
                f"sim must implement probe.SimulatorProtocol; it lacks {', '.join(missing)}"
            )
        if not isinstance(name, str) or not name:
            raise ProbeTypeError(f"name must be a non-empty str; got {name!r}")
        n_l = check_positive_int(n, "n")
        n_nl = (
            n_l
            if n_nonlenses is None
            else check_positive_int(n_nonlenses, "n_nonlenses", minimum=0)
        )
        grid = check_grid(values)
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
        entropy = _rng.root_entropy(rng)

        def draw(kind: int, count: int, value_index: int | None, extra: dict[str, Any]) -> Any:
            key = (_rng.SAMPLE, kind) if value_index is None else (_rng.SAMPLE, kind, value_index)
            gen = _rng.child(entropy, *key)
            sampler = sim.sample_lenses if kind == 0 else sim.sample_nonlenses
            given = per_class[kind]
            try:
                with timer("simulate"):
                    truth = sampler(count, rng=gen, **given, **extra)
            except (TypeError, ValueError, KeyError) as err:
                raise _hint(err, kind, name, sorted(given)) from err
            if not isinstance(truth, pd.DataFrame) or len(truth) != count:
                raise ProbeValueError(
                    f"sim.{sampler.__name__}({count}) must return a DataFrame of {count} rows"
                )
            return truth

        def vary(truth: pd.DataFrame, kind: int, value: float) -> pd.DataFrame:
            try:
                with timer("simulate"):
                    out = sim.vary(truth, name, value)
            except (TypeError, ValueError, KeyError) as err:
                raise _hint(err, kind, name) from err
            return out

        p_all = np.empty((grid.size, n_l + n_nl))
        lab = np.concatenate([np.ones(n_l, np.int8), np.zeros(n_nl, np.int8)])
        truth_hashes: list[str] = []
        if paired:
            base = [draw(0, n_l, None, {})] + ([draw(1, n_nl, None, {})] if n_nl else [])
            truth_hashes = [hash_frame(t) for t in base]
            lab = self._truth_labels(base, lab)
        # Truth of every value first (cheap, here); rendering and scoring are the chunks.
        tables_at: list[list[pd.DataFrame]] = []
        for j, value in enumerate(grid):
            if paired:
                tables = [vary(t, kind, float(value)) for kind, t in enumerate(base)]
            else:
                tables = [draw(0, n_l, j, {name: float(value)})]
                if n_nl:
                    tables.append(draw(1, n_nl, j, {name: float(value)}))
                truth_hashes.extend(hash_frame(t) for t in tables)
                labels_j = self._truth_labels(tables, lab)
                if not np.array_equal(labels_j, lab):
                    raise ProbeValueError("truth labels changed between values")
            tables_at.append(tables)
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            from probe.chunks import render_task
            from probe.cluster import chunk_map

            ckpt = self.checkpoints
            slots: list[tuple[int, int, int, str]] = []
            tasks = []
            for j, tables in enumerate(tables_at):
                offset = 0
                for truth in tables:
                    for lo in range(0, len(truth), self.chunk_size):
                        rows = truth.iloc[lo : lo + self.chunk_size]
                        a, b = offset + lo, offset + lo + len(rows)
                        # Named by the rows' own hash: a checkpoint is of exactly these rows.
                        ckpt_name = f"resim-{j:04d}-{a:010d}-{b:010d}-{hash_frame(rows)[:16]}"
                        got = None if ckpt is None else ckpt.get(ckpt_name)
                        if got is not None and got.get("p", np.empty(0)).shape == (b - a,):
                            p_all[j, a:b] = got["p"]
                            continue
                        slots.append((j, a, b, ckpt_name))
                        tasks.append((self._model_spec, sim, rows, noise, float(grid[j]),
                                      self.batch_size))  # fmt: skip
                    offset += len(truth)

            def save(t: int, result: Any) -> None:
                if ckpt is not None:
                    ckpt.put(slots[t][3], {"p": np.asarray(result)})

            with timer("simulate"):
                parts = chunk_map(render_task, tasks, client, desc=f"resimulate {name}",
                                  progress=self.progress, on_result=save)  # fmt: skip
            for (j, lo, hi, _), part in zip(slots, parts):
                p_all[j, lo:hi] = part
        else:
            self._render_serial(sim, grid, tables_at, p_all, noise, name, timer)
        import hashlib

        data_hash = hashlib.sha256("".join(truth_hashes).encode()).hexdigest()
        sim_desc = f"{type(sim).__module__}.{type(sim).__qualname__}"
        return self._paired_result(
            "resimulate",
            grid,
            p_all,
            lab,
            entropy,
            timer,
            t_start,
            name=name,
            unit=unit,
            data={
                "hash": data_hash,
                "hash_of": "truth tables",
                "n_lenses": n_l,
                "n_nonlenses": n_nl,
            },
            extra={
                "simulator": {
                    "class": sim_desc,
                    "parameter": name,
                    "paired": paired,
                    "controls": {k: repr(v) for k, v in fixed.items()},
                    "lens_controls": {k: repr(v) for k, v in per_class[0].items()},
                    "nonlens_controls": {k: repr(v) for k, v in per_class[1].items()},
                    "noise": noise,
                }
            },
            paired=paired,
        )

    def _render_serial(
        self,
        sim: SimulatorProtocol,
        grid: np.ndarray,
        tables_at: list[list[pd.DataFrame]],
        p_all: np.ndarray,
        noise: bool,
        name: str,
        timer: _Timer,
    ) -> None:
        with self._bar(p_all.size, f"resimulate {name}") as bar:
            for j, tables in enumerate(tables_at):
                value = float(grid[j])
                offset = 0
                for truth in tables:
                    for start in range(0, len(truth), self.batch_size):
                        rows = truth.iloc[start : start + self.batch_size]
                        with timer("simulate"):
                            imgs = sim.render(rows, noise=noise)
                        imgs = check_rendered(imgs, len(rows), value)
                        with timer("inference"):
                            p_all[j, offset + start : offset + start + len(rows)] = self.adapter(
                                imgs
                            )
                        bar.update(len(rows))
                    offset += len(truth)

    @staticmethod
    def _truth_labels(tables: list[pd.DataFrame], default: np.ndarray) -> np.ndarray:
        """Labels from the truth tables' ``label`` column where present, else by origin."""
        if not all("label" in t.columns for t in tables):
            return default
        return check_labels(np.concatenate([t["label"].to_numpy() for t in tables]), default.size)

    # -- provenance -------------------------------------------------------------------------
    def _provenance(
        self, kind: str, entropy: int, timer: _Timer, t_start: float, *, data: dict[str, Any]
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


class _NoBar:
    def update(self, n: int) -> None:
        """Do nothing (progress bars off)."""


def _hint(err: Exception, kind: int, name: str, given: list[str] | None = None) -> ProbeValueError:
    """Name what the sampler was given, so a rejected fixed control is not blamed on ``name``."""
    who = "non-lenses" if kind == 1 else "lenses"
    sent = f"{name!r} and controls {', '.join(map(repr, given))}" if given else repr(name)
    hint = ""
    if kind == 1:
        hint = (
            f"; lens-only controls belong in lens_controls= (and if {name!r} is a lens-only "
            "parameter, pass n_nonlenses=0)"
        )
    return ProbeValueError(f"the simulator rejected {sent} for {who} ({err}){hint}")


def check_rendered(images: Any, rows: int, value: float) -> np.ndarray:
    """A simulator's rendered images as an array, checked: 4-D, one image per truth row (``value``:
    the re-simulated value, named in the error)."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[0] != rows:
        raise ProbeValueError(
            f"sim.render returned shape {arr.shape} for {rows} rows at value {value}; "
            "expected (rows, H, W, C)"
        )
    bad = first_nonfinite(arr)
    if bad is not None:
        raise ProbeValueError(f"sim.render produced {bad[1]} at row {bad[0]} for value {value}")
    return arr
