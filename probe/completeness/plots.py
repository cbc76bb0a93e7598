"""Figures of selection functions, surfaces and selected-vs-parent, and the HTML report fragment.

:func:`plot_selection` (completeness curves with fits and 50% points), :func:`plot_surface` (2-D
heat maps), :func:`plot_parent` (quantiles against threshold) and :func:`report_section` (an HTML
fragment with embedded figures, used by :mod:`probe.studies.report`). matplotlib is imported only
inside the plotting functions, so importing this module (and ``import probe``) stays light;
figures are written to files only, never shown in a window.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.completeness.thresholds import format_threshold
from probe.errors import ProbeValueError
from probe.provenance import atomic_write
from probe.validation import names_list

if TYPE_CHECKING:
    from probe.completeness.parent import ParentComparison
    from probe.completeness.result import SelectionFunction
    from probe.completeness.surfaces import SelectionSurface

__all__ = ["plot_parent", "plot_selection", "plot_surface", "report_section"]

_PLOTS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


# --------------------------------------------------------------------------------------------
# plots (matplotlib imported lazily; files only, never a window)
# --------------------------------------------------------------------------------------------


def _figure_target(path: Any) -> tuple[Path, str]:
    target = Path(path)
    fmt = _PLOTS.get(target.suffix.lower())
    if fmt is None:
        raise ProbeValueError(
            f"path must end in one of {names_list(tuple(_PLOTS))}; got {str(target)!r}"
        )
    return target, fmt


def _write(fig: Any, target: Path, fmt: str, dpi: int) -> Path:
    return atomic_write(target, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))


def plot_selection(
    functions: Sequence[SelectionFunction],
    path: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    fit: bool = True,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Completeness (with intervals) against the value; one panel per model, one colour per
    threshold; fitted curves and 50% points (with their intervals) when ``fit``. Hollow markers
    flag bins with fewer than ``min_count`` lenses."""
    if not functions:
        raise ProbeValueError("functions is empty")
    target, fmt = _figure_target(path)
    names = list(labels) if labels is not None else [f.label for f in functions]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6 * len(functions), 3.8), layout="constrained")
    axes = fig.subplots(1, len(functions), sharey=True, squeeze=False)[0]
    for ax, sf, name in zip(axes, functions, names):
        lo_x, hi_x = sf.binning.bin_edges[0], sf.binning.bin_edges[-1]
        xs = np.linspace(lo_x, hi_x, 200)
        for j, (t, tl) in enumerate(zip(sf.thresholds, sf.overall["threshold_label"])):
            rows = sf.table[sf.table["threshold_label"] == tl]
            colour = f"C{j}"
            x = rows["value"].to_numpy(float)
            y = rows["completeness"].to_numpy(float)
            err = np.clip(
                [y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y], 0, None
            )
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="o",
                ms=3.5,
                capsize=2,
                color=colour,
                label=threshold_legend(t, tl),
            )
            low = rows["low_count"].to_numpy(bool)
            if low.any():
                ax.plot(x[low], y[low], "o", ms=7, mfc="none", mec=colour)
            if fit:
                try:
                    cf = sf.fit(t)
                except ProbeValueError:
                    continue
                if np.isfinite(cf.x50):
                    ax.plot(xs, cf.curve(xs), "-", color=colour, lw=1.1)
                    shade_fifty_percent_point(ax, cf, lo_x, hi_x, colour)
        ax.axhline(0.5, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set_xlim(lo_x, hi_x)  # nothing drawn beyond the data range widens the axis
        ax.set_xlabel(sf.axis_label)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    axes[0].set_ylabel("completeness (fraction of lenses found)")
    axes[0].set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


def plot_surface(
    surface: SelectionSurface,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    annotate: bool = True,
    dpi: int = 150,
) -> Path:
    """Heat maps per threshold: completeness (thin cells hatched grey) with its 50% contour
    (white line, through the cell centres, thin cells left out) and interval width; cell counts
    written in the completeness panels when ``annotate``."""
    target, fmt = _figure_target(path)
    labels = surface.table["threshold_label"].unique().tolist()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6 * len(labels)), layout="constrained")
    axes = fig.subplots(len(labels), 2, squeeze=False)
    ex, ey = np.asarray(surface.x_binning.bin_edges), np.asarray(surface.y_binning.bin_edges)
    xl = f"{surface.x_name} [{surface.x_unit}]" if surface.x_unit else surface.x_name
    yl = f"{surface.y_name} [{surface.y_unit}]" if surface.y_unit else surface.y_name
    counts = surface.counts()
    thin = counts < surface.min_count
    for row, tl in zip(axes, labels):
        comp = np.ma.masked_where(thin, surface.grid("completeness", tl).to_numpy(float))
        width = np.ma.masked_where(counts == 0, surface.grid("width", tl).to_numpy(float))
        for ax, data, cmap, vmax, name in (
            (row[0], comp, "viridis", 1.0, "completeness"),
            (row[1], width, "magma_r", None, f"{surface.confidence:.0%} interval width"),
        ):
            ax.set_facecolor("0.85")
            mesh = ax.pcolormesh(ex, ey, data.T, cmap=cmap, vmin=0.0, vmax=vmax)
            fig.colorbar(mesh, ax=ax, label=name)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(f"{surface.label}: {name}, p >= {tl}", fontsize="small")
        _fifty_percent_contour(row[0], surface, comp)
        if thin.any():
            row[0].pcolor(
                ex, ey, np.ma.masked_where(~thin, np.ones_like(counts)).T, hatch="//", alpha=0.0
            )
        if annotate:
            cx, cy = surface.x_binning.centres, surface.y_binning.centres
            for i in range(counts.shape[0]):
                for j in range(counts.shape[1]):
                    row[0].text(
                        cx[i],
                        cy[j],
                        str(counts[i, j]),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="w" if not thin[i, j] else "0.3",
                    )
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


