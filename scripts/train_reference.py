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
_CHUNK = 128  # rows per sampling job (a multiple of simlens's 64-row seed block)
_WEIGHTS = Path(__file__).resolve().parents[1] / "simlens" / "finders" / "weights"

_SIM: Any = None


def _sim() -> Any:
    """One Simulator per process (workers build their own)."""
    global _SIM
    if _SIM is None:
        import simlens

        _SIM = simlens.Simulator(SURVEY, psf_profile=TRAINING_PSF)
    return _SIM


def _sample_lens_chunk(args: tuple[int, int, int]) -> pd.DataFrame:
    n, seed, start = args
    return _sim().sample_lenses(n, rng=seed, start=start, **LENS_CONTROLS)


def sample_lenses(n: int, seed: int, workers: int, cache: Path | None = None) -> pd.DataFrame:
    """``n`` training lenses (``LENS_CONTROLS``) of ``seed``, sampled in parallel by row blocks.

    simlens draws row ``i`` from the generator of its 64-row block, so chunks starting at
    multiples of 64 give exactly the rows of one ``sample_lenses(n, rng=seed)`` call.
    """
    tag = "_".join(f"{a}-{b}" for a, b in LENS_CONTROLS.values())
    key = f"lenses_{SURVEY}_{seed}_{n}_{tag}.parquet"
    if cache is not None and (cache / key).is_file():
        return pd.read_parquet(cache / key)
    jobs = [(min(_CHUNK, n - s), seed, s) for s in range(0, n, _CHUNK)]
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


def without_source(truth: pd.DataFrame) -> pd.DataFrame:
    """Matched negatives: the same rows with no source light (``Simulator.unlensed``).

    Galaxy, PSF and the row's noise seed are unchanged.
    """
    return _sim().unlensed(truth)


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


def sample_field(n: int, seed: int, kinds: dict[str, float]) -> pd.DataFrame:
    """``n`` non-lenses split over ``kinds`` (one seed stream per kind), shuffled."""
    names = list(kinds)
    counts = np.floor(np.array([kinds[k] for k in names]) * n).astype(int)
    counts[0] += n - counts.sum()
    parts = [
        _sim().sample_nonlenses(int(c), rng=seed + 7 * i, kind=k)
        for i, (k, c) in enumerate(zip(names, counts))
        if c > 0
    ]
    df = pd.concat(parts, ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[order].reset_index(drop=True)


def render(truth: pd.DataFrame, workers: int) -> np.ndarray:
    return _sim().render(truth, workers=workers)


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
) -> tuple[Any, dict[str, Any]]:
    """Train one finder; returns the model (best validation AUC) and its history.

    ``init_weights`` starts from another finder's weights (A starts from B's, see ``main``).
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
            return _dihedral(x[idx], rng), y[idx].astype(np.float32)

        def on_epoch_end(self) -> None:
            self.order = rng.permutation(train_idx)

    model = build_model(seed=seed, name=f"finder_{name}")
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


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=256, verbose=0)).reshape(-1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=None, help=f"weights directory ({_WEIGHTS})")
    ap.add_argument("--only", choices=("A", "B"), help="train one network only")
    ap.add_argument("--n-lenses", type=int, default=4000, help="training lenses (default 4000)")
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
        args.out = args.out or Path("out/train_quick")
    out: Path = args.out or _WEIGHTS
    out.mkdir(parents=True, exist_ok=True)
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

    from simlens.provenance import package_version

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
        model, history = train(
            name,
            x,
            y,
            val,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=seeds["keras"],
            init_weights=init,
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
        path = out / f"{name}.keras"
        # Save a fresh copy without optimizer state (a third of the file size).
        from simlens.finders._model import build_model

        clean = build_model(seed=seeds["keras"], name=f"finder_{name}")
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
            "augmentation": "random rot90 (k=0..3) and left-right flip per image per epoch",
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
                "accuracy": test_acc,
                "auc_bar": AUC_BAR,
                "passes": bool(test_auc[own] >= AUC_BAR),
            },
            "time_s": {
                "generation_wall": gen_time,
                "training_wall": train_wall,
                "training_cpu": cpu_seconds() - cpu_net,
                "total_wall_so_far": time.perf_counter() - wall0,
                "total_cpu_so_far": cpu_seconds() - cpu0,
            },
            "machine": {"cpus": os.cpu_count()},
            "versions": {
                "simlens": package_version(),
                "keras": __import__("keras").__version__,
                "tensorflow": __import__("tensorflow").__version__,
            },
            "quick": bool(args.quick),
        }
        (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        log(
            f"{name}: val AUC {record['val_auc']:.4f}, test AUC "
            + ", ".join(f"{k} {v:.4f}" for k, v in test_auc.items())
            + f" -> wrote {path} ({path.stat().st_size / 1e6:.1f} MB)"
        )
    log(f"done; CPU {cpu_seconds() - cpu0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
