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
from probe.provenance import now_utc, package_versions
from probe.sweeps._steps import BlockPerturbation, NoBar, Timer
from probe.sweeps.binned import bin_counts, binned_scores, resolve_binning
from probe.sweeps.resim import (
    TruthSampler,
    check_simulator,
    class_controls,
    draw_tables,
    render_chunked,
    render_serial,
    simulator_provenance,
    truth_data,
)
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
        from probe.cluster import ModelSpec
        from probe.sweeps.chunks import DEFAULT_CHUNK, check_chunk_size

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
        return self._baseline(image_set, Timer(), client)[0].copy()

    def _chunk_for(self, image_set: ImageSet) -> int:
        """The chunk size given, else a sharded zarr set's shard (so a task reads whole
        shards), else the default."""
        from probe.sweeps.chunks import check_chunk_size

        shards = getattr(image_set._source, "shards", None)
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
            from probe.sweeps.chunks import distributed_baseline

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
        timer = Timer()
        t_start = time.perf_counter()
        image_set = ImageSet(images, channels_first=self.channels_first)
        lab = check_labels(labels, image_set.n)
        vals = check_values(values, image_set.n)
        binning = resolve_binning(vals, bins)
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
        bins_frame = bin_counts(binning, bin_index)
        scores = binned_scores(binning, bin_index, vals, lab, p, score)
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

        timer = Timer()
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
        timer = Timer()
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
            from probe.sweeps.chunks import distributed_sweep

            with timer("inference"):
                p_all = distributed_sweep(
                    image_set, self._model_spec, client, perturbers, base, entropy,
                    batch_size=self.batch_size, chunk_size=self._chunk_for(image_set),
                    progress=self.progress, checkpoints=self.checkpoints,
                )  # fmt: skip
        else:
            p_all = self._sweep_serial(image_set, perturbers, base, entropy, description, timer)
        params = [pert.params() for pert in perturbers]
        extra = {"perturber": {"description": description, "params": params}}
        return self._paired_result("sweep", grid, p_all, lab, entropy, timer, t_start,
                                   name=name or default_name,
                                   unit=default_unit if unit is None else unit,
                                   data={"hash": data_hash, "n": image_set.n},
                                   extra=extra)  # fmt: skip

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
        timer = Timer()
        t_start = time.perf_counter()
        check_simulator(sim, name)
        n_l = check_positive_int(n, "n")
        n_nl = (
            n_l
            if n_nonlenses is None
            else check_positive_int(n_nonlenses, "n_nonlenses", minimum=0)
        )
        grid = check_grid(values)
        fixed, per_class = class_controls(name, controls, lens_controls, nonlens_controls)
        entropy = _rng.root_entropy(rng)
        sampler = TruthSampler(sim, name, per_class, entropy, timer)
        labels = np.concatenate([np.ones(n_l, np.int8), np.zeros(n_nl, np.int8)])
        # Truth of every value first (cheap, here); rendering and scoring are the chunks.
        tables_at, labels, truth_hashes = draw_tables(
            sampler, grid, n_l, n_nl, labels, paired=paired
        )
        p_all = np.empty((grid.size, n_l + n_nl))
        client = self._client(client)
        if client is not None or self.checkpoints is not None:
            render_chunked(sim, grid, tables_at, p_all, model_spec=self._model_spec,
                           chunk_size=self.chunk_size, batch_size=self.batch_size,
                           checkpoints=self.checkpoints, progress=self.progress, noise=noise,
                           name=name, timer=timer, client=client)  # fmt: skip
        else:
            with self._bar(p_all.size, f"resimulate {name}") as bar:
                render_serial(sim, grid, tables_at, p_all, predict=self.adapter,
                              batch_size=self.batch_size, bar=bar, noise=noise,
                              timer=timer)  # fmt: skip
        data = truth_data(truth_hashes, n_l, n_nl)
        extra = simulator_provenance(sim, name, fixed, per_class, paired=paired, noise=noise)
        return self._paired_result("resimulate", grid, p_all, labels, entropy, timer, t_start,
                                   name=name, unit=unit, data=data, extra=extra,
                                   paired=paired)  # fmt: skip

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
