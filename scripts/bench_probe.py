#!/usr/bin/env python
"""Benchmark: what the probe costs on top of the bare model, and that its memory stays bounded.

Shows, for a small Keras CNN on 10,000 random 100x100x4 float32 images and a 13-value sweep
(default: ColorJitter sigma = 0, 0.05, ..., 0.6, the paper's figure 4; ``--perturber blur
--values 0:3:0.25`` runs figure 5's blur instead):

- the plain Keras calls compared on 2,000 images (a compiled ``tf.function`` loop, a
  ``predict_on_batch`` loop, ``model.predict``), best of ``--repeats``;
- bare: a hand-written loop doing the same work and nothing else, one unperturbed pass plus,
  per non-identity value, each batch perturbed and scored with the fastest plain call;
- the probe's sweep on the same images, its phases, and the overhead ``(probe - bare) / bare``
  (target <= 10%); bare and probe sweeps alternate for ``--rounds`` rounds (default 2) and
  each side keeps its best, so a shared machine's changing load favours neither;
- peak extra resident memory during the sweep, against what holding 13 perturbed copies would
  need (``VmHWM`` after resetting it through ``/proc/self/clear_refs``; Linux only).

Run ``python scripts/bench_probe.py`` (about 5 minutes on 2 cores) or ``--quick`` (seconds).

``--adapters`` instead measures, per model adapter (Keras, ONNX Runtime, PyTorch module,
TorchScript, JAX), probe's overhead over the framework's plain batched inference on the same
images (``Probe.predict`` against a bare loop of the framework's own call; target <= 5%), and
ONNX Runtime against Keras for the reference finder A (``A.onnx`` vs ``A.keras``)::

    python scripts/bench_probe.py --adapters --n 1024     # ~1-2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

Call = Callable[[np.ndarray], np.ndarray]


def build_cnn(shape: tuple[int, int, int]) -> Any:
    """A small lens-finder-like CNN: a 4x4 patch stem, two strided convolutions, sigmoid output.

    About 0.35 ms per 100x100x4 image on a 2-core CPU: small enough that the benchmark takes a
    few minutes, which is the hard case for the probe (its fixed costs weigh most).
    """
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(16, 4, strides=4, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def rss_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB (NaN where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def plain_calls(model: Any, image_shape: tuple[int, ...]) -> dict[str, Call]:
    """The plain Keras calls on one batch: a compiled tf.function and predict_on_batch."""
    import tensorflow as tf

    fn = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *image_shape), tf.float32)],
        autograph=False,
    )
    return {
        "tf.function": lambda batch: np.asarray(fn(batch)),
        "predict_on_batch": lambda batch: np.asarray(model.predict_on_batch(batch)),
    }


def time_calls(
    model: Any, calls: dict[str, Call], images: np.ndarray, batch_size: int, repeats: int
) -> dict[str, float]:
    """Seconds per image of each plain Keras call over ``images`` (best of ``repeats``)."""
    out = {}
    for name, call in calls.items():
        call(images[:batch_size])  # warm up: trace, allocate
        call(images[:1])
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for s in range(0, len(images), batch_size):
                call(images[s : s + batch_size])
            best = min(best, time.perf_counter() - t0)
        out[name] = best / len(images)
    model.predict(images[:batch_size], batch_size=batch_size, verbose=0)  # warm up
    t0 = time.perf_counter()
    model.predict(images, batch_size=batch_size, verbose=0)
    out["model.predict"] = (time.perf_counter() - t0) / len(images)
    return out


def bare_sweep(
    call: Call, images: np.ndarray, perturbers: list[Any], batch_size: int
) -> tuple[float, float]:
    """A hand-written sweep doing only the necessary work: (total s, of which perturbing s).

    Each batch is perturbed whole with one generator; the probe draws per block of 64 images
    (so its results do not depend on the batch size), and the overhead figure includes that.
    """
    t0 = time.perf_counter()
    perturb = 0.0
    for s in range(0, len(images), batch_size):
        call(images[s : s + batch_size])
    for j, pert in enumerate(perturbers):
        if pert.is_identity:
            continue
        for b, s in enumerate(range(0, len(images), batch_size)):
            t1 = time.perf_counter()
            out = pert(images[s : s + batch_size], np.random.default_rng([j, b]))
            perturb += time.perf_counter() - t1
            call(out)
    return time.perf_counter() - t0, perturb


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures; returns 0."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images")
    parser.add_argument("--size", type=int, default=100, help="stamp size in pixels")
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--values", default="0:0.6:0.05", help="start:stop:step or a,b,c")
    parser.add_argument("--perturber", default="color", help="built-in perturber short name")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2, help="passes per plain call type")
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating bare/probe sweeps; the best of each"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 images, 3 values")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--adapters", action="store_true", help="per-adapter overhead and ONNX Runtime vs Keras"
    )
    parser.add_argument("--device", default="cpu", help="PyTorch device of --adapters")
    args = parser.parse_args(argv)
    if args.adapters:
        return bench_adapters(args)
    if args.quick:
        args.n, args.values, args.repeats, args.rounds = 500, "0,0.1,0.2", 1, 1

    import probe
    from probe.cli import parse_values

    values = parse_values(args.values)
    shape = (args.size, args.size, args.bands)
    images = np.random.default_rng(0).standard_normal((args.n, *shape), dtype=np.float32)
    labels = (np.arange(args.n) % 2).astype(np.int8)
    model = build_cnn(shape)
    calls = plain_calls(model, shape)

    per_image = time_calls(model, calls, images[:2000], args.batch_size, args.repeats)
    best_call = min(calls, key=per_image.__getitem__)
    perturber = probe.perturbers.by_name(args.perturber)
    perturbers = [perturber(v) for v in values]
    passes = 1 + sum(not pert.is_identity for pert in perturbers)
    # Bare and probe sweeps alternate, and each keeps its best round: on a shared machine the
    # load moves from minute to minute, and this keeps it from favouring one side.
    bare_rounds: list[tuple[float, float]] = []
    probe_rounds: list[tuple[float, dict[str, float]]] = []
    peak_extra = float("nan")
    for _ in range(args.rounds):
        bare_rounds.append(bare_sweep(calls[best_call], images, perturbers, args.batch_size))
        p = probe.Probe(model, batch_size=args.batch_size)  # fresh: no cached baseline
        rss_before = rss_mb("VmRSS")
        peak_ok = reset_peak()
        t0 = time.perf_counter()
        result = p.sweep(images, labels, perturber, values, rng=0)
        probe_rounds.append((time.perf_counter() - t0, result.provenance["timings_s"]))
        if peak_ok:
            peak_extra = np.fmax(peak_extra, rss_mb("VmHWM") - rss_before)
    bare_total, bare_perturb = min(bare_rounds)
    probe_total, timings = min(probe_rounds, key=lambda r: r[0])
    overhead = (probe_total - bare_total) / bare_total
    # Free of the model call's run-to-run noise: what the probe did besides calling the model
    # and perturbing, as a fraction of the bare sweep.
    outside = probe_total - timings.get("perturb", 0.0) - timings.get("inference", 0.0)

    figures = {
        "images": args.n,
        "image_shape": list(shape),
        "perturber": perturber.__name__,
        "values": len(values),
        "model_passes": passes,
        "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "plain_call_s_per_image": per_image,
        "bare_call": best_call,
        "rounds": args.rounds,
        "bare_rounds_s": [r[0] for r in bare_rounds],
        "probe_rounds_s": [r[0] for r in probe_rounds],
        "bare_total_s": bare_total,
        "bare_perturb_s": bare_perturb,
        "probe_total_s": probe_total,
        "probe_phases_s": timings,
        "overhead": overhead,
        "outside_calls_fraction": outside / bare_total,
        "images_mb": images.nbytes / 2**20,
        "all_copies_mb": len(values) * images.nbytes / 2**20,
        "peak_extra_rss_mb": peak_extra,
    }
    print(
        f"{args.n} images {shape}, {len(values)} values of {perturber.__name__}, "
        f"batch {args.batch_size}, {os.cpu_count()} CPUs"
    )
    for name, sec in per_image.items():
        print(f"  plain {name:17s} {1e3 * sec:6.3f} ms/image ({1 / sec:6.0f} img/s)")
    rounds = ", ".join(f"{r[0]:.1f}" for r in bare_rounds)
    print(
        f"  bare sweep ({passes} passes, {best_call}): {bare_total:8.2f} s "
        f"(perturbing {bare_perturb:.2f} s; rounds {rounds} s)"
    )
    rounds = ", ".join(f"{r[0]:.1f}" for r in probe_rounds)
    print(f"  probe sweep:                     {probe_total:8.2f} s (rounds {rounds} s)")
    for phase, sec in timings.items():
        print(f"    {phase:22s} {sec:8.2f} s")
    print(f"  probe overhead over the bare sweep: {100 * overhead:+.1f}% (target <= 10%)")
    print(f"  probe time outside model calls and perturbation: {100 * outside / bare_total:.1f}%")
    print(
        f"  peak extra RSS during the sweep: {peak_extra:.0f} MB (images {figures['images_mb']:.0f}"
        f" MB; {len(values)} perturbed copies would be {figures['all_copies_mb']:.0f} MB)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def adapter_models(device: str = "cpu") -> dict[str, tuple[Any, Call]]:
    """name -> (model given to probe, the framework's plain call on one NHWC float32 batch).

    Keras (where TensorFlow is installed) and ONNX run the shipped reference finder A;
    PyTorch and JAX a CNN of the same widths (strided 4x4 stem, three 3x3 stride-2
    convolutions, dense 64, sigmoid). PyTorch runs on ``device``; JAX on its default device.
    """
    import onnxruntime as ort
    import torch

    import probe.adapters

    weights = Path(__file__).resolve().parents[1] / "simlens" / "finders" / "weights"
    models: dict[str, tuple[Any, Call]] = {}
    try:
        import tensorflow as tf

        from simlens import finders

        keras_a = finders.load("A")
        fn = tf.function(
            lambda x: keras_a(x, training=False),
            input_signature=[tf.TensorSpec((None, 100, 100, 4), tf.float32)],
            autograph=False,
        )
        models["keras (A.keras)"] = (keras_a, lambda b: np.asarray(fn(b)))
    except ImportError:
        pass
    onnx_path = str(weights / "A.onnx")
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    models["onnxruntime (A.onnx)"] = (onnx_path, lambda b: session.run(None, {name: b})[0])

    torch.manual_seed(0)
    layers: list[Any] = []
    for c_in, c_out, k in ((4, 16, 4), (16, 32, 3), (32, 64, 3), (64, 64, 3)):
        layers += [torch.nn.Conv2d(c_in, c_out, k, stride=2, padding=1), torch.nn.ReLU()]
    net = torch.nn.Sequential(
        *layers, torch.nn.AdaptiveAvgPool2d(7), torch.nn.Flatten(),
        torch.nn.Linear(64 * 49, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1), torch.nn.Sigmoid(),
    ).eval()  # fmt: skip
    scripted = torch.jit.script(net)
    dev = torch.device(device)

    def torch_call(module: Any) -> Call:
        module = module.to(dev)

        def call(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(batch, -1, 1)))
                return module(x.to(dev)).to("cpu").numpy()

        return call

    models[f"torch module ({device})"] = (
        probe.adapters.torch(net, device=device),
        torch_call(net),
    )
    models[f"torchscript ({device})"] = (
        probe.adapters.torch(scripted, device=device),
        torch_call(scripted),
    )
    try:
        import jax

        def apply(params: Any, x: Any) -> Any:
            for w in params["convs"]:
                x = jax.nn.relu(
                    jax.lax.conv_general_dilated(
                        x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
                    )
                )
            h = jax.nn.relu(x.reshape(x.shape[0], -1) @ params["dense"])
            return jax.nn.sigmoid(h @ params["out"])

        gen = np.random.default_rng(0)
        convs = [
            (gen.standard_normal((k, k, ci, co)) / np.sqrt(k * k * ci)).astype(np.float32)
            for ci, co, k in ((4, 16, 4), (16, 32, 3), (32, 64, 3), (64, 64, 3))
        ]
        params = {
            "convs": convs,
            "dense": (gen.standard_normal((7 * 7 * 64, 64)) / 56).astype(np.float32),
            "out": (gen.standard_normal((64, 1)) / 8).astype(np.float32),
        }
        jitted = jax.jit(apply)
        models[f"jax ({jax.default_backend()})"] = (
            probe.adapters.jax(apply, params),
            lambda b: np.asarray(jitted(params, b)),
        )
    except ImportError:
        pass
    return models


def bench_adapters(args: argparse.Namespace) -> int:
    """Print (and optionally write) the per-adapter overhead figures; returns 0."""
    import probe

    gen = np.random.default_rng(0)
    # Counts like simlens's (sky noise ~10, zero point 30), so the finders see their input range.
    images = (10 * gen.standard_normal((args.n, 100, 100, 4)) + 5).astype(np.float32)
    bs = args.batch_size
    rounds = max(args.rounds, 3)
    figures: dict[str, Any] = {"images": args.n, "batch_size": bs, "rounds": rounds,
                               "cpu_count": os.cpu_count()}  # fmt: skip
    print(f"{args.n} images (100, 100, 4), batch {bs}, best of {rounds} alternating rounds")
    per_image = {}
    for label, (model, call) in adapter_models(args.device).items():
        call(images[:bs])  # warm up: trace, compile, allocate
        plain, wrapped = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for s in range(0, args.n, bs):
                call(images[s : s + bs])
            plain.append(time.perf_counter() - t0)
            # Warmed (traced, compiled) on other images, so that the full set is not cached.
            p = probe.Probe(model, batch_size=bs)
            p.predict(images[:bs] + 1.0)
            t0 = time.perf_counter()
            p.predict(images)
            wrapped.append(time.perf_counter() - t0)
        overhead = (min(wrapped) - min(plain)) / min(plain)
        per_image[label] = min(plain) / args.n
        figures[label] = {"plain_s": min(plain), "probe_s": min(wrapped), "overhead": overhead}
        print(
            f"  {label:22s} plain {1e3 * min(plain) / args.n:6.3f} ms/image, probe "
            f"{1e3 * min(wrapped) / args.n:6.3f} ms/image: overhead {100 * overhead:+5.1f}% "
            "(target <= 5%)"
        )
    from probe.adapters.images import ImageSet

    # What probe adds whatever the model: hashing the pixels (its in-memory score cache) and
    # checking them for NaN, measured alone; independent of the framework and its load.
    own = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ImageSet(images).hash_pixels(bs, check=True)
        own.append(time.perf_counter() - t0)
    figures["hash_and_validate_s_per_image"] = min(own) / args.n
    print(f"  probe's own pixel hash + NaN check: {1e3 * min(own) / args.n:.3f} ms/image")
    if "keras (A.keras)" in per_image:
        ratio = per_image["keras (A.keras)"] / per_image["onnxruntime (A.onnx)"]
        figures["onnx_speedup_over_keras_A"] = ratio
        print(f"  finder A: ONNX Runtime {ratio:.2f}x the speed of Keras (tf.function)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
