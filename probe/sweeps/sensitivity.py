"""The sensitivity probe (paper section 3.2): correct-class score against a parameter.

:class:`Probe` runs a model over images and summarises the correct-class score
``s = p(lens)`` for lenses and ``1 - p(lens)`` for non-lenses, three ways:

- :meth:`Probe.by_parameter`: binned by a known per-image value (section 3.2.1);
- :meth:`Probe.sweep`: under a perturbation at each of several values (section 3.2.2);
- :meth:`Probe.resimulate`: on images re-simulated at each value of a simulator parameter.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.adapters.images import ImageSet
from probe.binning import Binning
from probe.perturbers import factory as perturber_factory
from probe.protocols import SimulatorProtocol
from probe.statistics import summarise
from probe.sweeps._steps import Timer
from probe.sweeps.binned import bin_counts, binned_scores, resolve_binning
from probe.sweeps.chunks import distributed_sweep
from probe.sweeps.resim import (
    TruthSampler,
    check_counts,
    check_simulator,
    class_controls,
    draw_tables,
    simulator_provenance,
    truth_data,
)
from probe.sweeps.result import Result
from probe.sweeps.scoring import ModelScorer, correct_class_score
from probe.validation import check_grid, check_labels, check_values

if TYPE_CHECKING:
    from probe.sweeps.categories import CategoryResult


class Probe(ModelScorer):
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
            with timer("inference"):
                p_all = distributed_sweep(
                    image_set, self.model_spec, client, perturbers, base, entropy,
                    batch_size=self.batch_size, chunk_size=self.chunk_for(image_set),
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
        n_l, n_nl = check_counts(n, n_nonlenses)
        grid = check_grid(values)
        fixed, per_class = class_controls(name, controls, lens_controls, nonlens_controls)
        entropy = _rng.root_entropy(rng)
        sampler = TruthSampler(sim, name, per_class, entropy, timer)
        labels = np.concatenate([np.ones(n_l, np.int8), np.zeros(n_nl, np.int8)])
        # Truth of every value first (cheap, here); rendering and scoring are the chunks.
        tables_at, labels, truth_hashes = draw_tables(
            sampler, grid, n_l, n_nl, labels, paired=paired
        )
        p_all = self._score_resimulated(
            sim, grid, tables_at, n_l + n_nl, name=name, noise=noise, timer=timer, client=client
        )
        data = truth_data(truth_hashes, n_l, n_nl)
        extra = simulator_provenance(sim, name, fixed, per_class, paired=paired, noise=noise)
        return self._paired_result("resimulate", grid, p_all, labels, entropy, timer, t_start,
                                   name=name, unit=unit, data=data, extra=extra,
                                   paired=paired)  # fmt: skip
