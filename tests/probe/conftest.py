"""Shared fixtures of the probe tests: synthetic models and a fake simulator with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest


def mean_model(images: np.ndarray) -> np.ndarray:
    """p(lens) = mean pixel of the image, clipped to [0, 1]: every expected curve is exact."""
    return np.clip(np.asarray(images, dtype=np.float64).mean(axis=(1, 2, 3)), 0.0, 1.0)


class FakeSimulator:
    """A SimulatorProtocol with closed-form images.

    Each system has a ``brightness`` b in [0.2, 0.8]; ``render`` draws a constant image of value
    ``b / psf_scale`` (clipped by the model to [0, 1]) plus, with noise, nothing random unless
    ``noise_sigma > 0``, so under :func:`mean_model` a lens scores ``min(b / psf_scale, 1)`` and a
    non-lens ``1 -`` that. With ``noise_sigma``, each row gets Gaussian noise of that std seeded by
    its own ``seed`` (as simlens does), so rendering is independent of how rows are chunked.
    ``theta_E`` is a lens-only control: ``sample_nonlenses`` rejects it.
    """

    def __init__(self, npix: int = 6, bands: int = 2, noise_sigma: float = 0.0) -> None:
        self.npix = npix
        self.bands = bands
        self.noise_sigma = noise_sigma
        self.render_calls: list[int] = []

    def _sample(self, n: int, rng: Any, label: int, psf_scale: float) -> pd.DataFrame:
        gen = np.random.default_rng(rng)
        return pd.DataFrame(
            {
                "label": np.full(n, label),
                "seed": gen.integers(0, 2**31, size=n),
                "brightness": gen.uniform(0.2, 0.8, size=n),
                "psf_scale": np.full(n, float(psf_scale)),
            }
        )

    def sample_lenses(
        self, n: int, *, rng: Any, psf_scale: float = 1.0, theta_E: float | None = None
    ) -> pd.DataFrame:
        truth = self._sample(n, rng, 1, psf_scale)
        gen = np.random.default_rng(int(truth["seed"].iloc[0]) if n else 0)
        truth["theta_E"] = gen.uniform(1.0, 2.7, size=n) if theta_E is None else float(theta_E)
        return truth

    def sample_nonlenses(self, n: int, *, rng: Any, psf_scale: float = 1.0) -> pd.DataFrame:
        return self._sample(n, rng, 0, psf_scale)

    def render(self, truth: pd.DataFrame, *, noise: bool = True) -> np.ndarray:
        self.render_calls.append(len(truth))
        value = (truth["brightness"] / truth["psf_scale"]).to_numpy(dtype=np.float32)
        shape = (len(truth), self.npix, self.npix, self.bands)
        images = np.broadcast_to(value[:, None, None, None], shape).astype(np.float32)
        if noise and self.noise_sigma > 0:
            for i, seed in enumerate(truth["seed"].to_numpy()):
                gen = np.random.default_rng(int(seed))
                images[i] += self.noise_sigma * gen.standard_normal(shape[1:], dtype=np.float32)
        return images

    def vary(self, truth: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
        if name not in truth.columns:
            raise KeyError(f"truth has no column {name!r}")
        out = truth.copy()
        out[name] = float(value)
        return out


@pytest.fixture
def model():
    """The exact synthetic model p(lens) = clip(mean pixel)."""
    return mean_model


@pytest.fixture
def fake_sim() -> FakeSimulator:
    """A fresh fake simulator."""
    return FakeSimulator()


@pytest.fixture
def small_set() -> tuple[np.ndarray, np.ndarray]:
    """40 random 10x10x3 images in [0, 1] with alternating labels."""
    gen = np.random.default_rng(7)
    images = gen.uniform(0.0, 1.0, size=(40, 10, 10, 3)).astype(np.float32)
    labels = np.arange(40) % 2
    return images, labels


@pytest.fixture
def make_sim() -> type[FakeSimulator]:
    """The fake simulator class, for tests that need several or non-default ones."""
    return FakeSimulator


def _simlens_generate(path: Any, *args: str) -> Any:
    """Run the real ``simlens generate`` CLI in a subprocess (what a team does), return path."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "simlens.cli", "generate", "--quiet", "--out", str(path), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="session")
def cli_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Small sets written by ``simlens generate`` itself (32 px): 12 lenses, 12 ellipticals,
    24 images of the field mixture of non-lens kinds."""
    root = tmp_path_factory.mktemp("cli_sets")
    common = ("--n", "12", "--npix", "32", "--no-neighbours")
    return {
        "lens": _simlens_generate(
            root / "lens.h5", *common, "--kind", "lens", "--theta-E", "1:2.5", "--seed", "1"
        ),
        "elliptical": _simlens_generate(
            root / "ell.h5", *common, "--kind", "elliptical", "--seed", "2"
        ),
        # The field mixture: several non-lens kinds in one set.
        "field": _simlens_generate(
            root / "field.h5", "--n", "24", "--npix", "32", "--kind", "field", "--seed", "3"
        ),
    }


@pytest.fixture(scope="session")
def cli_zarr_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same 24 lenses (32 px, seed 4) written by ``simlens generate`` as a ``.zarr`` store
    (3 shards of 8) and as an HDF5 set. Tests that damage a store copy it first
    (:func:`copy_store`)."""
    root = tmp_path_factory.mktemp("cli_zarr")
    common = ("--n", "24", "--npix", "32", "--no-neighbours", "--kind", "lens")
    common += ("--theta-E", "1:2.5", "--seed", "4", "--chunk", "8")
    return {
        "zarr": _simlens_generate(root / "s.zarr", *common),
        "h5": _simlens_generate(root / "s.h5", *common),
    }


def copy_store(store: Any, dest: Any) -> Any:
    """A private copy of a store written by the CLI (to damage it)."""
    import shutil

    shutil.copytree(store, dest)
    return dest
