"""The outcome of a probe run: a tidy table, per-sample scores, trends, plots and saving."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probe import rng as _rng
from probe.errors import ProbeKeyError, ProbeValueError
from probe.provenance import atomic_write, dumps, to_jsonable
from probe.statistics import GROUPS, StatsParams, column_methods
from probe.trends import Trend, image_trend, paired_trend, wls_trend
from probe.validation import names_list

_SUFFIXES = (".parquet", ".pq", ".csv", ".json")


@dataclass
class Result:
    """What :class:`probe.Probe` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (value, group) with columns ``value, group, n, mean, std, sem, ci_low,
        ci_high, accuracy, low_count``. ``value`` is the bin centre (binned parameters) or the
        perturbation/simulator value (sweeps); ``group`` is "lens", "nonlens" or "all". Formulas:
        :attr:`methods`.
    scores : pandas.DataFrame
        One row per sample and value: ``sample`` (image index; for an unpaired re-simulation the
        row of that value's fresh draw), ``value``, ``label``, ``p_lens`` and ``score`` (the
        correct-class score); binned results add ``parameter`` (the raw value) and ``bin``.
    kind : str
        "by_parameter", "sweep" or "resimulate".
    parameter, unit : str
        Name and unit of the value axis (for plots).
    paired : bool
        Whether the same samples appear at every value (sweeps, paired re-simulation), which
        decides the trend statistic.
    stats : StatsParams
        Settings used for every statistic.
    provenance : dict
        Model hash, data hash, seeds, perturber/binning parameters, package versions, timings.
    bins : pandas.DataFrame or None
        For binned results: ``bin, low, high, centre, count`` (count of all samples per bin).
    n_dropped : int
        Samples left out because their value fell outside the binning (``outside="drop"``).
    label : str
        Legend label in overlaid plots (defaults to the model description).
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    kind: str
    parameter: str
    unit: str
    paired: bool
    stats: StatsParams
    provenance: dict[str, Any]
    bins: pd.DataFrame | None = None
    n_dropped: int = 0
    label: str = ""
    methods: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.methods:
            self.methods = column_methods(self.stats)
        if not self.label:
            self.label = str(self.provenance.get("model", {}).get("description", "model"))

    @property
    def groups(self) -> tuple[str, ...]:
        """Groups present in :attr:`table`, in the order lens, nonlens, all."""
        present = set(self.table["group"])
        return tuple(g for g in GROUPS if g in present)

    @property
    def axis_label(self) -> str:
        """``"parameter [unit]"`` for plot axes."""
        return f"{self.parameter} [{self.unit}]" if self.unit else self.parameter

    def trend(self, group: str = "all", *, method: str | None = None) -> Trend:
        """Slope of the mean correct-class score against the value, with interval and p-value.

        Binned parameters and unpaired re-simulations (independent samples per value) use, by
        default, least squares over images with a bootstrap interval over images
        (:func:`probe.trends.image_trend`); ``method="weighted"`` fits the bin means with
        weights 1/sem^2 instead (biased when scores saturate; see
        :func:`probe.trends.wls_trend`). Sweeps and paired re-simulations (the same images
        at every value) use the mean of per-image slopes. ``Trend.method`` gives the formulas.

        Parameters
        ----------
        group : {"lens", "nonlens", "all"}
            Which samples.
        method : {"images", "weighted"}, optional
            Trend of unpaired results; default :attr:`StatsParams.trend`.
        """
        if group not in self.groups:
            raise ProbeKeyError(
                f"group {group!r} not in this result; have {names_list(self.groups)}"
            )
        chosen = self.stats.trend if method is None else method
        if chosen not in ("images", "weighted"):
            raise ProbeValueError(f"method must be 'images' or 'weighted'; got {method!r}")
        g = GROUPS.index(group)
        entropy = int(self.provenance["seeds"]["entropy"])
        if not self.paired and chosen == "images":
            sel = self.scores if group == "all" else self.scores[self._label_mask(group)]
            sel = sel[np.isfinite(sel["value"].to_numpy(dtype=np.float64))]
            labels = sel["label"].to_numpy(dtype=np.int64)
            x = sel["value"].to_numpy(dtype=np.float64)
            # Binned values are drawn with the images: resample images within class only.
            # A re-simulation fixes the count per value: resample within (value, class).
            strata = labels if self.kind == "by_parameter" else _value_strata(x, labels)
            return image_trend(
                x,
                sel["score"].to_numpy(dtype=np.float64),
                strata,
                n_boot=self.stats.n_boot,
                confidence=self.stats.confidence,
                rng=_rng.child(entropy, _rng.TREND, g),
                group=group,
            )
        if self.paired:
            sel = self.scores if group == "all" else self.scores[self._label_mask(group)]
            matrix = sel.pivot(index="sample", columns="value", values="score")
            values = matrix.columns.to_numpy(dtype=np.float64)
            return paired_trend(
                values,
                matrix.to_numpy(dtype=np.float64),
                n_boot=self.stats.n_boot,
                confidence=self.stats.confidence,
                rng=_rng.child(entropy, _rng.TREND, g),
                group=group,
            )
        rows = self.table[self.table["group"] == group]
        return wls_trend(
            rows["value"].to_numpy(dtype=np.float64),
            rows["mean"].to_numpy(dtype=np.float64),
            rows["sem"].to_numpy(dtype=np.float64),
            rows["n"].to_numpy(),
            confidence=self.stats.confidence,
            group=group,
        )

    def _label_mask(self, group: str) -> pd.Series:
        return self.scores["label"] == (1 if group == "lens" else 0)

    def trends(self) -> dict[str, dict[str, Any] | None]:
        """Every group's trend as a dict; None where a trend cannot be estimated."""
        out: dict[str, dict[str, Any] | None] = {}
        for group in self.groups:
            try:
                out[group] = self.trend(group).as_dict()
            except ProbeValueError:
                out[group] = None
        return out

    def metadata(self) -> dict[str, Any]:
        """Everything saved beside the table: provenance, formulas, trends, axis."""
        return {
            "kind": self.kind,
            "parameter": self.parameter,
            "unit": self.unit,
            "paired": self.paired,
            "label": self.label,
            "n_dropped": self.n_dropped,
            "stats": self.stats.to_dict(),
            "methods": self.methods,
            "trends": self.trends(),
            "provenance": self.provenance,
            "bins": None if self.bins is None else self.bins.to_dict(orient="list"),
        }

    def save(self, path: str | os.PathLike[str], *, overwrite: bool | None = None) -> Path:
        """Write :attr:`table` with its metadata; the format follows the suffix.

        ``.parquet``/``.pq``: metadata as JSON under the schema key ``probe``. ``.csv``: a plain
        table (header line, then rows: ``pandas.read_csv(path)`` reads it as is) with the
        metadata in the sidecar ``<path>.json`` (e.g. ``bin_kind.csv.json``). ``.json``:
        ``{"metadata": ..., "table": [records]}``. The file is written under a temporary name
        and renamed, so it is never seen half-written; an existing file is replaced only if
        ``overwrite`` allows (None: :func:`probe.safe_io.overwrite_default`).

        Returns
        -------
        pathlib.Path
            The written path.
        """
        return save_table(self.table, self.metadata(), path, overwrite=overwrite)

    def plot(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Plot the mean and its interval (``band="ci"``; ``"std"`` for the spread) against the
        value, one panel per group; see :func:`plot_results`."""
        from probe.sweeps.plotting import plot_results

        return plot_results([self], path, **kwargs)

    def __repr__(self) -> str:
        values = self.table["value"].nunique()
        return (
            f"<Result {self.kind} of {self.label!r} over {self.parameter!r}: {values} values, "
            f"groups {', '.join(self.groups)}, n_dropped={self.n_dropped}>"
        )


def _value_strata(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One stratum per (value, class)."""
    _, code = np.unique(x, return_inverse=True)
    return code.astype(np.int64) * 2 + (labels == 1)


def _names_unreadable_file(func: Any) -> Any:
    """A damaged or wrong-format result file (pyarrow's "magic bytes not found", bad JSON, bad
    text) raises a :class:`ProbeValueError` naming the file, not the reader's bare error."""
    import functools

    @functools.wraps(func)
    def wrapper(path: str | os.PathLike[str]) -> dict[str, Any]:
        if Path(path).is_dir():
            raise ProbeValueError(f"{os.fspath(path)!r} is a directory, not a result file")
        try:
            return dict(func(path))
        except OSError:
            raise
        except (ValueError, KeyError, TypeError) as err:
            if isinstance(err, ProbeValueError):
                raise
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ProbeValueError(
                f"{os.fspath(path)!r} is not a readable probe result ({text})"
            ) from err

    return wrapper


@_names_unreadable_file
def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Metadata saved by :meth:`Result.save` in a ``.parquet``, ``.csv`` or ``.json`` file."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        raw = (pq.read_schema(target).metadata or {}).get(b"probe")
        if raw is None:
            raise ProbeValueError(f"{target} has no probe metadata")
        return dict(json.loads(raw))
    if suffix == ".csv":
        side = csv_sidecar(target)
        if side.is_file():
            return dict(json.loads(side.read_text(encoding="utf-8")))
        with open(target, encoding="utf-8") as fh:  # files written before the sidecar
            first = fh.readline()
        if not first.startswith("# probe: "):
            raise ProbeValueError(f"{target} has no metadata: {side.name} is missing")
        return dict(json.loads(first[len("# probe: ") :]))
    if suffix == ".json":
        return dict(json.loads(target.read_text(encoding="utf-8"))["metadata"])
    raise ProbeValueError(f"path must end in one of {names_list(_SUFFIXES)}; got {str(target)!r}")


def csv_sidecar(path: str | os.PathLike[str]) -> Path:
    """The metadata file beside a CSV table: ``<path>.json``."""
    target = Path(path)
    return target.with_name(target.name + ".json")


def save_table(
    table: pd.DataFrame,
    metadata: dict[str, Any],
    path: str | os.PathLike[str],
    *,
    overwrite: bool | None = None,
) -> Path:
    """Write ``table`` with ``metadata`` to Parquet (schema key ``probe``), CSV (plain, metadata
    in the sidecar ``<path>.json``) or JSON by the suffix of ``path``, atomically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ProbeValueError(
            f"path must end in one of {names_list(_SUFFIXES)}; got {str(target)!r}"
        )
    meta = dumps(metadata)

    def write(tmp: Path) -> None:
        if suffix in (".parquet", ".pq"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = pa.Table.from_pandas(table, preserve_index=False)
            merged = {**(arrow.schema.metadata or {}), b"probe": meta.encode()}
            pq.write_table(arrow.replace_schema_metadata(merged), tmp)
        elif suffix == ".csv":
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                table.to_csv(fh, index=False)
        else:
            records = to_jsonable(table.to_dict(orient="records"))
            doc = {"metadata": json.loads(meta), "table": records}
            tmp.write_text(json.dumps(doc, allow_nan=False, indent=1), encoding="utf-8")

    if suffix == ".csv":  # the sidecar is renamed into place just before the table
        from probe.safe_io import OutputExistsError, overwrite_default

        if not (overwrite_default() if overwrite is None else overwrite) and target.exists():
            raise OutputExistsError(
                f"{target}: exists; pass --overwrite (overwrite=True) to replace it"
            )
        text = json.dumps(json.loads(meta), indent=1, sort_keys=True)
        write_table = write

        def write(tmp: Path) -> None:
            write_table(tmp)

            def write_side(side: Path) -> None:
                side.write_text(text, encoding="utf-8")

            atomic_write(csv_sidecar(target), write_side, overwrite=overwrite)

    return atomic_write(target, write, overwrite=overwrite)
