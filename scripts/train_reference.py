#!/usr/bin/env python
"""Train the reference lens finders A and B from scratch, seeded, and write their weights.

Shows how the shipped ``simlens/finders/weights/{A,B}.keras`` were made (Jacobs et al., Table 1):

* training sets simulated with simlens at the paper's training PSF preset ``des-sv``;
* lenses: Einstein radius uniform in 1.0-3.0", lensed-source g magnitude uniform in 20-22.5 and
  lens r uniform in 18-21 (``simlens.finders.TRAINING_LENSES``): the ranges of the paper's
  Einstein-radius and magnitude experiments, where DES arcs are visible (the paper's "typical
  range for likely, detectable lenses in DES"); ~70% of them are also LensPop-detectable. Not
  simlens's free detectable population: conditioned on theta_E >= 1" it is dominated by bright
  lenses (median r 16.6) with faint arcs (median lensed g 22.4), where an arc is a ~1%
  modulation of the lens halo; this small network trained on a few thousand of those never
  learnt network A's task (val AUC <= 0.72; constant output from a random start). Uniform rather
  than population-weighted so every value of the experiments is equally represented;
* **A**: lenses vs. the same lens galaxies without a source (the lens truth rendered with every
  source magnitude set to 99: same galaxy, PSF and noise seed): matched negatives, so only the
  lensed source separates the classes. Trained from a seeded random start (``--a-init B``
  starts from B's weights instead);
* **B**: the same lenses vs. field non-lenses, drawn as the kinds and fractions of ``B_KINDS``
  (simlens's "field" mixture; ``--b-kinds`` overrides it);
* augmentation: each training image gets a random rotation by a multiple of 90 degrees and a
  random flip every epoch (the 8 symmetries of the square; lensing has no preferred direction);
* a training record ``{A,B}.json`` next to the weights: set sizes, seeds, epochs, per-epoch
  validation accuracy and AUC, wall and CPU time, and the AUC on fresh test sets drawn with
  seeds not used in training (the bar is AUC >= 0.95 on each network's own task).

Examples::

    python scripts/train_reference.py                 # both networks, ~30 min on 2 cores
    python scripts/train_reference.py --only A --epochs 20
    python scripts/train_reference.py --quick --out out/train_quick    # smoke run, ~1-2 min
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simlens.finders import SURVEY, TRAINING_LENSES, TRAINING_PSF

#: Non-lens kinds of network B's negatives and their fractions: simlens's "field" mixture
#: (ellipticals, spirals, mergers, rings, blue companions, stars, ...).
B_KINDS: dict[str, float] = {"field": 1.0}
#: AUC each network must reach on fresh sets of its own task.
AUC_BAR = 0.95
#: Simulator controls of every training and test lens (``simlens.finders.TRAINING_LENSES``).
LENS_CONTROLS = TRAINING_LENSES
#: Probability that a training image (either class) is blanked inside a central disk, as
#: ``probe.perturbers.DiskOcclusion`` does, with a radius uniform in 0-``OCCLUSION_RADIUS`` px:
#: network A scored any image with a blanked centre as a lens before it saw such images.
OCCLUSION = {"A": 0.25, "B": 0.0, "C": 0.15}
#: ``build_model`` architecture overrides per network (``--c-filters``, ``--c-dense``).
ARCH: dict[str, dict[str, Any]] = {}
OCCLUSION_RADIUS = 36.0
#: An occluded training lens keeps its label only while this fraction of its lensed-source flux
#: (lens image minus its unlensed twin, g+r+i) lies outside the disk; else it is labelled a
#: non-lens (nothing of the source is left to see; the paper's networks also scored lenses
#: as non-lenses once the disk covered the arcs).
VISIBLE_SOURCE_FRACTION = 0.5
#: Disk radii of the study's occlusion experiment (px), where the records measure scores.
STUDY_DISK_RADII = tuple(float(r) for r in np.arange(0.0, 35.01, 2.5))
_PROFILE_RADII = np.arange(0.0, OCCLUSION_RADIUS + 0.51, 0.5)
_CHUNK = 128  # rows per sampling job (a multiple of simlens's 64-row seed block)
_WEIGHTS = Path(__file__).resolve().parents[1] / "simlens" / "finders" / "weights"

_SIMS: dict[str, Any] = {}
#: Which images each network trains on: A and B at the paper's training PSF (des-sv, Gaussian),
#: C at the demo's yield survey (des-y3, its default Moffat PSF).
_SETUP = {"A": "paper", "B": "paper", "C": "yields"}


def _sim(setup: str = "paper") -> Any:
    """One Simulator per process and setup (workers build their own)."""
    if setup not in _SIMS:
        import simlens

        if setup == "paper":
            _SIMS[setup] = simlens.Simulator(SURVEY, psf_profile=TRAINING_PSF)
        else:
            from simlens.finders import C_SURVEY

            _SIMS[setup] = simlens.Simulator(C_SURVEY)
    return _SIMS[setup]


def _sample_lens_chunk(args: tuple[int, int, int, str]) -> pd.DataFrame:
    n, seed, start, setup = args
    if setup == "paper":
        return _sim().sample_lenses(n, rng=seed, start=start, **LENS_CONTROLS)
    return _sim(setup).sample_lenses(n, rng=seed, start=start, detectable=True)


def sample_lenses(
    n: int, seed: int, workers: int, cache: Path | None = None, setup: str = "paper"
) -> pd.DataFrame:
    """``n`` training lenses of ``seed``, sampled in parallel by row blocks.

    ``setup`` "paper": ``LENS_CONTROLS`` at des-sv (A, B); "yields": LensPop-detectable
    population lenses at ``simlens.finders.C_SURVEY`` (C). simlens draws row ``i`` from the
    generator of its 64-row block, so chunks starting at multiples of 64 give exactly the rows
    of one ``sample_lenses(n, rng=seed)`` call.
    """
    if setup == "paper":
        tag = "_".join(f"{a}-{b}" for a, b in LENS_CONTROLS.values())
        key = f"lenses_{SURVEY}_{seed}_{n}_{tag}.parquet"
    else:
        from simlens.finders import C_SURVEY

        key = f"lenses_{C_SURVEY}_{seed}_{n}_detectable.parquet"
    if cache is not None and (cache / key).is_file():
        return pd.read_parquet(cache / key)
    jobs = [(min(_CHUNK, n - s), seed, s, setup) for s in range(0, n, _CHUNK)]
    if workers <= 1:
        parts = [_sample_lens_chunk(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            parts = list(ex.map(_sample_lens_chunk, jobs))
    truth = pd.concat(parts, ignore_index=True)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        truth.to_parquet(cache / key, index=False)
    return truth


def without_source(truth: pd.DataFrame, setup: str = "paper") -> pd.DataFrame:
    """Matched negatives: the same rows with no source light (``Simulator.unlensed``).

    Galaxy, PSF and the row's noise seed are unchanged.
    """
    return _sim(setup).unlensed(truth)


def parse_kinds(spec: str | None) -> dict[str, float]:
    """``"elliptical:0.5,star:0.5"`` or ``"field"`` -> normalised fractions."""
    if not spec:
        kinds = dict(B_KINDS)
    else:
        kinds = {}
        for part in spec.split(","):
            name, _, frac = part.partition(":")
            kinds[name.strip()] = float(frac) if frac else 1.0
    total = sum(kinds.values())
    if total <= 0 or any(v < 0 for v in kinds.values()):
        raise SystemExit(f"--b-kinds fractions must be >= 0 with a positive sum; got {spec!r}")
    return {k: v / total for k, v in kinds.items()}


def sample_field(n: int, seed: int, kinds: dict[str, float], setup: str = "paper") -> pd.DataFrame:
    """``n`` non-lenses split over ``kinds`` (one seed stream per kind), shuffled."""
    names = list(kinds)
    counts = np.floor(np.array([kinds[k] for k in names]) * n).astype(int)
    counts[0] += n - counts.sum()
    parts = [
        _sim(setup).sample_nonlenses(int(c), rng=seed + 7 * i, kind=k)
        for i, (k, c) in enumerate(zip(names, counts))
        if c > 0
    ]
    df = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[order].reset_index(drop=True)


def render(truth: pd.DataFrame, workers: int, setup: str = "paper") -> np.ndarray:
    return _sim(setup).render(truth, workers=workers)


def environment() -> dict[str, Any]:
    """The machine and software versions recorded beside every trained finder."""
    from simlens.io.provenance import package_version

    return {
        "machine": {"cpus": os.cpu_count()},
        "versions": {
            "simlens": package_version(),
            "keras": __import__("keras").__version__,
            "tensorflow": __import__("tensorflow").__version__,
        },
    }


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (sampling/rendering workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with midranks for ties)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels).astype(bool)
    r = rankdata(np.asarray(scores, dtype=np.float64))
    n1, n0 = labels.sum(), (~labels).sum()
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _radius_map(npix: int) -> np.ndarray:
    from probe.perturbers import radial_distance

    return np.asarray(radial_distance(npix, npix))


def source_outside(x_lens: np.ndarray, x_bare: np.ndarray) -> np.ndarray:
    """``(n, len(_PROFILE_RADII))``: fraction of each lens's source flux at ``d >= radius``.

    Source light = lens image minus its unlensed twin (same galaxy and noise seed), g+r+i.
    """
    d = _radius_map(x_lens.shape[1])
    src = (x_lens[..., :3].astype(np.float64) - x_bare[..., :3]).sum(-1)
    total = src.sum((1, 2))
    inside = np.stack([src[:, d < r].sum(1) for r in _PROFILE_RADII], axis=1)
    frac = 1.0 - inside / np.where(np.abs(total) > 0, total, 1.0)[:, None]
    return np.clip(frac, 0.0, 1.0)


def occlude(
    x: np.ndarray,
    y: np.ndarray,
    outside: np.ndarray | None,
    prob: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Blank a central disk of a random ``prob`` of the images; relabel lenses left unseen.

    ``outside`` holds :func:`source_outside` rows for the lenses (``None``: labels kept).
    """
    y = y.astype(np.float32).copy()
    if prob <= 0:
        return x, y
    hit = np.flatnonzero(rng.random(len(x)) < prob)
    radii = rng.uniform(0.0, OCCLUSION_RADIUS, len(hit))
    d = _radius_map(x.shape[1])
    x = x.copy()
    for i, r in zip(hit, radii):
        x[i, d < r, :] = 0
        if y[i] > 0 and outside is not None:
            k = min(int(np.searchsorted(_PROFILE_RADII, r)), len(_PROFILE_RADII) - 1)
            y[i] = float(outside[i, k] >= VISIBLE_SOURCE_FRACTION)
    return x, y


