"""Determinism across batching: the same seed gives the same images and results for any batch_size.

Perturbations are drawn per block of ``probe.rng.BLOCK`` images (value j, block k: stream
``(0, j, k)``), never per model batch, so a sweep run with batch_size 7, 64, 100 or 256 (sizes
below, equal to, not a multiple of and above the block) perturbs every image identically.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probe
from probe import Probe
from probe import perturbers as P

BATCH_SIZES = [7, 64, 100, 256]
N_IMAGES = 300  # 4 whole blocks + 44: not a multiple of the block or of any batch size


def shift_by_rng(images, value, rng):
    """A user perturber with its own randomness: one random offset per image."""
    return images + value * rng.standard_normal((len(images), 1, 1, 1)).astype(images.dtype)


class Recorder:
    """A model p(lens) = clip(mean pixel) that keeps a copy of every batch it is shown."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(np.array(images, copy=True))  # probe may reuse the batch buffer
        return np.clip(np.asarray(images, np.float64).mean(axis=(1, 2, 3)), 0.0, 1.0)

    @property
    def seen(self) -> np.ndarray:
        return np.concatenate(self.batches)


@pytest.fixture(scope="module")
def data():
    gen = np.random.default_rng(11)
    images = gen.uniform(0.0, 1.0, size=(N_IMAGES, 8, 8, 3)).astype(np.float32)
    labels = (gen.uniform(size=N_IMAGES) < 0.4).astype(int)
    return images, labels


def sweep(images, labels, perturber, batch_size, **kwargs):
    recorder = Recorder()
    r = Probe(recorder, batch_size=batch_size).sweep(
        images, labels, perturber, [0.0, 0.2, 0.5], rng=kwargs.pop("rng", 3), **kwargs
    )
    return r, recorder.seen


@pytest.mark.parametrize(
    "perturber", [P.ColorJitter, P.GaussianNoise, shift_by_rng], ids=["color", "noise", "callable"]
)
def test_sweep_identical_for_any_batch_size(data, perturber):
    images, labels = data
    ref, ref_seen = sweep(images, labels, perturber, 64)
    # baseline pass + each non-identity value (a user callable is never assumed identity)
    passes = 4 if perturber is shift_by_rng else 3
    assert ref_seen.shape == (passes * N_IMAGES, 8, 8, 3)
    assert not np.array_equal(ref_seen[-N_IMAGES:], images)  # value 0.5 changed them
    for batch_size in BATCH_SIZES:
        r, seen = sweep(images, labels, perturber, batch_size)
        np.testing.assert_array_equal(seen, ref_seen)  # bit-identical perturbed images
        pd.testing.assert_frame_equal(r.table, ref.table, check_exact=True)
        pd.testing.assert_frame_equal(r.scores, ref.scores, check_exact=True)
        for group in r.groups:
            assert r.trend(group) == ref.trend(group)
        assert r.provenance["batch_size"] == batch_size
        assert r.provenance["seeds"]["perturb_block"] == probe.rng.BLOCK == 64
    other, _ = sweep(images, labels, perturber, 100, rng=4)
    assert not other.scores["score"].equals(ref.scores["score"])  # the seed does matter


def test_block_seeding_semantics(data):
    """Value j, block k is exactly ``pert(images[64k : 64k + 64], child(entropy, 0, j, k))``."""
    images, labels = data
    values = [0.3, 0.6]
    recorder = Recorder()
    Probe(recorder, batch_size=100).sweep(images, labels, P.GaussianNoise, values, rng=5)
    seen = recorder.seen[N_IMAGES:]  # after the baseline pass
    for j, value in enumerate(values):
        expected = np.concatenate(
            [
                P.GaussianNoise(value)(images[start : start + 64], probe.rng.child(5, 0, j, k))
                for k, start in enumerate(range(0, N_IMAGES, 64))
            ]
        )
        np.testing.assert_array_equal(seen[j * N_IMAGES : (j + 1) * N_IMAGES], expected)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 200), st.integers(1, 150), st.integers(0, 2**31))
def test_any_batch_size_matches_block_size(n, batch_size, seed):
    gen = np.random.default_rng(seed)
    images = gen.normal(size=(n, 4, 4, 2)).astype(np.float32)
    labels = gen.integers(0, 2, n)
    runs = []
    for size in (batch_size, probe.rng.BLOCK):
        recorder = Recorder()
        r = Probe(recorder, batch_size=size).sweep(
            images, labels, P.ColorJitter, [0.1, 0.4], rng=seed
        )
        runs.append((r.scores, recorder.seen))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0], check_exact=True)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_channels_first_and_hdf5_sources_match(data, tmp_path):
    """The block reads work on channels-first arrays and h5py datasets, with the same result."""
    h5py = pytest.importorskip("h5py")
    images, labels = data
    ref, _ = sweep(images, labels, P.ColorJitter, 256)
    model = Recorder()
    cf = Probe(lambda x: model(np.moveaxis(x, 1, -1)), batch_size=7, channels_first=True)
    r_cf = cf.sweep(np.moveaxis(images, -1, 1).copy(), labels, P.ColorJitter, [0, 0.2, 0.5], rng=3)
    pd.testing.assert_frame_equal(r_cf.scores, ref.scores, check_exact=True)
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
    with h5py.File(path, "r") as f:
        r_h5, _ = sweep(f["images"], labels, P.ColorJitter, 100)
    pd.testing.assert_frame_equal(r_h5.scores, ref.scores, check_exact=True)