def plot_parent(
    comparison: ParentComparison,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Quantiles of each parameter among selected lenses against the threshold (solid), with
    the parent population's quantiles (dashed)."""
    target, fmt = _figure_target(path)
    params = comparison.table["parameter"].unique().tolist()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.8 * len(params), 3.4), layout="constrained")
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, prm in zip(axes, params):
        rows = comparison.table[comparison.table["parameter"] == prm]
        for j, (q, grp) in enumerate(rows.groupby("quantile")):
            ax.plot(
                grp["threshold"], grp["value"], "o-", ms=3, color=f"C{j}", label=f"selected q{q:g}"
            )
            ax.axhline(float(grp["parent"].iloc[0]), color=f"C{j}", ls="--", lw=0.9)
        unit = comparison.units.get(prm, "")
        ax.set_ylabel(f"{prm} [{unit}]" if unit else prm)
        ax.set_xlabel("score threshold t (selected: p_lens >= t)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small", title="dashed: parent", title_fontsize="x-small")
    if title:
        fig.suptitle(title)
    return _write(fig, target, fmt, dpi)


# --------------------------------------------------------------------------------------------
# report hook
# --------------------------------------------------------------------------------------------


def report_section(
    functions: Mapping[str, SelectionFunction],
    out: str | os.PathLike[str],
    *,
    yields: Mapping[str, Any] | None = None,
    surfaces: Mapping[str, SelectionSurface] | None = None,
    heading: str = "Selection functions and expected yields",
) -> str:
    """An HTML fragment (figures embedded as base64 PNG, also written under ``out/figures``)
    with, per model: completeness curves, the 50% points per threshold, TPR0/TPR10, optional
    2-D surfaces, and the expected yields (``probe.Yield`` objects, keyed by model).

    Parameters
    ----------
    functions : mapping of model name -> SelectionFunction
        One selection function per model (same parameter, ideally the same test set).
    out : path
        Directory for the figures.
    yields : mapping of model name -> Yield or sequence of Yield, optional
        Expected yields to tabulate.
    surfaces : mapping of model name -> SelectionSurface, optional
        2-D surfaces to include.
    """
    import base64
    import html

    figdir = Path(out) / "figures"
    figdir.mkdir(parents=True, exist_ok=True)

    def img(path: Path, alt: str) -> str:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"

    parts = [f"<h2>{html.escape(heading)}</h2>"]
    if functions:
        names = list(functions)
        first = functions[names[0]]
        path = plot_selection(
            [functions[n] for n in names],
            figdir / f"selection_{first.parameter}.png",
            labels=names,
        )
        parts.append(img(path, f"completeness against {first.parameter}"))
        rows = []
        for n in names:
            for _, r in functions[n].summary().iterrows():
                x50 = (
                    f"{r['x50']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
                    if math.isfinite(r["x50"])
                    else ""
                )
                rows.append(
                    f"<tr><td>{html.escape(n)}</td><td>{html.escape(r['label'])}</td>"
                    f"<td>{r['threshold']:.4g}</td><td>{r['completeness']:.3f} "
                    f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]</td><td>{x50}</td></tr>"
                )
        parts.append(
            "<table><tr><th>model</th><th>threshold</th><th>p_lens cut</th>"
            f"<th>completeness ({first.confidence:.0%})</th>"
            f"<th>50% point of {html.escape(first.axis_label)}</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    for n, surf in (surfaces or {}).items():
        path = plot_surface(surf, figdir / f"surface_{n}_{surf.x_name}_{surf.y_name}.png")
        parts.append(img(path, f"selection surface of {n}"))
    if yields:
        parts.append(_yields_table(yields))
    return "\n".join(parts)


def _yields_table(yields: Mapping[str, Any]) -> str:
    """HTML table of expected yields, one row per model and threshold."""
    import html

    rows = []
    for n, ys in yields.items():
        for y in ys if isinstance(ys, list | tuple) else [ys]:
            per = "; ".join(
                f"{html.escape(str(st['name']))}: {st['expected']:.0f} "
                f"(completeness {st['completeness']:.3f}, n={st['n']:.0f})"
                for st in y.strata
            )
            rows.append(
                f"<tr><td>{html.escape(n)}</td><td>{y.threshold:.4g}</td>"
                f"<td>{y.completeness:.4f}</td><td>{y.expected:.0f} "
                f"[{y.low:.0f}, {y.high:.0f}]</td><td>{per}</td>"
                f"<td>{y.area_deg2:g}</td></tr>"
            )
    return (
        "<table><tr><th>model</th><th>threshold</th><th>completeness (population)</th>"
        "<th>expected lenses found [interval]</th><th>per stratum</th>"
        "<th>area deg^2</th></tr>" + "".join(rows) + "</table>"
    )


def _fifty_percent_contour(ax: Any, surface: SelectionSurface, comp: np.ma.MaskedArray) -> None:
    """The C = 0.5 contour of the completeness grid, where the grid crosses 0.5."""
    values = comp.compressed()
    if min(comp.shape) < 2 or values.size == 0 or not values.min() < 0.5 < values.max():
        return
    cx, cy = surface.x_binning.centres, surface.y_binning.centres
    ax.contour(cx, cy, comp.T, levels=[0.5], colors="w", linewidths=1.6)


def threshold_legend(threshold: float, label: str) -> str:
    """Legend text of a threshold as the user gave it (``p >= 0.9996``); a threshold set at a
    false positive rate shows its score with enough digits to tell it from 1."""
    if not label.startswith("fpr"):
        return f"p >= {label}"
    return f"{label} (p >= {format_threshold(threshold)})"


def shade_fifty_percent_point(ax: Any, cf: Any, lo_x: float, hi_x: float, colour: str) -> None:
    """The 50% point (dotted line) and its interval (shaded) inside the data range only.

    A closed interval is shaded solid; an open side (the data do not bound it) is hatched up
    to the edge of the range, so it never reads as a measured bound; a point or interval
    outside the range draws nothing beyond the axis (the legend of the fit says extrapolated).
    """
    if lo_x <= cf.x50 <= hi_x:
        ax.axvline(cf.x50, color=colour, lw=0.8, ls=":")
    low = cf.low if np.isfinite(cf.low) else -np.inf
    high = cf.high if np.isfinite(cf.high) else np.inf
    lo, hi = max(low, lo_x), min(high, hi_x)
    if not lo < hi:
        return  # the interval lies wholly outside the data range
    open_interval = not (np.isfinite(cf.low) and np.isfinite(cf.high))
    if open_interval:
        ax.axvspan(lo, hi, facecolor="none", edgecolor=colour, hatch="//", alpha=0.35, lw=0)
    else:
        ax.axvspan(lo, hi, color=colour, alpha=0.08, lw=0)
