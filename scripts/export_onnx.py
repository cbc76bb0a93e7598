#!/usr/bin/env python
"""Export the reference finders' Keras weights to ONNX: ``simlens/finders/weights/{A,B,C}.onnx``.

Keras 3's own exporter (``model.export(path, format="onnx")``, which runs tf2onnx on the
TensorFlow graph) converts every layer, the custom ``AsinhStretch`` and ``ColourResidual``
included, to standard ONNX operators. Each file records the SHA-256 of the ``.keras`` file it
came from (ONNX metadata ``source_keras_sha256``; a test checks it against the shipped weights,
so retrained weights without a new export fail CI). Before writing, the script checks on
simlens images (lenses and ellipticals at each finder's training preset: des-sv for A and B,
des-y3 for C) that onnxruntime's scores equal Keras's
within 1e-5, and writes through a temporary file (nothing half-written).

Needs the ``export`` extra (tf2onnx). Example::

    python scripts/export_onnx.py            # every finder, ~1 min
    python scripts/export_onnx.py --only A --n 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

TOLERANCE = 1e-5


def export(name: str, n: int, seed: int) -> Path:
    """Export finder ``name`` next to its ``.keras`` weights; returns the ONNX path."""
    import onnx
    import onnxruntime as ort

    from probe.cache import file_digest
    from simlens import Simulator, finders

    keras_path = finders.weights_path(name)
    model = finders.load(name)
    sim = Simulator(finders.C_SURVEY if name == "C" else finders.SURVEY)
    half = n // 2
    truth_l = sim.sample_lenses(half, rng=seed, **finders.TRAINING_LENSES)
    truth_n = sim.sample_nonlenses(n - half, rng=seed + 1, kind="elliptical")
    images = np.concatenate([sim.render(truth_l), sim.render(truth_n)]).astype(np.float32)
    model(images[:1])  # Keras exports only a model that has been called

    target = keras_path.with_suffix(".onnx")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        model.export(str(raw), format="onnx", verbose=False)
        graph = onnx.load(str(raw))
        onnx.checker.check_model(graph)
        meta = graph.metadata_props.add()
        meta.key, meta.value = "source_keras_sha256", file_digest(keras_path)
        meta = graph.metadata_props.add()
        meta.key, meta.value = "source", f"simlens.finders {name} ({keras_path.name})"
        staged = Path(tmp) / target.name
        onnx.save(graph, str(staged))
        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: images})[0]
        want = np.asarray(model(images, training=False))
        err = float(np.abs(got - want).max())
        if not err <= TOLERANCE:
            raise SystemExit(f"{name}: ONNX differs from Keras by {err:.3g} > {TOLERANCE}")
        os.replace(staged, target)
    print(f"{name}: wrote {target} ({target.stat().st_size / 1e6:.2f} MB); max |ONNX - Keras| "
          f"= {err:.2g} on {n} simlens images")  # fmt: skip
    return target


def finders_names() -> tuple[str, ...]:
    from simlens.finders import NAMES

    return NAMES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=finders_names(), help="export one finder")
    parser.add_argument("--n", type=int, default=128, help="check images (default 128)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for name in [args.only] if args.only else finders_names():
        export(name, args.n, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
