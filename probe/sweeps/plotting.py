"""Figures like the paper's: mean correct-class score +/- std against the value.

The only module of probe that uses matplotlib, imported inside the functions so ``import probe``
stays fast. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state, no
window is ever opened) and written straight to PNG, SVG or PDF.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.errors import ProbeValueError
from probe.provenance import atomic_write
from probe.statistics import GROUPS
from probe.validation import names_list

if TYPE_CHECKING:
    from probe.sweeps.categories import CategoryResult
    from probe.sweeps.result import Result

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_TITLES = {"lens": "lenses", "nonlens": "non-lenses", "all": "all"}


def _check_groups(results: Sequence[Result], groups: Sequence[str] | None) -> Sequence[str]:
    """``groups``, checked; by default every group present in ``results``, in GROUPS order."""
    if groups is None:
        present = {g for r in results for g in r.groups}
        groups = [g for g in GROUPS if g in present]
    for g in groups:
        if g not in GROUPS:
            raise ProbeValueError(f"groups has unknown group {g!r}; known: {names_list(GROUPS)}")
    return groups


def plot_results(
    results: Sequence[Result],
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    band: str = "ci",
    title: str | None = None,
    threshold: float | None = 0.5,
    dpi: int = 150,
) -> Path:
    """Overlay several results (e.g. several models on one test) in one panel per group.

    Parameters
    ----------
    results : sequence of Result
        Results over the same kind of value axis; each is one line (mean) with error bars.
    path : str or path-like
        Output file; ``.png``, ``.svg`` or ``.pdf`` (written atomically).
    labels : sequence of str, optional
        Legend labels, one per result (default: each result's ``label``).
    groups : sequence of str, optional
        Panels, from "lens", "nonlens", "all" (default: every group present in any result).
    band : {"ci", "std", "sem"}
        Error bars: the bootstrap interval of the mean (default: how well each mean is known),
        one standard deviation of the scores (the paper's figures: their spread), or the
        standard error.
    title : str, optional
        Figure title.
    threshold : float or None
        Draw a dashed line at this score (the 0.5 decision threshold); None for none.
    dpi : int
        Resolution of raster output, dots per inch.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    if not results:
        raise ProbeValueError("results is empty; give at least one Result")
    target = Path(path)
    fmt = _FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ProbeValueError(
            f"path must end in one of {names_list(tuple(_FORMATS))}; got {str(target)!r}"
        )
    if band not in ("std", "sem", "ci"):
        raise ProbeValueError(f"band must be 'std', 'sem' or 'ci'; got {band!r}")
    if labels is not None and len(labels) != len(results):
        raise ProbeValueError(f"labels has {len(labels)} entries for {len(results)} results")
    names = list(labels) if labels is not None else [r.label for r in results]
    groups = _check_groups(results, groups)

    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(groups), 3.6), layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, group in zip(axes, groups):
        for result, name in zip(results, names):
            _draw(ax, result, group, name, band)
        if threshold is not None:
            ax.axhline(threshold, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set_title(_TITLES[group])
        ax.set_xlabel(results[0].axis_label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(r"mean correct-class score $\langle s\rangle$")
    axes[0].set_ylim(-0.02, 1.02)
    if len(results) > 1 or labels is not None:
        axes[-1].legend(fontsize="small", loc="best")
    if title:
        fig.suptitle(title)

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=dpi)

    return atomic_write(target, write)


def _draw(ax: Any, result: Result, group: str, name: str, band: str) -> None:
    rows = result.table[result.table["group"] == group].sort_values("value")
    if rows.empty:
        return
    x = rows["value"].to_numpy(dtype=float)
    y = rows["mean"].to_numpy(dtype=float)
    if band == "ci":
        # A bootstrap interval can miss its own mean by a rounding error (all scores equal):
        # clip, or matplotlib refuses the negative bar.
        err: Any = np.clip(
            [y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y], 0, None
        )
    else:
        err = rows[band].to_numpy(dtype=float)
    line = ax.errorbar(x, y, yerr=err, marker="o", ms=3.5, capsize=2, lw=1.2, label=name)
    low = rows["low_count"].to_numpy(dtype=bool)
    if low.any():
        # Flag under-populated points with hollow markers rather than hiding them.
        color = line.lines[0].get_color()
        ax.plot(x[low], y[low], "o", ms=7, mfc="none", mec=color, label="_low_count")


def plot_categories(
    result: CategoryResult, path: str | os.PathLike[str], *, dpi: int = 150
) -> Path:
    """Mean correct-class score with its bootstrap interval per category (lowest first, at
    the top), one panel per group; ``flagged`` (TPR or FPR) is written beside each point."""
    target = Path(path)
    fmt = _FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ProbeValueError(
            f"path must end in one of {names_list(tuple(_FORMATS))}; got {str(target)!r}"
        )
    from matplotlib.figure import Figure

    table = result.table
    groups = [g for g in GROUPS if g in set(table["group"])]
    cats = result.categories
    fig = Figure(figsize=(4.2 * len(groups), 0.9 + 0.35 * len(cats)), layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    ypos = {c: len(cats) - 1 - i for i, c in enumerate(cats)}  # lowest mean on top
    rate = {"lens": "TPR", "nonlens": "FPR", "all": "flagged"}
    for ax, group in zip(axes, groups):
        rows = table[table["group"] == group]
        y = np.array([ypos[c] for c in rows["category"]], dtype=float)
        m = rows["mean"].to_numpy(float)
        err = [m - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - m]
        ax.errorbar(m, y, xerr=np.nan_to_num(err), fmt="o", ms=4, capsize=2)
        for yy, mm, f in zip(y, m, rows["flagged"].to_numpy(float)):
            if np.isfinite(f):
                ax.annotate(f"{rate[group]} {f:.3g}", (mm, yy), xytext=(4, 4),
                            textcoords="offset points", fontsize="x-small")  # fmt: skip
        ax.set_title(_TITLES[group])
        ax.set_xlabel(r"mean correct-class score $\langle s\rangle$ (95% interval)")
        ax.set_xlim(-0.02, 1.08)
        ax.grid(alpha=0.3)
    axes[0].set_yticks(range(len(cats)), [cats[len(cats) - 1 - i] for i in range(len(cats))])
    axes[0].set_ylabel(result.parameter)

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=dpi)

    return atomic_write(target, write)