# -- re-simulation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "paired", "n_nonlenses"),
    [("psf_scale", True, None), ("psf_scale", False, None), ("theta_E", False, 0)],
    ids=["paired", "unpaired", "lens-only"],
)
def test_resimulate_identical_for_any_batch_size(model, make_sim, name, paired, n_nonlenses):
    """Rendering is chunked by batch_size; rows carry their own noise seeds, so nothing changes."""
    values = [0.6, 1.0, 2.0]
    runs = []
    for batch_size in BATCH_SIZES:
        sim = make_sim(noise_sigma=0.1)
        r = Probe(model, batch_size=batch_size).resimulate(
            sim, name, values, n=70, n_nonlenses=n_nonlenses, rng=2, paired=paired
        )
        assert max(sim.render_calls) <= batch_size
        runs.append(r)
    ref = runs[0]
    assert ref.table["n"].max() == (70 if n_nonlenses == 0 else 140)
    for r in runs[1:]:
        pd.testing.assert_frame_equal(r.table, ref.table, check_exact=True)
        pd.testing.assert_frame_equal(r.scores, ref.scores, check_exact=True)
        assert r.provenance["data"]["hash"] == ref.provenance["data"]["hash"]


# -- the pixel hash (cache key of unperturbed scores) -----------------------------------------
def test_pixel_hash_independent_of_batching_and_source(data, tmp_path):
    """Threaded leaves over memory, serial over HDF5: one hash, whatever batch size; one changed
    pixel changes it; the first non-finite image is the one named, even in a later leaf."""
    from probe.adapters.images import HASH_LEAF, ImageSet

    h5py = pytest.importorskip("h5py")
    images, _ = data
    assert len(images) > 3 * HASH_LEAF  # several leaves, hashed by several threads
    ref = ImageSet(images).hash_pixels(7)
    assert all(ImageSet(images).hash_pixels(bs) == ref for bs in (None, 64, 256, 1000))
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
    with h5py.File(path, "r") as f:
        assert ImageSet(f["images"]).hash_pixels() == ref
    changed = images.copy()
    changed[-1, 0, 0, 0] = np.nextafter(changed[-1, 0, 0, 0], np.inf)
    assert ImageSet(changed).hash_pixels() != ref
    changed[2 * HASH_LEAF + 5, 1, 1, 0] = np.nan
    changed[3 * HASH_LEAF + 1, 1, 1, 0] = np.inf
    with pytest.raises(probe.errors.ProbeValueError, match=f"NaN at index {2 * HASH_LEAF + 5}$"):
        ImageSet(changed).hash_pixels()


class CountingSource:
    """An array-like that counts the images read from it (as a store on disk would cost)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images, self.shape, self.dtype, self.read = images, images.shape, images.dtype, 0

    def __getitem__(self, key):
        out = self.images[key]
        self.read += len(out)
        return out


@pytest.mark.parametrize("batch_size", [1, 7, 64, 100, 256, 1000])
@pytest.mark.parametrize("channels_first", [False, True])
def test_scan_reads_each_image_once_with_the_leaves_and_batches_of_two_passes(
    data, batch_size, channels_first
):
    """Scoring a chunk (probe.sweeps.chunks.baseline_task) reads each image once: the batches of
    ``batch`` and the leaves of ``leaf_digests`` (two passes, two reads) from one pass."""
    from probe.adapters.images import ImageSet

    images, _ = data
    source = np.ascontiguousarray(np.moveaxis(images, -1, 1)) if channels_first else images
    ref = ImageSet(source, channels_first=channels_first)
    counted = CountingSource(source)
    leaves: list[bytes] = []
    got = list(ImageSet(counted, channels_first=channels_first).scan(batch_size, leaves))
    assert [(a, b) for a, b, _ in got] == list(ref.spans(batch_size))
    for start, stop, batch in got:
        np.testing.assert_array_equal(batch, ref.batch(start, stop))
    assert leaves == ref.leaf_digests()
    assert counted.read == len(images)


def test_scan_names_the_first_nonfinite_image_before_the_model_sees_it(data):
    from probe.adapters.images import HASH_LEAF, ImageSet

    images, _ = data
    bad = images.copy()
    bad[2 * HASH_LEAF + 5, 1, 1, 0] = np.nan
    bad[3 * HASH_LEAF + 1, 1, 1, 0] = np.inf
    shown = []

    def score_all() -> None:
        for _, stop, batch in ImageSet(bad).scan(100, [], offset=1000):
            assert np.isfinite(batch).all()
            shown.append(stop)

    with pytest.raises(probe.errors.ProbeValueError, match=f"NaN at index {1000 + 2 * 64 + 5}$"):
        score_all()
    assert shown == [100]  # batch 100:200 holds the NaN (image 133): it is never shown
