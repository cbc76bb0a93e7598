"""Galleries: the images behind a curve, so a scientist can look before trusting it.

For each experiment and model of a study, a few images (default 6) chosen from the per-image
scores of its :class:`probe.Result`:

* perturbation sweeps and paired re-simulations: the images whose p(lens) moved most between
  the reference value (no perturbation; the training PSF, ratio 1) and the value at which the
  scores moved most on average (usually the extreme one), shown at both values with both
  scores (:func:`pick_moved`);
* binned experiments: the lowest-scoring lenses of the worst bin (lowest mean score), shown
  with their score and parameter value (:func:`pick_worst_bin`).

:func:`sweep_gallery`, :func:`resim_gallery` and :func:`bin_gallery` build them from an
experiment of a study (:func:`probe.studies.run.run_study`). :func:`gallery_image` draws one
gallery (colour composites: i, r, g as red, green, blue with Lupton's asinh stretch) as a JPEG
(quality 85: noisy sky does not compress as PNG; ~50 KB per gallery at the images' own
resolution), for ``report.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probe import rng as _rng

if TYPE_CHECKING:
    from probe.studies.experiments import Experiment
    from probe.studies.simulation import KindMixture
    from probe.sweeps.result import Result

__all__ = [
    "GALLERY_SIZE",
    "Gallery",
    "bin_gallery",
    "gallery_image",
    "pick_moved",
    "pick_worst_bin",
    "resim_gallery",
    "sweep_gallery",
]

#: Images per gallery.
GALLERY_SIZE = 6


@dataclass
class Gallery:
    """A few images of one experiment and model, with their scores.

    Attributes
    ----------
    experiment, model : str
        Which curve they belong to.
    how : str
        How they were chosen (one sentence for the report).
    samples : ndarray of int
        Their ``sample`` indices in the result's scores.
    labels : ndarray of int
        1 lens, 0 non-lens.
    before : ndarray
        Images ``(k, H, W, C)`` at the reference value (binned: the images themselves).
    p_before : ndarray
        Their p(lens).
    after, p_after : ndarray, optional
        Images and p(lens) at the compared value (sweeps and re-simulations).
    ref_value, value : float
        The reference and compared values (binned: NaN and the worst bin's centre).
    captions : list of str
        One line per image (e.g. its parameter value).
    """

    experiment: str
    model: str
    how: str
    samples: np.ndarray
    labels: np.ndarray
    before: np.ndarray
    p_before: np.ndarray
    after: np.ndarray | None = None
    p_after: np.ndarray | None = None
    ref_value: float = float("nan")
    value: float = float("nan")
    captions: list[str] = field(default_factory=list)


def pick_moved(
    scores: pd.DataFrame, ref_value: float, k: int = GALLERY_SIZE
) -> tuple[float, float, np.ndarray]:
    """Reference value, compared value and the ``k`` samples whose p(lens) moved most.

    ``scores`` is a paired result's per-image table (``sample``, ``value``, ``p_lens``). The
    reference is the grid value nearest ``ref_value``; the compared value is the one with the
    largest mean ``|p - p_ref|`` over all images; the samples are those with the largest
    ``|p - p_ref|`` there (ties: lower sample index first).
    """
    wide = scores.pivot(index="sample", columns="value", values="p_lens").sort_index()
    grid = wide.columns.to_numpy(dtype=float)
    if grid.size < 2:
        raise ValueError("pick_moved needs at least two values")
    ref = float(grid[np.argmin(np.abs(grid - ref_value))])
    delta = (wide.sub(wide[ref], axis=0)).abs()
    mean = delta.drop(columns=ref).mean(axis=0)
    value = float(mean.index.to_numpy(dtype=float)[int(np.argmax(mean.to_numpy()))])
    moved = delta[value].to_numpy()
    order = np.lexsort((wide.index.to_numpy(), -moved))[:k]
    return ref, value, wide.index.to_numpy()[order].astype(np.int64)


def pick_worst_bin(scores: pd.DataFrame, k: int = GALLERY_SIZE) -> tuple[float, np.ndarray]:
    """Centre of the bin with the lowest mean score and its ``k`` lowest-scoring samples.

    ``scores`` is a binned result's per-image table (``sample``, ``value`` = bin centre, NaN
    for dropped images, ``score``).
    """
    kept = scores[np.isfinite(scores["value"].to_numpy(dtype=float))]
    if kept.empty:
        raise ValueError("pick_worst_bin: no image in any bin")
    means = kept.groupby("value")["score"].mean()
    worst = float(means.index.to_numpy(dtype=float)[int(np.argmin(means.to_numpy()))])
    in_bin = kept[kept["value"] == worst].sort_values(["score", "sample"])
    return worst, in_bin["sample"].to_numpy(dtype=np.int64)[:k]


# -- the galleries of a study's experiments ----------------------------------------------
def sweep_gallery(
    e: Experiment,
    model: str,
    r: Result,
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    seed: int,
) -> Gallery:
    """Images of a sweep whose score moved most, before and after, perturbed as scored.

    ``x``, ``y``: the sweep's images and labels; ``values``: its values (the first is the
    reference); ``seed``: the sweep's perturbation seed.
    """
    from probe.adapters.images import ImageSet

    ref, value, samples = pick_moved(r.scores, float(values[0]))
    j = int(np.flatnonzero(values == value)[0])
    assert e.perturber is not None
    pert = e.perturber(float(value))  # type: ignore[call-arg]
    images = ImageSet(x)
    entropy = _rng.root_entropy(seed)
    after = []
    for i in samples:
        # the sweep perturbs block k of probe.rng.BLOCK images with stream (PERTURB, j, k)
        k = int(i) // _rng.BLOCK
        first, last = k * _rng.BLOCK, min((k + 1) * _rng.BLOCK, images.n)
        block = pert(images.batch(first, last), _rng.child(entropy, _rng.PERTURB, j, k))
        after.append(np.asarray(block[int(i) - first]))
    return _moved(e, model, r, ref, value, samples, y[samples], x[samples], np.stack(after))


def resim_gallery(e: Experiment, model: str, r: Result, sim: KindMixture) -> Gallery:
    """Re-simulated systems whose score moved most, rendered at the reference and the value."""
    ref, value, samples = pick_moved(r.scores, 1.0)
    base = pd.concat(sim.drawn[-2:], ignore_index=True) if len(sim.drawn) >= 2 else sim.drawn[-1]
    rows = base.iloc[samples]
    before = np.asarray(sim.render(sim.vary(rows, e.control, ref), noise=True))
    after = np.asarray(sim.render(sim.vary(rows, e.control, value), noise=True))
    labels = r.scores.drop_duplicates("sample").set_index("sample").loc[samples, "label"]
    return _moved(e, model, r, ref, value, samples, labels.to_numpy(), before, after)


def _moved(
    e: Experiment,
    model: str,
    r: Result,
    ref: float,
    value: float,
    samples: np.ndarray,
    labels: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
) -> Gallery:
    """The gallery of ``samples``: the images whose score moved most from ``ref`` to ``value``."""
    wide = r.scores.pivot(index="sample", columns="value", values="p_lens")
    return Gallery(
        experiment=e.name,
        model=model,
        how=(
            f"the {len(samples)} images whose p(lens) moved most between {ref:g} and {value:g} "
            f"{e.unit} (the value where the scores moved most on average)"
        ),
        samples=np.asarray(samples),
        labels=np.asarray(labels, dtype=np.int64),
        before=before,
        p_before=wide.loc[samples, ref].to_numpy(dtype=float),
        after=after,
        p_after=wide.loc[samples, value].to_numpy(dtype=float),
        ref_value=ref,
        value=value,
    )


def bin_gallery(e: Experiment, model: str, r: Result, images: np.ndarray) -> Gallery:
    """The lowest-scoring lenses of the worst bin of a binned experiment."""
    centre, samples = pick_worst_bin(r.scores)
    s = r.scores.set_index("sample").loc[samples]
    return Gallery(
        experiment=e.name,
        model=model,
        how=(
            f"the {len(samples)} lowest-scoring lenses of the worst bin (lowest mean score; "
            f"centre {centre:g} {e.unit})"
        ),
        samples=np.asarray(samples),
        labels=s["label"].to_numpy(dtype=np.int64),
        before=np.asarray(images[samples]),
        p_before=s["p_lens"].to_numpy(dtype=float),
        value=centre,
        captions=[f"{e.column} {v:.2f}" for v in s["parameter"].to_numpy(dtype=float)],
    )


def _composite(img: np.ndarray) -> np.ndarray:
    """RGB from a griz image (channels 2, 1, 0 as red, green, blue; one band: grey).

    Lupton et al. (2004) asinh stretch (:func:`astropy.visualization.make_lupton_rgb`) with
    simlens's contact-sheet settings (stretch 50 counts, Q 8; :mod:`simlens.io.plotting`).
    """
    from astropy.visualization import make_lupton_rgb

    x = np.asarray(img, dtype=np.float64)
    r, g, b = (x[..., 2], x[..., 1], x[..., 0]) if x.shape[-1] >= 3 else (x[..., 0],) * 3
    # astropy divides where the intensity is 0 and masks the result: silence that warning
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(make_lupton_rgb(r, g, b, stretch=50.0, Q=8.0, minimum=0.0))


def gallery_image(g: Gallery, path: str | Path, *, unit: str = "", dpi: int = 72) -> Path:
    """Draw gallery ``g`` to ``path`` (JPEG, or as its suffix says): one column per image,
    before (and after) rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 if g.after is None else 2
    k = max(len(g.samples), 1)
    fig, axes = plt.subplots(rows, k, figsize=(1.5 * k, 1.75 * rows + 0.3), squeeze=False)
    cls = {1: "lens", 0: "non-lens"}
    u = f" {unit}" if unit else ""
    if g.after is not None:
        fig.suptitle(f"top: {g.ref_value:g}{u}; bottom: {g.value:g}{u}", fontsize=8)
    for j in range(k):
        for r in range(rows):
            ax: Any = axes[r][j]
            ax.set_axis_off()
            if j >= len(g.samples):
                continue
            img = g.before[j] if r == 0 else g.after[j]  # type: ignore[index]
            p = g.p_before[j] if r == 0 else g.p_after[j]  # type: ignore[index]
            ax.imshow(_composite(img), origin="lower", interpolation="nearest")
            head = f"#{int(g.samples[j])} {cls.get(int(g.labels[j]), '?')} " if r == 0 else ""
            ax.set_title(f"{head}p={p:.3f}", fontsize=7)
            if r == 0 and j < len(g.captions) and g.captions[j]:
                ax.text(0.03, 0.03, g.captions[j], color="w", fontsize=6, transform=ax.transAxes)
    fig.tight_layout(pad=0.3, h_pad=0.6)
    out = Path(path)
    jpeg = out.suffix.lower() in (".jpg", ".jpeg")
    extra: dict[str, Any] = {"pil_kwargs": {"quality": 85}} if jpeg else {}
    fig.savefig(out, dpi=dpi, **extra)
    plt.close(fig)
    return out
