"""Import hygiene: probe never pulls in TensorFlow, torch, onnxruntime, JAX, matplotlib or simlens
when imported."""

from __future__ import annotations

import subprocess
import sys


def test_import_probe_is_light():
    code = (
        "import sys, probe, probe.cli, probe.sweeps.plotting, probe.adapters;"
        "heavy = ('tensorflow', 'keras', 'matplotlib', 'simlens', 'torch', 'onnxruntime', 'jax');"
        "bad = [m for m in heavy if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names():
    import probe

    for name in ("Probe", "Binning", "perturbers", "Result", "SimulatorProtocol", "plot_results"):
        assert hasattr(probe, name)
    for name in ("ColorJitter", "GaussianBlur", "GaussianNoise", "AnnulusOcclusion",
                 "DiskOcclusion", "Rotate90", "FlipLeftRight", "FlipUpDown"):  # fmt: skip
        assert hasattr(probe.perturbers, name)