def disk_scores(model: Any, sets: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Mean p(lens) of each image set under ``DiskOcclusion`` at each of ``STUDY_DISK_RADII``."""
    from probe.perturbers import DiskOcclusion

    out: dict[str, list[float]] = {}
    for desc, x in sets.items():
        out[desc] = [
            float(predict(model, DiskOcclusion(r)(x) if r > 0 else x).mean())
            for r in STUDY_DISK_RADII
        ]
    return out


def auc_interval(
    labels: np.ndarray, scores: np.ndarray, seed: int, n_boot: int = 1000
) -> list[float]:
    """95% percentile bootstrap interval of :func:`auc` (classes resampled separately)."""
    labels = np.asarray(labels).astype(bool)
    pos, neg = np.asarray(scores)[labels], np.asarray(scores)[~labels]
    rng = np.random.default_rng(seed)
    lab = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    boot = [
        auc(lab, np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]) for _ in range(n_boot)
    ]
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


def _dihedral(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image rotated by a random multiple of 90 degrees and randomly mirrored."""
    out = np.empty_like(x)
    k = rng.integers(0, 4, len(x))
    flip = rng.integers(0, 2, len(x)).astype(bool)
    for kk in range(4):
        for f in (False, True):
            sel = (k == kk) & (flip == f)
            if sel.any():
                y = np.rot90(x[sel], kk, axes=(1, 2))
                out[sel] = y[:, :, ::-1] if f else y
    return out


def train(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    init_weights: list[Any] | None = None,
    occlusion: float = 0.0,
    outside: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train one finder; returns the model (best validation AUC) and its history.

    ``init_weights`` starts from another finder's weights (A starts from B's, see ``main``).
    ``occlusion``: probability of a central-disk blanking per image per epoch (:func:`occlude`,
    ``outside`` rows aligned with ``x``, zeros for negatives).
    """
    import keras

    from simlens.finders._model import build_model

    keras.utils.set_random_seed(seed)
    train_idx = np.flatnonzero(~val)
    x_val, y_val = x[val], y[val]
    rng = np.random.default_rng(seed)

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order = rng.permutation(train_idx)

        def __len__(self) -> int:
            return int(np.ceil(len(train_idx) / batch_size))

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            sub = None if outside is None else outside[idx]
            return occlude(_dihedral(x[idx], rng), y[idx], sub, occlusion, rng)

        def on_epoch_end(self) -> None:
            self.order = rng.permutation(train_idx)

    model = build_model(seed=seed, name=f"finder_{name}", **model_options(name))
    if init_weights is not None:
        model.set_weights(init_weights)
    steps = epochs * int(np.ceil(len(train_idx) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    best = keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=epochs, restore_best_weights=True
    )
    hist = model.fit(
        Batches(),
        validation_data=(x_val, y_val.astype(np.float32)),
        epochs=epochs,
        callbacks=[best],
        verbose=2,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return model, history


def model_options(name: str) -> dict[str, Any]:
    """``build_model`` options of network ``name``: B keeps the unregularised colour fit it was
    trained with; A and C use the regularised one (``ColourResidual.prior_colour``)."""
    from simlens.finders._model import PRIOR_COLOUR

    opts: dict[str, Any] = {"residual_prior": None if name == "B" else PRIOR_COLOUR}
    return {**opts, **ARCH.get(name, {})}


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=256, verbose=0)).reshape(-1)


def train_c(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Network C: LensPop-detectable population lenses vs. the field at ``C_SURVEY``.

    Writes ``C.keras`` and the record ``C.json`` to ``out``; returns the record.
    """
    from simlens.finders import C_SURVEY

    setup, n, n_test = "yields", args.c_lenses, args.c_test
    seeds = {
        "lenses": args.seed + 10,
        "negatives": args.seed + 11,
        "split": args.seed + 12,
        "keras": args.seed + 3,
        # fresh test sets: never used in training, distinct from the demo's and study's seeds
        "test_lenses": args.seed + 110,
        "test_negatives": args.seed + 111,
        "bootstrap": args.seed + 112,
    }
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    cache = args.cache if str(args.cache) not in ("", ".") else None

    def log(msg: str) -> None:
        print(f"[C {time.perf_counter() - wall0:7.1f} s] {msg}", flush=True)

    log(f"sampling {n} LensPop-detectable lenses and {n} field non-lenses at {C_SURVEY}")
    t0 = time.perf_counter()
    lens_truth = sample_lenses(n, seeds["lenses"], args.workers, cache, setup)
    t_sample = time.perf_counter() - t0
    x_lens = render(lens_truth, args.workers, setup)
    x_neg = render(sample_field(n, seeds["negatives"], B_KINDS, setup), args.workers, setup)
    outside = None
    if OCCLUSION["C"] > 0:
        bare = render(without_source(lens_truth, setup), args.workers, setup)
        outside = np.concatenate([source_outside(x_lens, bare), np.zeros((n, len(_PROFILE_RADII)))])
        del bare
    gen_train = time.perf_counter() - t0
    log(f"sampling fresh test sets ({n_test} per class)")
    t0 = time.perf_counter()
    test_truth = sample_lenses(n_test, seeds["test_lenses"], args.workers, cache, setup)
    x_test_lens = render(test_truth, args.workers, setup)
    x_test_neg = render(
        sample_field(n_test, seeds["test_negatives"], B_KINDS, setup), args.workers, setup
    )
    gen_test = time.perf_counter() - t0

    is_val = np.zeros(n, bool)
    is_val[
        np.random.default_rng(seeds["split"]).permutation(n)[: max(round(args.val_frac * n), 2)]
    ] = True
    x = np.concatenate([x_lens, x_neg])
    y = np.r_[np.ones(n, np.int8), np.zeros(n, np.int8)]
    val = np.r_[is_val, np.random.default_rng(seeds["split"] + 1).permutation(is_val)]
    log(f"training C: {len(x)} images ({int(val.sum())} validation), {args.epochs} epochs")
    t_net, cpu_net = time.perf_counter(), cpu_seconds()
    model, history = train(
        "C",
        x,
        y,
        val,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=seeds["keras"],
        occlusion=OCCLUSION["C"],
        outside=outside,
    )
    train_wall, train_cpu = time.perf_counter() - t_net, cpu_seconds() - cpu_net
    p_val = predict(model, x[val])
    p_lens, p_neg = predict(model, x_test_lens), predict(model, x_test_neg)
    lab = np.r_[np.ones(len(p_lens)), np.zeros(len(p_neg))]
    p = np.r_[p_lens, p_neg]
    test_auc = auc(lab, p)
    interval = auc_interval(lab, p, seeds["bootstrap"])
    small = test_truth["theta_E"].to_numpy() < 1.0
    by_theta = {
        'theta_E < 1"': auc(
            np.r_[np.ones(small.sum()), np.zeros(len(p_neg))], np.r_[p_lens[small], p_neg]
        ),
        'theta_E >= 1"': auc(
            np.r_[np.ones((~small).sum()), np.zeros(len(p_neg))], np.r_[p_lens[~small], p_neg]
        ),
    }
    k = min(500, n_test)
    disk = disk_scores(model, {"lenses": x_test_lens[:k], "field": x_test_neg[:k]})
    from simlens.finders._model import build_model

    clean = build_model(seed=seeds["keras"], name="finder_C", **model_options("C"))
    clean.set_weights(model.get_weights())
    path = out / "C.keras"
    clean.save(path)
    record = {
        "network": "C",
        "survey": C_SURVEY,
        "psf": "the preset's default (Moffat)",
        "architecture": "simlens.finders._model.build_model (see its docstring)",
        "parameters": int(model.count_params()),
        "positives": {
            "n": n,
            "description": "simlens sample_lenses(detectable=True): LensPop-detectable population",
            "theta_E_median": float(lens_truth["theta_E"].median()),
            "mag_source_g_median": float(lens_truth["mag_source_g"].median()),
            "mag_lens_r_median": float(lens_truth["mag_lens_r"].median()),
        },
        "negatives": {"n": n, "description": f"simlens field non-lenses, kinds {B_KINDS}"},
        "validation": {"n": int(val.sum()), "split": "random, per class"},
        "augmentation": "random rot90 (k=0..3) and left-right flip per image per epoch"
        + (
            f"; central disk blanked in a random {OCCLUSION['C']:.0%} of images (as A)"
            if OCCLUSION["C"] > 0
            else ""
        ),
        "colour_residual_prior": model_options("C")["residual_prior"],
        "architecture_options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in ARCH.get("C", {}).items()
        },
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "Adam, cosine decay from 1e-3 to 5e-5; best-val-AUC epoch restored",
        "initialised_from": "random (seeded)",
        "seeds": seeds,
        "history": history,
        "val_accuracy": float(((p_val > 0.5) == y[val]).mean()),
        "val_auc": auc(y[val], p_val),
        "test": {
            "n_lenses": len(p_lens),
            "n_negatives": len(p_neg),
            "description": "fresh detectable lenses vs. fresh field non-lenses (own task)",
            "auc": test_auc,
            "auc_interval_95": interval,
            "interval_method": "percentile bootstrap, 1000 resamples, classes resampled apart",
            "auc_by_theta_E": by_theta,
            "accuracy": float(((p > 0.5) == lab).mean()),
            "auc_bar": AUC_BAR,
            "passes": bool(test_auc >= AUC_BAR),
        },
        "disk_occlusion": {
            "radii_px": list(STUDY_DISK_RADII),
            "mean_p_lens": disk,
            "description": f"first {k} of each fresh test set, DiskOcclusion at each radius",
        },
        "time_s": {
            "lens_sampling_wall": t_sample,
            "generation_wall": {"training": gen_train, "tests": gen_test},
            "training_wall": train_wall,
            "training_cpu": train_cpu,
            "total_wall": time.perf_counter() - wall0,
            "total_cpu": cpu_seconds() - cpu0,
        },
        **environment(),
        "quick": bool(args.quick),
    }
    (out / "C.json").write_text(json.dumps(record, indent=2) + "\n")
    log(
        f"C: val AUC {record['val_auc']:.4f}, test AUC {test_auc:.4f} "
        f"[{interval[0]:.4f}, {interval[1]:.4f}] -> wrote {path}"
    )
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=None, help=f"weights directory ({_WEIGHTS})")
    ap.add_argument("--only", choices=("A", "B", "C"), help="train one network only")
    ap.add_argument("--n-lenses", type=int, default=4000, help="training lenses (default 4000)")
    ap.add_argument(
        "--c-lenses", type=int, default=3000, help="C's training lenses and non-lenses (3000)"
    )
    ap.add_argument("--c-test", type=int, default=2000, help="C's fresh test images per class")
    ap.add_argument("--c-filters", default=None, help="C's conv filters, e.g. '24,48,96,96'")
    ap.add_argument("--c-dense", type=int, default=None, help="C's dense units")
    ap.add_argument(
        "--c-occlusion", type=float, default=None, help="C's disk-blanking probability (0.15)"
    )
    ap.add_argument("--epochs", type=int, default=12, help="epochs (default 12)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--val-frac", type=float, default=0.1, help="validation fraction")
    ap.add_argument("--n-test", type=int, default=500, help="fresh test images per class")
    ap.add_argument("--seed", type=int, default=20240, help="root seed (training sets)")
    ap.add_argument(
        "--b-kinds", default=None, help="B's negatives, e.g. 'field' or 'elliptical:0.5,star:0.5'"
    )
    ap.add_argument(
        "--a-init",
        choices=("B", "random"),
        default="random",
        help="A's starting weights: a seeded random start (default) or B's trained weights",
    )
    ap.add_argument("--workers", type=int, default=2, help="sampling/rendering processes")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path("out/train_cache"),
        help="where sampled lens truth tables are kept for reruns ('' for none)",
    )
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (writes to out/)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_lenses, args.epochs, args.n_test = 96, 1, 48
        args.c_lenses, args.c_test = 96, 48
        args.out = args.out or Path("out/train_quick")
    out: Path = args.out or _WEIGHTS
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.c_filters:
        ARCH.setdefault("C", {})["filters"] = tuple(int(f) for f in args.c_filters.split(","))
    if args.c_dense:
        ARCH.setdefault("C", {})["dense"] = args.c_dense
    if args.c_occlusion is not None:
        OCCLUSION["C"] = args.c_occlusion
    if args.only == "C":
        train_c(args, out)
        return 0
    # B first, so that ``--a-init B`` can start A from B's weights.
    names = [args.only] if args.only else ["B", "A"]
    b_kinds = parse_kinds(args.b_kinds)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    seeds = {
        "lenses": args.seed,
        "b_negatives": args.seed + 1,
        "split": args.seed + 2,
        "keras": args.seed + 3,
        # fresh test sets: seeds never used in training (and distinct from demo/study seeds)
        "test_lenses": args.seed + 100,
        "test_ellipticals": args.seed + 101,
        "test_b_negatives": args.seed + 102,
    }
    wall0, cpu0 = time.perf_counter(), cpu_seconds()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - wall0:7.1f} s] {msg}", flush=True)

    # -- data (all simulated before TensorFlow is imported: worker processes fork cleanly) ----
    log(f"sampling {args.n_lenses} lenses at {SURVEY}, {LENS_CONTROLS}")
    cache = args.cache if str(args.cache) not in ("", ".") else None
    lens_truth = sample_lenses(args.n_lenses, seeds["lenses"], args.workers, cache)
    x_lens = render(lens_truth, args.workers)
    data: dict[str, dict[str, Any]] = {}
    gen_time: dict[str, float] = {"lenses": time.perf_counter() - wall0}
    if "A" in names:
        t0 = time.perf_counter()
        x_neg = render(without_source(lens_truth), args.workers)
        data["A"] = {"neg": x_neg, "neg_desc": "the training lenses without their source"}
        gen_time["A"] = time.perf_counter() - t0
        log("rendered A's matched negatives")
    if "B" in names:
        t0 = time.perf_counter()
        neg_truth = sample_field(args.n_lenses, seeds["b_negatives"], b_kinds)
        data["B"] = {"neg": render(neg_truth, args.workers), "neg_desc": f"kinds {b_kinds}"}
        gen_time["B"] = time.perf_counter() - t0
        log(f"rendered B's negatives {b_kinds}")
    log(f"sampling fresh test sets ({args.n_test} per class)")
    t0 = time.perf_counter()
    test_truth = sample_lenses(args.n_test, seeds["test_lenses"], args.workers, cache)
    x_test_lens = render(test_truth, args.workers)
    tests: dict[str, dict[str, np.ndarray]] = {}
    if "A" in names:
        tests["A"] = {
            "matched (own task)": render(without_source(test_truth), args.workers),
            "population ellipticals": render(
                sample_field(args.n_test, seeds["test_ellipticals"], {"elliptical": 1.0}),
                args.workers,
            ),
        }
    if "B" in names:
        tests["B"] = {
            "field (own task)": render(
                sample_field(args.n_test, seeds["test_b_negatives"], b_kinds), args.workers
            ),
        }
    gen_time["tests"] = time.perf_counter() - t0
    n = args.n_lenses
    # Split by system, so a lens and its matched negative are on the same side.
    is_val_sys = np.zeros(n, bool)
    n_val = max(round(args.val_frac * n), 2)
    is_val_sys[np.random.default_rng(seeds["split"]).permutation(n)[:n_val]] = True

    trained: dict[str, Any] = {}
    for name in names:
        t_net, cpu_net = time.perf_counter(), cpu_seconds()
        x = np.concatenate([x_lens, data[name]["neg"]])
        y = np.r_[np.ones(n, np.int8), np.zeros(n, np.int8)]
        val = np.r_[is_val_sys, is_val_sys]
        log(f"training {name}: {len(x)} images ({int(val.sum())} validation), {args.epochs} epochs")
        init = None
        if name == "A" and args.a_init == "random":
            pass
        elif name == "A" and "B" in trained:
            init = trained["B"].get_weights()
        elif name == "A" and (out / "B.keras").is_file():  # --only A: start from saved B
            from simlens.finders._model import load_keras

            trained["B"] = load_keras(out / "B.keras")
            init = trained["B"].get_weights()
        outside = None
        if OCCLUSION[name] > 0 and name == "A":  # source light = lens minus its matched negative
            outside = np.concatenate(
                [source_outside(x_lens, data["A"]["neg"]), np.zeros((n, len(_PROFILE_RADII)))]
            )
        model, history = train(
            name,
            x,
            y,
            val,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=seeds["keras"],
            init_weights=init,
            occlusion=OCCLUSION[name],
            outside=outside,
        )
        trained[name] = model
        train_wall = time.perf_counter() - t_net
        p_val = predict(model, x[val])
        p_lens = predict(model, x_test_lens)
        test_auc, test_acc = {}, {}
        for desc, x_neg in tests[name].items():
            p_neg = predict(model, x_neg)
            lab = np.r_[np.ones(len(p_lens)), np.zeros(len(p_neg))]
            p = np.r_[p_lens, p_neg]
            test_auc[desc] = auc(lab, p)
            test_acc[desc] = float(((p > 0.5) == lab).mean())
        own = next(k for k in test_auc if "own task" in k)
        p_own = predict(model, tests[name][own])
        own_interval = auc_interval(
            np.r_[np.ones(len(p_lens)), np.zeros(len(p_own))], np.r_[p_lens, p_own], seeds["split"]
        )
        disk = disk_scores(model, {"lenses": x_test_lens, **tests[name]})
        path = out / f"{name}.keras"
        # Save a fresh copy without optimizer state (a third of the file size).
        from simlens.finders._model import build_model

        clean = build_model(seed=seeds["keras"], name=f"finder_{name}", **model_options(name))
        clean.set_weights(model.get_weights())
        clean.save(path)
        record = {
            "network": name,
            "survey": SURVEY,
            "architecture": "simlens.finders._model.build_model (see its docstring)",
            "parameters": int(model.count_params()),
            "positives": {
                "n": n,
                "description": "simlens sample_lenses(**controls), uniform in each range",
                "controls": {k: list(v) for k, v in LENS_CONTROLS.items()},
                "detectable_fraction": float(lens_truth["detectable"].mean()),
            },
            "negatives": {"n": n, "description": data[name]["neg_desc"]},
            "b_kinds": b_kinds if name == "B" else None,
            "validation": {"n": int(val.sum()), "split": "by system (lens and its negative)"},
            "augmentation": "random rot90 (k=0..3) and left-right flip per image per epoch"
            + (
                f"; central disk blanked (DiskOcclusion) in a random {OCCLUSION[name]:.0%} of"
                f" images, radius uniform 0-{OCCLUSION_RADIUS:g} px, a lens relabelled non-lens"
                f" when < {VISIBLE_SOURCE_FRACTION:.0%} of its source flux lies outside the disk"
                if OCCLUSION[name] > 0
                else ""
            ),
            "colour_residual_prior": model_options(name)["residual_prior"],
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "Adam, cosine decay from 1e-3 to 5e-5; best-val-AUC epoch restored",
            "initialised_from": "B" if init is not None else "random (seeded)",
            "seeds": seeds,
            "history": history,
            "val_accuracy": float(((p_val > 0.5) == y[val]).mean()),
            "val_auc": auc(y[val], p_val),
            "test": {
                "n_lenses": len(p_lens),
                "n_per_negative_set": args.n_test,
                "auc": test_auc,
                "auc_interval_95": {own: own_interval},
                "accuracy": test_acc,
                "auc_bar": AUC_BAR,
                "passes": bool(test_auc[own] >= AUC_BAR),
            },
            "disk_occlusion": {
                "radii_px": list(STUDY_DISK_RADII),
                "mean_p_lens": disk,
                "description": "fresh test sets, probe.perturbers.DiskOcclusion at each radius",
            },
            "time_s": {
                "generation_wall": gen_time,
                "training_wall": train_wall,
                "training_cpu": cpu_seconds() - cpu_net,
                "total_wall_so_far": time.perf_counter() - wall0,
                "total_cpu_so_far": cpu_seconds() - cpu0,
            },
            **environment(),
            "quick": bool(args.quick),
        }
        (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        log(
            f"{name}: val AUC {record['val_auc']:.4f}, test AUC "
            + ", ".join(f"{k} {v:.4f}" for k, v in test_auc.items())
            + f" -> wrote {path} ({path.stat().st_size / 1e6:.1f} MB)"
        )
    log(f"done; CPU {cpu_seconds() - cpu0:.0f} s")
    if args.only is None:
        train_c(args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
